"""simulators.stats: the percentile bootstrap interval on distributions whose answer is known, its
determinism, the count-resampling shortcut against plain index resampling, and the spread over seeds."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.stats import RESAMPLES, Spread, bootstrap_ci, contain, spread


def test_bernoulli_interval_holds_p_and_has_the_binomial_width() -> None:
    n, p = 10_000, 0.3
    draws = (np.random.default_rng(2024).random(n) < p).astype(float)
    lo, hi = bootstrap_ci(draws, seed=7)
    assert lo < p < hi
    assert lo <= draws.mean() <= hi
    expected = 2 * 1.96 * math.sqrt(p * (1 - p) / n)  # the normal approximation's width, about 0.018
    assert hi - lo == pytest.approx(expected, rel=0.15)


def test_normal_interval_matches_the_standard_error() -> None:
    data = np.random.default_rng(3).normal(5.0, 2.0, size=2_000)
    lo, hi = bootstrap_ci(data, seed=1)
    half = 1.96 * data.std(ddof=1) / math.sqrt(data.size)
    assert lo == pytest.approx(data.mean() - half, abs=0.15 * half)
    assert hi == pytest.approx(data.mean() + half, abs=0.15 * half)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.1, 11.0])
def test_constant_data_gives_a_zero_width_interval(value: float) -> None:
    assert bootstrap_ci([value] * 37, seed=5) == (value, value)


def test_the_same_seed_gives_the_same_interval() -> None:
    data = np.random.default_rng(0).integers(1, 12, size=300).astype(float)
    assert bootstrap_ci(data, seed=11) == bootstrap_ci(data, seed=11)
    assert bootstrap_ci(data, seed=np.random.default_rng(11)) == bootstrap_ci(data, seed=11)
    assert bootstrap_ci(data, seed=11) != bootstrap_ci(data, seed=12)  # the seed is used
    assert bootstrap_ci(list(data), seed=11) == bootstrap_ci(data, seed=11)  # a list or an array


def test_count_resampling_is_the_index_bootstrap() -> None:
    """Drawing multinomial counts of the distinct values is the same distribution of resample means
    as drawing n indices with replacement: with many resamples both intervals agree closely."""
    rng = np.random.default_rng(9)
    data = np.concatenate([np.zeros(60), rng.integers(1, 6, size=140)]).astype(float)  # a lump, like turns or hDCG
    many = 20_000
    lo, hi = bootstrap_ci(data, resamples=many, seed=4)
    means = data[np.random.default_rng(5).integers(0, data.size, size=(many, data.size))].mean(axis=1)
    plain_lo, plain_hi = np.percentile(means, [2.5, 97.5])
    se = data.std(ddof=1) / math.sqrt(data.size)
    assert abs(lo - plain_lo) < 0.12 * se and abs(hi - plain_hi) < 0.12 * se  # Monte Carlo error: ~0.03 se


def test_other_levels_and_bad_input() -> None:
    data = np.random.default_rng(1).random(500)
    lo90, hi90 = bootstrap_ci(data, confidence=0.90, seed=0)
    lo95, hi95 = bootstrap_ci(data, seed=0)
    assert lo95 < lo90 < hi90 < hi95
    assert bootstrap_ci([], seed=0) is None
    assert bootstrap_ci([0.4]) == (0.4, 0.4)
    with pytest.raises(ValueError):
        bootstrap_ci(data, confidence=95)
    with pytest.raises(ValueError):
        bootstrap_ci(data, resamples=0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, float("nan")])
    assert RESAMPLES == 2_000


def test_contain_widens_to_the_estimate_only() -> None:
    assert contain((0.2, 0.4), 0.3) == (0.2, 0.4)
    assert contain((0.1, 0.1), 0.1 + 1e-17) == (0.1, 0.1 + 1e-17)
    assert contain((0.3, 0.3), 0.29999999999999993) == (0.29999999999999993, 0.3)
    assert contain(None, 0.3) is None and contain((0.1, 0.2), None) == (0.1, 0.2)


def test_spread_arithmetic() -> None:
    s = spread([0.90, 0.92, 0.94])
    assert s.n == 3 and s.mean == pytest.approx(0.92)
    assert s.sd == pytest.approx(0.02)  # sample sd: sqrt((0.02^2 + 0 + 0.02^2) / 2)
    assert (s.min, s.max) == (0.90, 0.94) and s.values == (0.90, 0.92, 0.94)
    assert s.to_json() == {"n": 3, "mean": s.mean, "sd": s.sd, "min": 0.90, "max": 0.94,
                           "values": [0.90, 0.92, 0.94]}
    assert spread([3, 1, 2]) == Spread(3, 2.0, 1.0, 1.0, 3.0, (3.0, 1.0, 2.0))  # order kept, ints taken
    one = spread([0.5])
    assert one.sd is None and one.mean == one.min == one.max == 0.5
    assert spread([0.7, 0.7]).sd == 0.0
    with pytest.raises(ValueError):
        spread([])
    with pytest.raises(ValueError):
        spread([0.1, float("inf")])
