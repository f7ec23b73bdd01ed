"""The evaluation's figures from finished conversations (DESIGN.md, "Evaluation protocol").

Notation: n conversations; T = ``max_turns``; K = ``k``, the items per recommendation. Every
conversation is first *truncated* at T: turns after T are dropped and a success after T is a
failure, so SR@10 can be read from a T = 15 run and equals what a T = 10 run reports. ``s_c`` is
conversation c's success turn (None on failure).

* ``success_rate`` = #{c : s_c not None} / n.
* ``avg_turns`` (AT) = mean over c of s_c, a failure counting T + 1 (it gave up or ran out of turns).
* ``success_by_turn[t-1]`` = #{c : s_c <= t} / n for t = 1..T (cumulative); ``sr_at_5``,
  ``sr_at_10``, ``sr_at_15`` are its values at t = 5, 10, 15, None where t > T.
* ``hdcg`` (hDCG@(T, K), UNICORN, Deng et al. 2021) = mean over c of
  sum_t sum_k r(t, k) / log2((t - 1) * K + k + 1), where r(t, k) = 1 if the target was shown at
  turn t in position k (1-based, k <= K), else 0. A conversation stops at its success, so it
  contributes 1 / log2((s_c - 1) * K + p_c + 1), p_c the target's position; a failure, or a
  target shown past position K, contributes 0. Immediate success at position 1 scores 1.
* ``recall_at_k`` = mean over c of (turns of c whose ``ranking[:K]`` holds the target) / (turns
  of c): Recall@K of the system's ranking at each turn, ask turns included, averaged per
  conversation first so long conversations do not outweigh short ones. A conversation with no
  turn counts 0.
* ``questions_per_conversation`` = mean over c of its ask turns.
* ``leak_rate`` = leaked turns / all turns, over every conversation (None with no turns).
* ``conversations_per_second`` = n / ``elapsed_s`` (None without a positive ``elapsed_s``).
* ``turn_latency_ms`` = {p50, p95} of the dialogue manager's per-turn wall time over all turns
  (numpy's linear interpolation; None with no turns).

The simulated user's lines (:func:`line_figures`; the LLM user's checks, :mod:`simulators.line_checks`):

* ``line_chars`` = {mean, max} characters of the user's text over the turns that sent text (a
  picture alone is not a line); None with none.
* ``role_break_rate``, ``false_accept_rate``, ``wrong_answer_rate``, ``repetition_rate`` = turns
  whose line (the model's first try) the harness caught doing that / turns whose lines were
  checked: the LLM user's behaviour, before the harness regenerated or replaced the line, so
  what the system received never holds a false accept or a role break. None when no turn was
  checked (the agenda user).
* ``user_line_checks`` = per run, the checked turns (``turns``) and how many of them had each
  kind of :data:`line_checks.CHECK_KINDS` (keys with ``_`` for ``-``): role_break, false_accept,
  wrong_answer, repetition, and trimmed (cut to two sentences), regenerated (asked once more),
  replaced (the agenda user's line sent instead). None when no turn was checked.

With n = 0 every mean is None and ``success_by_turn`` is T Nones.

Per opening (:func:`by_start`): the same figures over the conversations that opened one way
(``ConversationResult.start``: text, similar-image, other-style-image), each with its bootstrap
95% interval, including SR@5/10/15 (the share with ``s_c <= t``, None where t > T) and the
understanding rate, whose interval resamples conversations (a ratio of sums: understood turns /
turns with a recorded meaning; :func:`stats.bootstrap_ci` with ``weights``).

:func:`per_conversation` gives the per-conversation values behind the five means (keyed by the
figure each averages), so :func:`confidence_intervals` can bootstrap them
(:mod:`simulators.stats`); ``summarize`` reads its means from the same values, so the two never
disagree on a definition.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .line_checks import CHECK_KINDS, FALSE_ACCEPT, REPETITION, ROLE_BREAK, WRONG_ANSWER
from .results import ConversationResult, TurnResult
from .stats import RESAMPLES, bootstrap_ci, contain, outward

SR_AT = (5, 10, 15)
# The figures that are a mean of one value per conversation, in per_conversation's order.
PER_CONVERSATION = ("success_rate", "avg_turns", "hdcg", "recall_at_k", "questions_per_conversation")
# Those that ``crs eval`` gives a bootstrap confidence interval (``ci95``).
CI_FIELDS = ("success_rate", "avg_turns", "hdcg", "questions_per_conversation")
# The figures of each opening kind (:func:`by_start`), every one with an interval.
BY_START_FIELDS = ("success_rate", "sr_at_5", "sr_at_10", "sr_at_15", "avg_turns", "hdcg",
                   "questions_per_conversation", "understanding_rate")
# Every figure :func:`confidence_intervals` can give an interval for.
INTERVAL_FIELDS = (*PER_CONVERSATION, "sr_at_5", "sr_at_10", "sr_at_15", "understanding_rate")
# How the openings are listed (simulators.targets.START_KINDS, from the least to the most help the
# user gives); a kind not named here comes after these, alphabetically.
START_ORDER = ("text", "similar-image", "other-style-image")


def truncate(result: ConversationResult, max_turns: int) -> ConversationResult:
    """The conversation as a run with at most ``max_turns`` turns would have recorded it."""
    if len(result.turns) <= max_turns:
        return result
    turns = [t for t in result.turns if t.number <= max_turns]
    success = result.success_turn is not None and result.success_turn <= max_turns
    return replace(result, turns=turns, success=success, success_turn=result.success_turn if success else None,
                   questions=sum(t.action == "ask" for t in turns), gave_up=False)  # it was still talking at max_turns


def hdcg_of(result: ConversationResult, k: int) -> float:
    """One conversation's hDCG@(T, K) term (already truncated)."""
    if result.success_turn is None:
        return 0.0
    turn = next((t for t in result.turns if t.number == result.success_turn), None)
    if turn is None or result.target_id not in turn.shown[:k]:
        return 0.0
    position = turn.shown.index(result.target_id) + 1
    return 1.0 / math.log2((result.success_turn - 1) * k + position + 1)


