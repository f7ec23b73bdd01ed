"""How far an evaluation's figures can be trusted: bootstrap confidence intervals and the spread over seeds.

A run's figures (success rate, average turns, hDCG, questions per conversation) are means over n
simulated conversations, so they carry sampling noise: two policies 1 point apart on n = 500 are
not told apart. Two tools say how much noise there is, with numpy only (no scipy dependency):

* :func:`bootstrap_ci`: a percentile bootstrap confidence interval (Efron & Tibshirani 1993, ch.
  13) for the mean of per-conversation values. It assumes nothing about their distribution, which
  matters here: success is 0/1, turns are capped integers with a lump at T+1, hDCG is a handful of
  discrete values with a lump at 0; a normal-approximation interval (mean +- 1.96 sd / sqrt(n)) is
  off for skewed values and small n, and a Wilson interval only fits the 0/1 success.
  It is deterministic given ``seed``, so the same run always prints the same interval.
  Its known weakness: when every conversation has the same value (SR 1.0 or 0.0 on a small run,
  no questions at all) every resample is identical and the interval has zero width; read such an
  interval as "no variation observed", not as certainty (a Wilson interval for 8/8 successes is
  about [0.68, 1]). It also runs a little narrow for very small n (under ~20 conversations).
* :func:`spread`: mean, standard deviation, min and max of one figure over runs with different
  seeds: the bootstrap interval covers which conversations were drawn *within* a run; the spread
  over seeds is the run-to-run variation one sees by re-running with another seed (other targets,
  other openings, other simulated-user noise).

Why resample counts, not indices: a bootstrap resample of n values draws each distinct value a
Multinomial(n, observed frequencies) number of times, so its mean is ``counts @ distinct / n``.
Drawing the counts costs O(resamples x distinct values) instead of O(resamples x n): the
evaluation's values take few distinct values (at most T+1 turns, 2 successes, T*K+1 hDCG terms), so
2,000 resamples of a 100,000-conversation run take milliseconds, and memory stays small. It is the
same distribution as resampling indices, not an approximation.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# With 2,000 resamples the 2.5% and 97.5% quantiles move by about 0.06 standard errors of the mean
# from one bootstrap seed to another (sqrt(0.025 * 0.975 / 2000) / phi(1.96), normal approximation):
# well below the printed precision, at a cost of milliseconds.
RESAMPLES = 2_000
CONFIDENCE = 0.95

Interval = tuple[float, float]


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, confidence: float = CONFIDENCE,
                 resamples: int = RESAMPLES, seed: int | np.random.Generator = 0,
                 weights: Sequence[float] | np.ndarray | None = None) -> Interval | None:
    """The percentile bootstrap ``confidence`` interval of the mean of ``values``; None when empty.

    ``resamples`` means of n values drawn with replacement from ``values``; the interval runs from
    the (1 - confidence) / 2 to the (1 + confidence) / 2 quantile of those means (numpy's linear
    interpolation). ``seed`` (an int for ``np.random.default_rng``, or a Generator, which is advanced)
    makes it reproducible. Constant values give a zero-width interval. The interval is widened, if
    needed, to hold the sample mean itself: for a mean the percentile interval holds it anyway but
    in degenerate cases (a resample mean lies below the sample mean with probability well inside
    2.5%..97.5%), so this mostly absorbs float rounding, and ``lo <= mean <= hi`` can be relied on.

    ``weights`` (one per value, >= 0) makes it the interval of the weighted mean
    ``sum(w * v) / sum(w)``, resampling the (value, weight) pairs together: the cluster bootstrap of
    a ratio of sums, e.g. a per-turn rate (understood turns / recorded turns) whose turns come in
    conversations, each conversation a pair (its rate, its turns). Pairs of weight 0 are still drawn
    (they change how many weighted pairs a resample gets); a resample that draws only such pairs has
    no mean and is left out. None when every weight is 0. Without ``weights`` nothing changes: the
    same draws, the same interval as before weights existed.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    data = np.asarray(values, dtype=np.float64).ravel()
    n = data.size
    if n == 0:
        return None
    if not np.all(np.isfinite(data)):
        raise ValueError("bootstrap_ci needs finite values")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if weights is not None:
        return _weighted_bootstrap_ci(data, weights, confidence=confidence, resamples=resamples, rng=rng)
    distinct, counts = np.unique(data, return_counts=True)
    if distinct.size == 1:  # every resample is the same data: nothing varies
        value = float(distinct[0])
        return value, value
    draws = rng.multinomial(n, counts / n, size=resamples)  # (resamples, distinct): how often each value is drawn
    means = draws @ distinct / n
    tail = (1.0 - confidence) / 2.0
    lo, hi = (float(q) for q in np.percentile(means, [100.0 * tail, 100.0 * (1.0 - tail)]))
    centre = float(data.mean())
    return min(lo, centre), max(hi, centre)


