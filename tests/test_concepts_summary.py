"""Intervals over images: the median's order-statistic interval and the share's Clopper-Pearson interval have the
coverage they claim (simulation), and the small-sample rules hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from xai.concepts.intervals import median_interval, order_statistic_rank, share_interval

REPEATS = 2000


@pytest.mark.parametrize("n", [6, 15, 40])
def test_median_interval_covers_the_true_median_as_often_as_it_claims(n: int) -> None:
    rng = np.random.default_rng(n)
    true_median = 1.0  # lognormal(0, 1): skewed, median e^0
    covered, claimed = 0, math.nan
    for _ in range(REPEATS):
        interval = median_interval(rng.lognormal(0.0, 1.0, size=n))
        covered += interval.low <= true_median <= interval.high
        claimed = interval.coverage
    rate = covered / REPEATS
    standard_error = math.sqrt(claimed * (1 - claimed) / REPEATS)
    assert claimed >= 0.95
    assert abs(rate - claimed) < 3.5 * standard_error, (rate, claimed)


def test_median_interval_ranks_and_small_samples() -> None:
    # n = 6: only the extremes give >= 95% (1 - 2/64 = 0.969); n = 5 cannot (1 - 2/32 = 0.9375)
    assert order_statistic_rank(6) == 1 and order_statistic_rank(5) == 0
    interval = median_interval([5.0, 1.0, 3.0, 2.0, 4.0, 6.0, math.nan], metric="m", group="correct")
    assert (interval.low, interval.median, interval.high, interval.n) == (1.0, 3.5, 6.0, 6)
    assert interval.coverage == pytest.approx(1 - 2 / 64)
    assert (interval.metric, interval.group) == ("m", "correct")
    small = median_interval([1.0, 2.0, 3.0])
    assert small.median == 2.0 and math.isnan(small.low) and math.isnan(small.high)
    assert median_interval([]).n == 0
    # n = 40: l = 14 (P(B <= 13) = 0.019 <= 0.025 < P(B <= 14) = 0.040)
    assert order_statistic_rank(40) == 14
    assert stats.binom.cdf(13, 40, 0.5) <= 0.025 < stats.binom.cdf(14, 40, 0.5)


@pytest.mark.parametrize(("share", "n"), [(0.1, 30), (0.5, 12)])
def test_share_interval_covers_the_true_share_at_least_as_often_as_claimed(share: float, n: int) -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(REPEATS):
        interval = share_interval(rng.random(n) < share)
        covered += interval.low <= share <= interval.high
    assert covered / REPEATS >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / REPEATS)


def test_share_interval_ignores_checks_that_did_not_run() -> None:
    interval = share_interval([1.0, 0.0, math.nan, 1.0])
    assert (interval.count, interval.n, interval.share) == (2, 3, pytest.approx(2 / 3))
    assert interval.low < 2 / 3 < interval.high
    assert math.isnan(share_interval([math.nan]).share)
