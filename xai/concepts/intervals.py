"""Intervals over explained images: the median with a distribution-free interval, a share with an exact one.

* Median: the order-statistic interval ``[x_(l), x_(n-l+1)]`` with the largest ``l`` such that
  ``P(B <= l - 1) <= α/2`` for ``B ~ Binomial(n, 1/2)`` (Thompson 1936; Conover, *Practical Nonparametric
  Statistics*, 3rd ed., §3.2). Its coverage ``1 - 2 P(B <= l - 1) >= 1 - α`` is exact for any continuous
  distribution, so it holds for skewed per-image numbers where a bootstrap of the median is unreliable (the median's
  bootstrap distribution is discrete and lumpy for small n). No interval below n = 6 (``0.5^5 · 2 > 0.05``).
  Coverage is measured by simulation in ``tests/test_concepts_summary.py``.
* Share: Clopper-Pearson's exact binomial interval (``scipy.stats.binomtest(...).proportion_ci(method="exact")``),
  coverage >= 1 - α for every true share (also measured by simulation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class MedianInterval:
    """Median of a per-image number over images, with its order-statistic interval.

    Attributes:
        metric: the number's name; group: ``all``, ``correct`` or ``wrong``.
        median, low, high: NaN interval when n < 6 (and everything NaN when n = 0).
        n: images with a finite value.
        coverage: the interval's exact coverage for continuous data (NaN without an interval).
    """

    metric: str
    group: str
    median: float
    low: float
    high: float
    n: int
    coverage: float


@dataclass(frozen=True)
class ShareInterval:
    """Share of images with a property, with its Clopper-Pearson interval (NaN when n = 0)."""

    metric: str
    group: str
    count: int
    n: int
    share: float
    low: float
    high: float


@lru_cache(maxsize=1024)
def order_statistic_rank(n: int, confidence: float = CONFIDENCE) -> int:
    """The 1-based ``l`` of the median interval ``[x_(l), x_(n-l+1)]``, or 0 when n is too small for one."""
    if n < 1:
        return 0
    below = np.arange(n + 1)
    cdf = stats.binom.cdf(below, n, 0.5)
    allowed = below[cdf <= (1 - confidence) / 2]
    return int(allowed.max()) + 1 if allowed.size else 0


def median_interval(
    values: Sequence[float], *, metric: str = "", group: str = "all", confidence: float = CONFIDENCE
) -> MedianInterval:
    """The median of the finite ``values`` and its order-statistic interval (see the module docstring)."""
    sample = np.sort(np.asarray(values, np.float64)[np.isfinite(np.asarray(values, np.float64))])
    n = int(sample.size)
    if n == 0:
        return MedianInterval(metric, group, math.nan, math.nan, math.nan, 0, math.nan)
    rank = order_statistic_rank(n, confidence)
    if rank == 0:
        return MedianInterval(metric, group, float(np.median(sample)), math.nan, math.nan, n, math.nan)
    coverage = 1 - 2 * float(stats.binom.cdf(rank - 1, n, 0.5))
    return MedianInterval(
        metric, group, float(np.median(sample)), float(sample[rank - 1]), float(sample[n - rank]), n, coverage
    )


def share_interval(
    flags: Sequence[float], *, metric: str = "", group: str = "all", confidence: float = CONFIDENCE
) -> ShareInterval:
    """Share of true among the finite ``flags`` (1/0, NaN = not applicable) and its Clopper-Pearson interval."""
    values = np.asarray(flags, np.float64)
    values = values[np.isfinite(values)]
    n, count = int(values.size), int(np.count_nonzero(values))
    if n == 0:
        return ShareInterval(metric, group, 0, 0, math.nan, math.nan, math.nan)
    interval = stats.binomtest(count, n).proportion_ci(confidence_level=confidence, method="exact")
    return ShareInterval(metric, group, count, n, count / n, float(interval.low), float(interval.high))
