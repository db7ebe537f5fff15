"""Uncertainty over images: bootstrap intervals of means, paired tests of "A beats B", rankings in groups.

Everything here is a thin, seeded wrapper over ``scipy.stats`` (no hand-written resampling or test):

* ``mean_interval``: the mean over images and its 95% percentile-bootstrap interval (none below 3 images)
  (``scipy.stats.bootstrap``, ``N_RESAMPLES`` resamples, ``method="percentile"``; Efron & Tibshirani 1993).
  Percentile rather than BCa because BCa's jackknife is undefined for the tiny, often tied samples here.
* ``paired_comparison``: for two methods scored on the same images, the mean difference with its paired
  bootstrap interval (``bootstrap((a, b), ..., paired=True)``) and the two-sided Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``; ``method="exact"`` for n <= ``EXACT_WILCOXON_MAX_N``, zero differences dropped
  as Wilcoxon 1945 does, so n counts the non-zero pairs). With fewer than 2 images, or when every difference
  is zero, nothing is tested and ``note`` says why.
* ``rank_groups``: methods ordered by mean; walking down that order, a method starts a new group when the
  paired test against the previous method rejects at ``ALPHA`` after Holm's correction over the adjacent
  comparisons (Holm 1979). Methods in one group are not separated by the data.

All resampling is seeded, so the same inputs give byte-identical tables.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

N_RESAMPLES = 9999
CONFIDENCE = 0.95
ALPHA = 0.05
"""Conventional two-sided test level; every test's p-value is printed beside any claim made at this level."""
EXACT_WILCOXON_MAX_N = 20
MIN_INTERVAL_N = 3
"""A bootstrap over 2 values has 3 distinct resampled means: no interval is given below 3 images."""
NOT_ENOUGH = "not enough images"
ALL_TIED = "all differences are zero"


def _clean(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def mean_interval(values: Sequence[float], *, seed: int = 0) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` over the finite values: 95% percentile-bootstrap interval of the mean.

    NaN interval for n < ``MIN_INTERVAL_N``; a constant sample has the degenerate interval ``(c, c)``.
    """
    sample = _clean(values)
    n = int(sample.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(sample.mean())
    if n < MIN_INTERVAL_N:
        return mean, math.nan, math.nan, n
    if np.ptp(sample) == 0:
        return mean, mean, mean, n
    result = stats.bootstrap((sample,), np.mean, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE,
                             method="percentile", rng=np.random.default_rng(seed))
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high), n


@dataclass(frozen=True)
class PairedComparison:
    """``a − b`` over the images where both are finite: mean difference, its interval, Wilcoxon test."""

    n: int
    mean_difference: float
    low: float
    high: float
    statistic: float
    p_value: float
    test: str
    """``"exact Wilcoxon signed-rank"``, ``"approximate Wilcoxon signed-rank"`` or ``""`` when not tested."""
    note: str
    """Why nothing was tested (``NOT_ENOUGH``/``ALL_TIED``), else empty."""

    @property
    def separated(self) -> bool:
        return math.isfinite(self.p_value) and self.p_value < ALPHA

    def as_dict(self, prefix: str = "") -> dict[str, float | int | str]:
        return {f"{prefix}n": self.n, f"{prefix}diff": self.mean_difference, f"{prefix}diff_low": self.low,
                f"{prefix}diff_high": self.high, f"{prefix}p": self.p_value, f"{prefix}test": self.test or self.note}


def paired_comparison(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> PairedComparison:
    """Paired comparison of ``a`` and ``b`` (same images, same order); pairs with a NaN are dropped."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(f"paired samples differ in length: {first.shape} vs {second.shape}")
    keep = np.isfinite(first) & np.isfinite(second)
    first, second = first[keep], second[keep]
    n = int(first.size)
    differences = first - second
    mean = float(differences.mean()) if n else math.nan
    if n < 2:
        return PairedComparison(n, mean, math.nan, math.nan, math.nan, math.nan, "", NOT_ENOUGH)
    if not np.any(differences != 0):
        return PairedComparison(n, 0.0, 0.0, 0.0, math.nan, math.nan, "", ALL_TIED)
    if n < MIN_INTERVAL_N:
        low = high = math.nan
    elif np.ptp(differences) == 0:
        low = high = mean
    else:
        interval = stats.bootstrap((first, second), _mean_difference, paired=True, vectorized=True,
                                   n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE, method="percentile",
                                   rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(interval.low), float(interval.high)
    nonzero = int(np.count_nonzero(differences))
    exact = nonzero <= EXACT_WILCOXON_MAX_N
    with warnings.catch_warnings():  # scipy warns that exact p with ties/zeros is approximate; we say so below
        warnings.simplefilter("ignore")
        result = stats.wilcoxon(first, second, zero_method="wilcox", method="exact" if exact else "approx")
    test = "exact Wilcoxon signed-rank" if exact else "approximate Wilcoxon signed-rank"
    return PairedComparison(n, mean, low, high, float(result.statistic), float(result.pvalue), test, "")


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (step-down, monotone); NaN stays NaN and is not counted as a test."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - position) * p[index]))
        adjusted[index] = running
    return adjusted


def rank_groups(scores: dict[str, Sequence[float]], *, higher_is_better: bool = True, seed: int = 0
                ) -> list[tuple[str, int, float]]:
    """``[(method, group, holm_p_vs_previous)]`` in rank order; groups number from 1.

    ``scores`` maps each method to its per-image values, all in the same image order (NaN where a method was
    not scored). Methods with no finite value are left out.
    """
    arrays = {method: np.asarray(values, dtype=np.float64) for method, values in scores.items()}
    means = {method: float(np.nanmean(values)) for method, values in arrays.items() if np.isfinite(values).any()}
    sign = -1.0 if higher_is_better else 1.0
    position_of = {method: position for position, method in enumerate(scores)}
    order = sorted(means, key=lambda method: (sign * means[method], position_of[method]))
    raw = [paired_comparison(scores[previous], scores[current], seed=seed).p_value
           for previous, current in itertools.pairwise(order)]
    adjusted = holm(raw)
    groups, group = [], 1
    for position, method in enumerate(order):
        p_value = math.nan if position == 0 else float(adjusted[position - 1])
        if position and math.isfinite(p_value) and p_value < ALPHA:
            group += 1
        groups.append((method, group, p_value))
    return groups
