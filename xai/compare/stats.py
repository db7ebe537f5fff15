"""Uncertainty over images: bootstrap intervals of means, paired tests of "A beats B", rankings in groups.

Everything here is a thin, seeded wrapper over ``scipy.stats`` (no hand-written resampling or test):

* ``mean_interval``: the mean over images and its 95% percentile-bootstrap interval (none below 3 images)
  (``scipy.stats.bootstrap``, ``N_RESAMPLES`` resamples, ``method="percentile"``; Efron & Tibshirani 1993).
  Percentile rather than BCa because BCa's jackknife is undefined for the tiny, often tied samples here.
* ``paired_comparison``: for two methods scored on the same images, the mean difference with its paired
  bootstrap interval (``bootstrap((a, b), ..., paired=True)``), the two-sided Wilcoxon signed-rank test and
  the one-sided one (``alternative="greater"``, "a exceeds b") (``scipy.stats.wilcoxon``; zero differences
  dropped as Wilcoxon 1945 does; ``PairedComparison.n`` counts every finite pair, zeros included, and the
  test runs on the non-zero ones). ``method="exact"`` when at most ``EXACT_WILCOXON_MAX_N`` differences are
  non-zero; with ties among the |differences| scipy's exact table assumes none, so the test is labelled
  "exact (ties: conservative)" there. With fewer than 2 images, or when every difference is zero, nothing is
  tested and ``note`` says why. ``PairedComparison.exceeds`` ("a beats b") needs the one-sided test to reject
  at ``ALPHA`` **and** the paired bootstrap interval to lie above 0: a mean pulled up by one outlier while most
  differences are negative is not called a win.
* ``rank_groups``: methods ordered by their mean paired difference against every other method (over the images
  both were scored on); **every pair** is tested (two-sided Wilcoxon, Holm 1979 over all pairs, plus the paired
  interval excluding 0), and the result is a compact letter display (Piepho 2004): two methods that share a
  letter are not separated by the data; two that share none are.

All resampling is seeded, so the same inputs give byte-identical tables.
"""

from __future__ import annotations

