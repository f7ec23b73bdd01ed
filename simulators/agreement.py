"""Do two simulated users agree? Per-conversation success agreement and Cohen's kappa.

``crs eval --agreement`` runs one policy on the same conversation plans (same targets, same
openings) twice: once with an agenda user (a rule-based profile) and once with the LLM user. If the
two users were interchangeable raters of "does the system find this target", each conversation
would succeed under both or fail under both. Two figures say how far that holds:

* ``agreement``, p_o: the share of conversations whose success (within T turns) is the same under
  both users. It is easy to read but inflated when both succeed (or both fail) most of the time.
* ``kappa``, Cohen's kappa (Cohen 1960): (p_o - p_e) / (1 - p_e), where p_e = sum over outcomes c
  of p_a(c) * p_b(c) is the agreement two independent users with the same success rates would
  reach by chance. 1: always agree; 0: no better than chance; below 0: worse than chance.

The one undefined case: p_e = 1, which happens only when both users give one and the same outcome
to every conversation (both always succeed, or both always fail). Then p_o = 1 as well and the
formula is 0 / 0; :func:`cohen_kappa` defines kappa = 1 there (they agree on everything and there
is no variation for chance to explain), where scikit-learn's ``cohen_kappa_score`` returns nan.
Both constant but different (one always succeeds, the other always fails) gives p_o = p_e = 0 and
kappa = 0. Computed with exact integer arithmetic, so the edge cases are exact, not float-close;
scikit-learn is not a dependency of this project (the formula is two lines).

``agreement`` and each success rate carry a percentile bootstrap 95% interval (:mod:`simulators.stats`) over the
conversations; kappa gets none here (a bootstrap of kappa is unstable exactly where it matters,
near constant outcomes, with few conversations).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from fractions import Fraction
from typing import Any

from .metrics import truncate
from .results import ConversationResult
from .stats import RESAMPLES, bootstrap_ci, outward


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels for the same items (any hashable labels); None with no items.

    kappa = (n * agreed - sum_c n_a(c) n_b(c)) / (n^2 - sum_c n_a(c) n_b(c)), the usual
    (p_o - p_e) / (1 - p_e) multiplied through by n^2, in integers. When the expected agreement is 1
    (both raters constant on the same label) it returns 1.0 (see the module docstring).
    """
    if len(a) != len(b):
        raise ValueError(f"the raters rated different numbers of items: {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return None
    agreed = sum(x == y for x, y in zip(a, b))
    counts_a, counts_b = Counter(a), Counter(b)
    chance = sum(count * counts_b[label] for label, count in counts_a.items())  # n^2 * p_e
    if chance == n * n:  # p_e = 1: both constant on one label, so p_o = 1 too
        return 1.0
    return float(Fraction(n * agreed - chance, n * n - chance))


def paired(first: Sequence[ConversationResult], second: Sequence[ConversationResult]
           ) -> list[tuple[ConversationResult, ConversationResult]]:
    """The two runs' conversations paired by index; both must hold the same plans (index, target, opening)."""
    by_index = {r.index: r for r in second}
    if len(by_index) != len(second) or len({r.index for r in first}) != len(first):
        raise ValueError("a conversation index is repeated within a run")
    if set(by_index) != {r.index for r in first}:
        raise ValueError(f"the runs hold different conversations ({len(first)} and {len(second)})")
    pairs = []
    for one in sorted(first, key=lambda r: r.index):
        other = by_index[one.index]
        if (one.target_id, one.start) != (other.target_id, other.start):
            raise ValueError(f"conversation {one.index} has another plan in each run (target {one.target_id}, "
                             f"{one.start} against target {other.target_id}, {other.start}): not the same plans")
        pairs.append((one, other))
    return pairs


def success_agreement(first: Sequence[ConversationResult], second: Sequence[ConversationResult], *,
                      max_turns: int, names: tuple[str, str] = ("agenda", "llm"), seed: int = 0,
                      resamples: int = RESAMPLES) -> dict[str, Any]:
    """How far two simulated users agree on which conversations succeed (within ``max_turns``).

    ``first`` and ``second``: one run's conversations each, on the same plans (:func:`paired`).
    Returns ``{n, max_turns, success_rate: {name: SR}, agreement, kappa, table, ci95}``, ``ci95``
    holding the bootstrap intervals ``{agreement: [lo, hi], success_rate: {name: [lo, hi]}}`` and
    ``table`` counting the conversations per outcome pair: ``both``, ``<first> only``,
    ``<second> only`` (succeeded under that user alone), ``neither``.
    """
    if names[0] == names[1]:
        raise ValueError("the two users need different names")
    pairs = paired(first, second)
    a = [truncate(x, max_turns).success for x, _ in pairs]
    b = [truncate(y, max_turns).success for _, y in pairs]
    n = len(pairs)
    same = [1.0 if x == y else 0.0 for x, y in zip(a, b)]

    def ci(values: Sequence[float]) -> list[float] | None:
        return outward(bootstrap_ci(values, resamples=resamples, seed=seed))
    return {
        "n": n,
        "max_turns": max_turns,
        "success_rate": {names[0]: sum(a) / n if n else None, names[1]: sum(b) / n if n else None},
        "agreement": sum(same) / n if n else None,
        "kappa": cohen_kappa(a, b),
        "table": {"both": sum(x and y for x, y in zip(a, b)),
                  f"{names[0]} only": sum(x and not y for x, y in zip(a, b)),
                  f"{names[1]} only": sum(y and not x for x, y in zip(a, b)),
                  "neither": sum(not x and not y for x, y in zip(a, b))},
        "ci95": {"agreement": ci(same),
                 "success_rate": {names[0]: ci([float(x) for x in a]), names[1]: ci([float(y) for y in b])}},
    }