def recall_of(result: ConversationResult, k: int) -> float:
    if not result.turns:
        return 0.0
    return sum(result.target_id in t.ranking[:k] for t in result.turns) / len(result.turns)


def _values(runs: Sequence[ConversationResult], max_turns: int, k: int) -> dict[str, list[float]]:
    """Per truncated conversation: 1/0 success, turns (a failure counts T + 1), hDCG term, Recall@K, ask turns."""
    return {
        "success_rate": [1.0 if r.success else 0.0 for r in runs],
        "avg_turns": [float(r.success_turn if r.success_turn is not None else max_turns + 1) for r in runs],
        "hdcg": [hdcg_of(r, k) for r in runs],
        "recall_at_k": [recall_of(r, k) for r in runs],
        "questions_per_conversation": [float(r.questions) for r in runs],
    }


def per_conversation(results: Sequence[ConversationResult], *, max_turns: int, k: int) -> dict[str, np.ndarray]:
    """One value per conversation (in ``results``' order, after truncation at ``max_turns``) for each
    figure of :data:`PER_CONVERSATION`; that figure is the mean of its array."""
    if max_turns < 1 or k < 1:
        raise ValueError(f"max_turns and k must be >= 1, got {max_turns} and {k}")
    values = _values([truncate(r, max_turns) for r in results], max_turns, k)
    return {name: np.asarray(column, dtype=np.float64) for name, column in values.items()}


def _interval_inputs(results: Sequence[ConversationResult], *, max_turns: int, k: int
                     ) -> dict[str, tuple[np.ndarray, np.ndarray | None] | None]:
    """Per figure of :data:`INTERVAL_FIELDS`: (one value per conversation, weights or None) whose
    (weighted) mean is the figure; None for SR@t with t > T (no such figure)."""
    values: dict[str, tuple[np.ndarray, np.ndarray | None] | None] = {
        name: (column, None) for name, column in per_conversation(results, max_turns=max_turns, k=k).items()}
    runs = [truncate(r, max_turns) for r in results]
    for t in SR_AT:
        values[f"sr_at_{t}"] = (np.asarray([r.success_turn is not None and r.success_turn <= t for r in runs],
                                           dtype=np.float64), None) if t <= max_turns else None
    recorded = [[bool(turn.understood) for turn in r.turns if turn.understood is not None] for r in runs]
    values["understanding_rate"] = (np.asarray([sum(u) / len(u) if u else 0.0 for u in recorded], dtype=np.float64),
                                    np.asarray([len(u) for u in recorded], dtype=np.float64))
    return values


def confidence_intervals(results: Sequence[ConversationResult], *, max_turns: int, k: int,
                         seed: int = 0, resamples: int = RESAMPLES,
                         estimates: dict[str, Any] | None = None,
                         fields: Sequence[str] = CI_FIELDS) -> dict[str, list[float] | None]:
    """``{figure: [lo, hi]}``: the percentile bootstrap 95% interval of each of ``fields`` (default
    :data:`CI_FIELDS`; any of :data:`INTERVAL_FIELDS`), None with no conversations (and for SR@t with
    t > T, or the understanding rate when no turn recorded its meaning). Every figure is resampled
    with the same ``seed``, as the figures come from the same conversations. ``estimates``
    (``summarize``'s output) widens each interval to hold its printed figure against last-bit
    rounding (:func:`stats.contain`)."""
    unknown = [name for name in fields if name not in INTERVAL_FIELDS]
    if unknown:
        raise ValueError(f"no interval for {', '.join(unknown)}; choose from {', '.join(INTERVAL_FIELDS)}")
    inputs = _interval_inputs(results, max_turns=max_turns, k=k)
    out: dict[str, list[float] | None] = {}
    for name in fields:
        given = inputs[name]
        interval = None if given is None else contain(
            bootstrap_ci(given[0], weights=given[1], resamples=resamples, seed=seed),
            None if estimates is None else estimates.get(name))
        out[name] = outward(interval)  # 6 decimals, still holding the figure
    return out


