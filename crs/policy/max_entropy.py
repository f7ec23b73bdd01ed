"""The field's max-entropy baseline (EAR, SCPR: Lei et al. 2020): ask the attribute whose values
split the live candidates most evenly; recommend when few are left or after ``n`` questions.

Choices, where this catalog differs from the papers' setting:

- **Live candidates.** EAR and SCPR keep a hard candidate set (the items consistent with every
  confirmed attribute, minus items rejected) and count each one equally. Here constraints are
  soft (:mod:`crs.posterior`: each broken one multiplies an item's weight by ``VIOLATION`` =
  0.05, and the pool keeps some violators so that one wrong answer is recoverable). So a
  candidate is live when it has not been shown (shown and not taken = rejected, as in the
  papers) and its posterior is at least ``live_ratio`` (0.1) times the largest posterior among
  the unshown candidates. A ratio to the best, not a cumulative-mass cut, because it does not
  depend on how many candidates the pool holds; 0.1 because it is above ``VIOLATION``, so an
  item breaking a stated constraint is not live unless the best item breaks one too, which is
  the papers' hard filter. It also drops items at least 10x less likely than the best on
  retrieval alone (a fused-score gap of about 0.23 at the posterior's temperature 0.1).
  Live candidates are then weighed equally: the posterior decides who is live, not how much.
- **Entropy.** Over the live candidates, count each value an item has (a ``tags`` item counts
  once per tag it has), plus one "no value" bucket for live items that have none, normalise,
  and take the entropy in bits. The bucket generalises the papers' binary attributes (an item
  has it or not): without it, an attribute that two live items have (one red, one blue) among
  a hundred would look like a perfect 1-bit split.
- **Which attributes.** Askable ones not yet asked or settled whose question offers two values
  or more (``_open_attributes``, shared with the other baselines), and that still have two
  values or more among the live candidates. Ties go to the catalog's order.
- **When to recommend.** When the live candidates are at most ``k`` (one page shows them all),
  after ``n`` questions (default 3, spec ``max-entropy:N``), or when no attribute has positive
  entropy. A recommendation is :func:`~crs.policy.base.top_new` (the posterior's order, new
  items first); a question offers :func:`~crs.policy.base.question_options`, as every policy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Ask, Decision, Policy, PolicyContext, Recommend, question_options, top_new
from .baselines import _open_attributes
from .eig import entropy_bits


def live_ids(context: PolicyContext, ratio: float = 0.1) -> np.ndarray:
    """Candidates not shown before whose posterior is at least ``ratio`` times the best unshown one."""
    candidates = context.candidates
    fresh = ~np.isin(candidates.ids, list(context.shown))
    if not fresh.any():
        return candidates.ids[:0]
    posterior = np.asarray(candidates.posterior, dtype=np.float64)
    best = posterior[fresh].max()
    return candidates.ids[fresh & (posterior >= ratio * best)]


def value_entropy(context: PolicyContext, attribute: str, ids: np.ndarray) -> float:
    """Entropy (bits) of ``attribute``'s values over ``ids``, each item weighed equally: one count
    per value an item has, one "no value" count per item with none. 0 with fewer than two values."""
    matrix = context.facts.value_matrix(attribute, ids)
    counts = matrix.sum(axis=0).astype(np.float64)
    if np.count_nonzero(counts) < 2:
        return 0.0
    counts = np.append(counts, float((~matrix.any(axis=1)).sum()))
    counts = counts[counts > 0]
    return float(entropy_bits(counts / counts.sum()))


@dataclass
class MaxEntropyPolicy(Policy):
    n: int = 3  # questions at most, then recommend
    live_ratio: float = 0.1  # live: posterior at least this times the best unshown candidate's
    name: str = "max-entropy"

    def decide(self, context: PolicyContext) -> Decision:
        if len(context.candidates) == 0:
            return Recommend([], "nothing matches")
        if len(context.asked) >= self.n:
            return Recommend(top_new(context), f"asked {len(context.asked)} questions")
        live = live_ids(context, self.live_ratio)
        if len(live) <= context.k:
            return Recommend(top_new(context), f"{len(live)} live candidates fit on one page")
        best, best_entropy = None, 0.0
        for attribute in _open_attributes(context):
            entropy = value_entropy(context, attribute, live)
            if entropy > best_entropy:
                best, best_entropy = attribute, entropy
        if best is None:
            return Recommend(top_new(context), f"no attribute splits the {len(live)} live candidates")
        return Ask(best, question_options(context, best))
