"""Paired comparisons over images: the exact signed-rank test, the interval of the mean difference, Holm, letters.

* ``signed_rank_test``: Wilcoxon's signed-rank test (Wilcoxon 1945) with its **exact permutation distribution**:
  under H0 the sign of each non-zero difference is + or − with probability 1/2 independently (the differences are
  symmetric about 0 and the images independent), so W+ (the sum of the ranks of |d| over the positive d) has the
  distribution of ``Σ r_i B_i`` over the 2^n equally likely sign patterns. Tied |differences| get midranks; the
  distribution is computed exactly by dynamic programming over the doubled midranks (integers), so it is exact at
  every n, with or without ties. Zeros are dropped (Wilcoxon's convention; ``nonzero`` counts what is tested).
  Equal to full enumeration of the signs and to ``scipy.stats.wilcoxon(method=PermutationMethod(n_resamples=inf))``
  (tests), which takes minutes at n = 20 where this takes milliseconds. scipy's ``method="exact"`` assumes no ties:
  with tied |differences| its p can be too small (planted [4, 4, 5, 2, 2, −2]: 0.047 where the exact p is 0.0625).
* ``paired_comparison``: ``a − b`` over the images where both are finite: the mean difference with its 95% interval
  (:mod:`xai.compare.intervals`: t below 10 images, studentised bootstrap from 10), the two-sided exact p and the
  one-sided one for "a exceeds b". With fewer than 2 images, or when every difference is zero, nothing is tested and
  ``note`` says why.
* A claim is made at ``ALPHA`` only after correcting over its family (:mod:`xai.compare.family`, Holm 1979);
  ``exceeds``/``separated`` here are the single-test rules a family applies to its adjusted p-values.
* ``rank_groups``: methods in rank order with a compact letter display (Piepho 2004) over **all** pairs, Holm over
  them; letters separate nothing when ``family.smallest_p`` times the number of pairs cannot reach ``ALPHA``.

All resampling is seeded, so the same inputs give byte-identical tables.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from xai.compare.intervals import CONFIDENCE, MIN_INTERVAL_N, N_RESAMPLES, interval, mean_interval

__all__ = [
    "ALL_TIED",
    "ALPHA",
    "CONFIDENCE",
    "MIN_INTERVAL_N",
    "NOT_ENOUGH",
    "N_RESAMPLES",
    "PairedComparison",
    "SignedRankTest",
    "compact_letters",
    "exceeds",
    "holm",
    "mean_interval",
    "paired_comparison",
    "rank_groups",
    "signed_rank_test",
]

ALPHA = 0.05
"""Conventional level; every claim is made at it after Holm's correction over its family."""
NOT_ENOUGH = "not enough images"
ALL_TIED = "all differences are zero"
EXACT_TEST = "exact Wilcoxon signed-rank"
TIED_NOTE = " (midranks for tied |differences|)"


@dataclass(frozen=True)
class SignedRankTest:
    """The exact signed-rank test of one sample of differences (zeros dropped)."""

    w_plus: float
    """Sum of the (mid)ranks of |d| over the positive differences."""
    p_two_sided: float
    p_greater: float
    """P(W+ >= observed): "the differences are shifted above 0"."""
    nonzero: int
    tied: bool
    """Some non-zero |differences| are equal (midranks used)."""


def signed_rank_distribution(doubled_ranks: np.ndarray) -> np.ndarray:
    """``P(Σ doubled_ranks_i · B_i = s)`` for ``s = 0 .. Σ doubled_ranks``, the ``B_i`` independent fair coins."""
    doubled = np.asarray(doubled_ranks, dtype=np.int64)
    distribution = np.zeros(int(doubled.sum()) + 1)
    distribution[0] = 1.0
    reach = 0
    for rank in doubled:
        shifted = np.zeros_like(distribution)
        shifted[rank : reach + rank + 1] = distribution[: reach + 1]
        distribution = 0.5 * (distribution + shifted)
        reach += int(rank)
    return distribution


def signed_rank_test(differences: Sequence[float] | np.ndarray) -> SignedRankTest:
    """Exact signed-rank test of the finite non-zero ``differences`` (see the module docstring).

    Raises:
        ValueError: no non-zero finite difference.
    """
    values = np.asarray(differences, dtype=np.float64)
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        raise ValueError("no non-zero difference to test")
    doubled = np.rint(2 * stats.rankdata(np.abs(values))).astype(np.int64)  # midranks are halves
    distribution = signed_rank_distribution(doubled)
    observed = int(doubled[values > 0].sum())
    greater = float(distribution[observed:].sum())
    less = float(distribution[: observed + 1].sum())
    tied = np.unique(np.abs(values)).size < values.size
    return SignedRankTest(observed / 2, min(1.0, 2 * min(greater, less)), min(1.0, greater), int(values.size), tied)