def _weighted_bootstrap_ci(data: np.ndarray, weights: Sequence[float] | np.ndarray, *, confidence: float,
                           resamples: int, rng: np.random.Generator) -> Interval | None:
    """:func:`bootstrap_ci` with ``weights``: the same count resampling, over distinct (value, weight) pairs."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != data.shape:
        raise ValueError(f"weights must have one value per value, got {w.size} for {data.size}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0")
    total = float(w.sum())
    if total == 0.0:
        return None
    centre = float((data * w).sum() / total)
    if np.unique(data[w > 0]).size == 1:  # every weighted value the same: every resample's mean is it
        return centre, centre
    pairs, counts = np.unique(np.column_stack([data, w]), axis=0, return_counts=True)
    draws = rng.multinomial(data.size, counts / data.size, size=resamples)
    mass = draws @ pairs[:, 1]
    kept = mass > 0  # a resample of weight-0 pairs only has no mean
    means = (draws[kept] @ (pairs[:, 0] * pairs[:, 1])) / mass[kept]
    if means.size == 0:  # only with a handful of resamples of mostly weight-0 pairs
        return centre, centre
    tail = (1.0 - confidence) / 2.0
    lo, hi = (float(q) for q in np.percentile(means, [100.0 * tail, 100.0 * (1.0 - tail)]))
    return min(lo, centre), max(hi, centre)


def contain(interval: Interval | None, estimate: float | None) -> Interval | None:
    """``interval`` widened to hold ``estimate``: a figure computed by another summation order (plain
    Python ``sum`` / n, as :func:`simulators.metrics.summarize` does) can differ from numpy's mean in
    the last bit, and a printed ``value [lo, hi]`` must never show the value outside."""
    if interval is None or estimate is None:
        return interval
    return min(interval[0], estimate), max(interval[1], estimate)


def outward(interval: Interval | None, digits: int = 6) -> list[float] | None:
    """``[lo, hi]`` rounded outwards to ``digits`` decimals (readable JSON, no 0.27012499999999934,
    and still holding everything the unrounded interval held); None stays None."""
    if interval is None:
        return None
    scale = 10.0 ** digits
    return [math.floor(interval[0] * scale) / scale, math.ceil(interval[1] * scale) / scale]


@dataclass(frozen=True)
class Spread:
    """One figure across runs with different seeds.

    ``sd`` is the sample standard deviation (ddof = 1: the seeds are a sample of the seeds one could
    have run), None with fewer than two values; ``values`` are in the order the runs were given.
    """
    n: int
    mean: float
    sd: float | None
    min: float
    max: float
    values: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["values"] = list(self.values)
        return data


def spread(values: Sequence[float]) -> Spread:
    """Mean, standard deviation (ddof = 1), min and max of ``values`` (one figure per seed)."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("spread needs at least one value")
    if not all(math.isfinite(v) for v in data):
        raise ValueError("spread needs finite values")
    array = np.asarray(data, dtype=np.float64)
    sd = float(array.std(ddof=1)) if len(data) > 1 else None
    return Spread(n=len(data), mean=float(array.mean()), sd=sd, min=min(data), max=max(data), values=tuple(data))