import itertools
import math
import string
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
    result = stats.bootstrap(
        (sample,),
        np.mean,
        n_resamples=N_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
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
    """``"exact Wilcoxon signed-rank"`` (``" (ties: conservative)"`` appended when |differences| tie),
    ``"approximate Wilcoxon signed-rank"`` or ``""`` when not tested."""
    note: str
    """Why nothing was tested (``NOT_ENOUGH``/``ALL_TIED``), else empty."""
    p_greater: float = math.nan
    """One-sided Wilcoxon p-value for "a exceeds b" (``alternative="greater"``)."""

    @property
    def separated(self) -> bool:
        """Two-sided test rejects at ``ALPHA`` and the paired interval excludes 0."""
        return (
            math.isfinite(self.p_value)
            and self.p_value < ALPHA
            and math.isfinite(self.low)
            and (self.low > 0 or self.high < 0)
        )

    @property
    def exceeds(self) -> bool:
        """ "a beats b": one-sided test rejects at ``ALPHA`` and the paired interval lies above 0."""
        return exceeds(self.p_greater, self.low)

    def as_dict(self, prefix: str = "") -> dict[str, float | int | str]:
        return {
            f"{prefix}n": self.n,
            f"{prefix}diff": self.mean_difference,
            f"{prefix}diff_low": self.low,
            f"{prefix}diff_high": self.high,
            f"{prefix}p": self.p_value,
            f"{prefix}p_greater": self.p_greater,
            f"{prefix}test": self.test or self.note,
        }


def exceeds(p_greater: float, low: float) -> bool:
    """The rule for "a beats b": one-sided p < ``ALPHA`` and the lower end of the paired interval above 0."""
    return math.isfinite(p_greater) and p_greater < ALPHA and math.isfinite(low) and low > 0


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
        interval = stats.bootstrap(
            (first, second),
            _mean_difference,
            paired=True,
            vectorized=True,
            n_resamples=N_RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        low, high = float(interval.low), float(interval.high)
    nonzero = int(np.count_nonzero(differences))
    exact = nonzero <= EXACT_WILCOXON_MAX_N
    method = "exact" if exact else "approx"
    with warnings.catch_warnings():  # scipy warns that exact p with ties/zeros is approximate; we say so below
        warnings.simplefilter("ignore")
        result = stats.wilcoxon(first, second, zero_method="wilcox", method=method)
        greater = stats.wilcoxon(first, second, zero_method="wilcox", method=method, alternative="greater")
    magnitudes = np.abs(differences[differences != 0])
    tied = np.unique(magnitudes).size < magnitudes.size
    test = (
        "exact Wilcoxon signed-rank" + (" (ties: conservative)" if tied else "")
        if exact
        else "approximate Wilcoxon signed-rank"
    )
    return PairedComparison(
        n, mean, low, high, float(result.statistic), float(result.pvalue), test, "", float(greater.pvalue)
    )


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


def compact_letters(order: Sequence[str], separated: set[frozenset[str]]) -> dict[str, str]:
    """Compact letter display by insert-and-absorb (Piepho 2004): methods sharing a letter are not separated.

    ``order`` is the rank order (letters are assigned in it, ``a`` first); ``separated`` holds the pairs the
    data separate.
    """
    columns: list[set[str]] = [set(order)] if order else []
    position = {method: index for index, method in enumerate(order)}
    for first, second in sorted(tuple(sorted(pair, key=position.get)) for pair in separated):
        split: list[set[str]] = []
        for column in columns:
            if first in column and second in column:
                split.extend([column - {first}, column - {second}])
            else:
                split.append(column)
        columns = [
            c
            for i, c in enumerate(split)  # absorb: drop a column inside another (or a repeat)
            if c and not any(c < o or (c == o and j < i) for j, o in enumerate(split))
        ]
    columns.sort(key=lambda column: sorted(position[m] for m in column))
    letters = {method: "" for method in order}
    for index, column in enumerate(columns):
        for method in column:
            letters[method] += string.ascii_lowercase[index % 26]
    return {method: "".join(sorted(letters[method])) for method in order}


def rank_groups(
    scores: dict[str, Sequence[float]], *, higher_is_better: bool = True, seed: int = 0
) -> list[tuple[str, str, float]]:
    """``[(method, letters, smallest_holm_p_against_a_separated_method)]`` in rank order.

    ``scores`` maps each method to its per-image values, all in the same image order (NaN where a method was
    not scored). Methods with no finite value are left out. The rank order is by the mean, over the other
    methods, of the mean paired difference on the images both were scored on (so an image a method missed does
    not move it); every pair is tested and Holm-corrected over all pairs. Letters: see ``compact_letters``.
    """
    arrays = {method: np.asarray(values, dtype=np.float64) for method, values in scores.items()}
    kept = [method for method, values in arrays.items() if np.isfinite(values).any()]
    comparisons = {
        (a, b): paired_comparison(arrays[a], arrays[b], seed=seed) for a, b in itertools.combinations(kept, 2)
    }
    sign = 1.0 if higher_is_better else -1.0

    def standing(method: str) -> float:
        differences = [
            comparison.mean_difference * (1 if pair[0] == method else -1)
            for pair, comparison in comparisons.items()
            if method in pair
        ]
        finite = [d for d in differences if math.isfinite(d)]
        return float(np.mean(finite)) if finite else 0.0

    position_of = {method: position for position, method in enumerate(scores)}
    order = sorted(kept, key=lambda method: (-sign * standing(method), position_of[method]))
    pairs = list(comparisons)
    adjusted = holm([comparisons[pair].p_value for pair in pairs])
    separated = {
        frozenset(pair)
        for pair, p_value in zip(pairs, adjusted, strict=True)
        if math.isfinite(p_value) and p_value < ALPHA and comparisons[pair].separated
    }
    letters = compact_letters(order, separated)
    smallest = {
        method: min(
            (
                float(p)
                for pair, p in zip(pairs, adjusted, strict=True)
                if method in pair and frozenset(pair) in separated
            ),
            default=math.nan,
        )
        for method in order
    }
    return [(method, letters[method], smallest[method]) for method in order]