@dataclass(frozen=True)
class PairedComparison:
    """``a − b`` over the images where both are finite: mean difference, its interval, the exact signed-rank test."""

    n: int
    """Finite pairs, zero differences included."""
    mean_difference: float
    low: float
    high: float
    statistic: float
    """W+ of the signed-rank test."""
    p_value: float
    """Two-sided exact p (uncorrected)."""
    test: str
    """``"exact Wilcoxon signed-rank"`` (``" (midranks for tied |differences|)"`` appended with ties), or ``""``."""
    note: str
    """Why nothing was tested (``NOT_ENOUGH``/``ALL_TIED``), else empty."""
    p_greater: float = math.nan
    """One-sided exact p for "a exceeds b" (uncorrected)."""
    nonzero: int = 0
    """Differences the test ranks (the zeros are dropped)."""
    sd: float = math.nan
    """Standard deviation of the differences (ddof = 1): the unit of the design's detectable effect."""
    interval: str = ""
    """How ``low``/``high`` were computed (:func:`xai.compare.intervals.interval_method`)."""

    @property
    def separated(self) -> bool:
        """One test alone (uncorrected): two-sided p < ``ALPHA`` and the interval excludes 0."""
        return separated(self.p_value, self.low, self.high)

    @property
    def exceeds(self) -> bool:
        """One test alone (uncorrected): one-sided p < ``ALPHA`` and the interval lies above 0."""
        return exceeds(self.p_greater, self.low)

    def as_dict(self, prefix: str = "") -> dict[str, float | int | str]:
        return {
            f"{prefix}n": self.n,
            f"{prefix}nonzero": self.nonzero,
            f"{prefix}diff": self.mean_difference,
            f"{prefix}diff_low": self.low,
            f"{prefix}diff_high": self.high,
            f"{prefix}sd": self.sd,
            f"{prefix}interval": self.interval,
            f"{prefix}p": self.p_value,
            f"{prefix}p_greater": self.p_greater,
            f"{prefix}test": self.test or self.note,
        }


def exceeds(p_greater: float, low: float) -> bool:
    """The rule for "a beats b" on a (corrected) one-sided p: p < ``ALPHA`` and the interval's lower end above 0."""
    return math.isfinite(p_greater) and p_greater < ALPHA and math.isfinite(low) and low > 0


def separated(p_value: float, low: float, high: float) -> bool:
    """The rule for "a and b differ" on a (corrected) two-sided p: p < ``ALPHA`` and the interval excludes 0."""
    return math.isfinite(p_value) and p_value < ALPHA and math.isfinite(low) and (low > 0 or high < 0)


def paired_comparison(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> PairedComparison:
    """Paired comparison of ``a`` and ``b`` (same images, same order); pairs with a NaN are dropped."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(f"paired samples differ in length: {first.shape} vs {second.shape}")
    keep = np.isfinite(first) & np.isfinite(second)
    differences = first[keep] - second[keep]
    n = int(differences.size)
    mean = float(differences.mean()) if n else math.nan
    sd = float(differences.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return PairedComparison(n, mean, math.nan, math.nan, math.nan, math.nan, "", NOT_ENOUGH, sd=sd)
    if not np.any(differences != 0):
        return PairedComparison(n, 0.0, 0.0, 0.0, math.nan, math.nan, "", ALL_TIED, sd=0.0)
    _, low, high, _, method = interval(differences, seed=seed)
    test = signed_rank_test(differences)
    label = EXACT_TEST + (TIED_NOTE if test.tied else "")
    return PairedComparison(
        n, mean, low, high, test.w_plus, test.p_two_sided, label, "", test.p_greater, test.nonzero, sd, method
    )


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


def compact_letters(order: Sequence[str], separated_pairs: set[frozenset[str]]) -> dict[str, str]:
    """Compact letter display by insert-and-absorb (Piepho 2004): methods sharing a letter are not separated.

    ``order`` is the rank order (letters are assigned in it, ``a`` first); ``separated_pairs`` holds the pairs the
    data separate.
    """
    columns: list[set[str]] = [set(order)] if order else []
    position = {method: index for index, method in enumerate(order)}
    for first, second in sorted(tuple(sorted(pair, key=position.get)) for pair in separated_pairs):
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


def standing_order(
    comparisons: dict[tuple[str, str], PairedComparison], methods: Sequence[str], higher_is_better: bool = True
) -> list[str]:
    """``methods`` by the mean, over the others, of their mean paired difference (ties: the given order)."""
    sign = 1.0 if higher_is_better else -1.0

    def standing(method: str) -> float:
        found = [
            c.mean_difference * (1 if pair[0] == method else -1)
            for pair, c in comparisons.items()
            if method in pair and math.isfinite(c.mean_difference)
        ]
        return float(np.mean(found)) if found else 0.0

    position = {method: index for index, method in enumerate(methods)}
    return sorted(methods, key=lambda method: (-sign * standing(method), position[method]))


def rank_groups(
    scores: dict[str, Sequence[float]], *, higher_is_better: bool = True, seed: int = 0
) -> list[tuple[str, str, float]]:
    """``[(method, letters, smallest_holm_p_against_a_separated_method)]`` in rank order.

    ``scores`` maps each method to its per-image values, all in the same image order (NaN where a method was
    not scored). Methods with no finite value are left out. The rank order is by the mean, over the other
    methods, of the mean paired difference on the images both were scored on; every pair is tested (two-sided
    exact signed-rank) and Holm-corrected over all pairs. A pair is separated when its adjusted p < ``ALPHA`` and
    the interval of its mean difference excludes 0. Letters: see ``compact_letters``.
    """
    arrays = {method: np.asarray(values, dtype=np.float64) for method, values in scores.items()}
    kept = [method for method, values in arrays.items() if np.isfinite(values).any()]
    comparisons = {
        (a, b): paired_comparison(arrays[a], arrays[b], seed=seed) for a, b in itertools.combinations(kept, 2)
    }
    order = standing_order(comparisons, kept, higher_is_better)
    pairs = list(comparisons)
    adjusted = holm([comparisons[pair].p_value for pair in pairs])
    found = {
        frozenset(pair)
        for pair, p_value in zip(pairs, adjusted, strict=True)
        if separated(float(p_value), comparisons[pair].low, comparisons[pair].high)
    }
    letters = compact_letters(order, found)
    smallest = {
        method: min(
            (float(p) for pair, p in zip(pairs, adjusted, strict=True) if method in pair and frozenset(pair) in found),
            default=math.nan,
        )
        for method in order
    }
    return [(method, letters[method], smallest[method]) for method in order]