def summarize(results: Sequence[ConversationResult], *, max_turns: int, k: int,
              elapsed_s: float | None = None) -> dict[str, Any]:
    """The figures of ``crs eval --json`` (all but policy and simulator) plus SR@5/10/15."""
    if max_turns < 1 or k < 1:
        raise ValueError(f"max_turns and k must be >= 1, got {max_turns} and {k}")
    runs = [truncate(r, max_turns) for r in results]
    n = len(runs)
    turns = [t for r in runs for t in r.turns]

    def mean(values: Sequence[float]) -> float | None:
        return float(sum(values) / len(values)) if values else None

    by_turn = [mean([r.success_turn is not None and r.success_turn <= t for r in runs])
               for t in range(1, max_turns + 1)]
    values = _values(runs, max_turns, k)
    latencies = np.array([t.latency_ms for t in turns], dtype=np.float64)
    summary: dict[str, Any] = {
        "n": n,
        "max_turns": max_turns,
        "success_rate": mean(values["success_rate"]),
        "avg_turns": mean(values["avg_turns"]),
        "hdcg": mean(values["hdcg"]),
        "recall_at_k": mean(values["recall_at_k"]),
        "success_by_turn": by_turn,
        "questions_per_conversation": mean(values["questions_per_conversation"]),
        "leak_rate": mean([t.leaked for t in turns]),
        # Turns whose meaning the system got exactly, among the turns whose meaning was recorded.
        "understanding_rate": mean([bool(t.understood) for t in turns if t.understood is not None]),
        "conversations_per_second": n / elapsed_s if elapsed_s is not None and elapsed_s > 0 else None,
        "turn_latency_ms": {"p50": float(np.percentile(latencies, 50)) if len(latencies) else None,
                            "p95": float(np.percentile(latencies, 95)) if len(latencies) else None},
    }
    for t in SR_AT:
        summary[f"sr_at_{t}"] = by_turn[t - 1] if t <= max_turns else None
    summary.update(line_figures(turns))
    return summary


# The rates of line_figures, by the check they count.
LINE_RATES = {"role_break_rate": ROLE_BREAK, "false_accept_rate": FALSE_ACCEPT, "wrong_answer_rate": WRONG_ANSWER,
              "repetition_rate": REPETITION}


def line_figures(turns: Sequence[TurnResult]) -> dict[str, Any]:
    """The simulated user's line figures over ``turns`` (see the module docstring): line_chars, the
    four check rates and user_line_checks."""
    lengths = [len(t.user_text) for t in turns if t.user_text.strip()]
    checked = [t.user_checks for t in turns if t.user_checks is not None]
    out: dict[str, Any] = {"line_chars": {"mean": float(np.mean(lengths)) if lengths else None,
                                          "max": max(lengths) if lengths else None}}
    for name, kind in LINE_RATES.items():
        out[name] = sum(kind in c for c in checked) / len(checked) if checked else None
    out["user_line_checks"] = ({"turns": len(checked), **{kind.replace("-", "_"): sum(kind in c for c in checked)
                                                          for kind in CHECK_KINDS}} if checked else None)
    return out


def start_kinds(results: Sequence[ConversationResult]) -> list[str]:
    """The opening kinds present in ``results``, in :data:`START_ORDER` (others after, alphabetically)."""
    present = {r.start for r in results}
    return [kind for kind in START_ORDER if kind in present] + sorted(present - set(START_ORDER))


def by_start(results: Sequence[ConversationResult], *, max_turns: int, k: int, seed: int = 0,
             resamples: int = RESAMPLES) -> dict[str, dict[str, Any]]:
    """``{opening kind: figures}`` over the conversations that opened that way (kinds in
    :func:`start_kinds`' order, only those present): n, :data:`BY_START_FIELDS`, success_by_turn, and
    ``ci95`` with an interval (or None) for each of :data:`BY_START_FIELDS`. Every figure is what
    :func:`summarize` gives for those conversations alone."""
    out: dict[str, dict[str, Any]] = {}
    for kind in start_kinds(results):
        subset = [r for r in results if r.start == kind]
        summary = summarize(subset, max_turns=max_turns, k=k)
        entry: dict[str, Any] = {"n": summary["n"], **{name: summary[name] for name in BY_START_FIELDS},
                                 "success_by_turn": summary["success_by_turn"]}
        entry["ci95"] = confidence_intervals(subset, max_turns=max_turns, k=k, seed=seed, resamples=resamples,
                                             estimates=summary, fields=BY_START_FIELDS)
        out[kind] = entry
    return out
