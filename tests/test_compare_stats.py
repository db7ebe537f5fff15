"""Uncertainty and claims: bootstrap intervals, paired Wilcoxon tests, Holm, ranking groups (known answers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from xai.compare.stats import ALL_TIED, NOT_ENOUGH, holm, mean_interval, paired_comparison, rank_groups


def test_mean_interval_covers_the_mean_and_handles_small_samples() -> None:
    values = np.random.default_rng(0).normal(0.4, 0.1, size=12)
    mean, low, high, n = mean_interval(values, seed=3)
    assert n == 12 and mean == pytest.approx(values.mean())
    assert low < mean < high
    assert (low, high) == mean_interval(values, seed=3)[1:3]  # seeded: byte-identical tables
    wide = mean_interval(np.r_[values, 5.0], seed=3)
    assert wide[2] - wide[1] > high - low  # an outlier widens the interval
    assert mean_interval([0.3], seed=0)[0] == 0.3 and math.isnan(mean_interval([0.3], seed=0)[1])
    assert mean_interval([0.25, 0.25, 0.25]) == (0.25, 0.25, 0.25, 3)
    assert mean_interval([np.nan, 0.5, 0.7])[3] == 2
    # two values: Student's t with 1 degree of freedom (covers 0.94+ on the reference data), cut to the bounds given
    half = stats.t.ppf(0.975, 1) * np.std([0.5, 0.7], ddof=1) / math.sqrt(2)
    assert mean_interval([0.5, 0.7])[1:3] == pytest.approx((0.6 - half, 0.6 + half))
    assert mean_interval([0.5, 0.7], bounds=(0, 1))[1:3] == (0.0, 1.0)
    assert math.isnan(mean_interval([])[0])


def test_paired_comparison_known_exact_p_and_interval() -> None:
    a = np.array([0.50, 0.62, 0.41, 0.55, 0.70, 0.48])
    b = a - np.array([0.10, 0.05, 0.20, 0.15, 0.08, 0.12])  # every difference positive, all distinct
    result = paired_comparison(a, b, seed=0)
    assert result.n == 6 and result.test == "exact Wilcoxon signed-rank"
    assert result.p_value == pytest.approx(2 / 2**6)  # the only two-sided extreme: all signs equal
    assert result.p_value == pytest.approx(stats.wilcoxon(a, b, method="exact").pvalue)
    assert result.mean_difference == pytest.approx(np.mean(a - b))
    assert 0.05 <= result.low < result.mean_difference < result.high <= 0.20
    assert result.separated
    swapped = paired_comparison(b, a, seed=0)
    assert swapped.mean_difference == pytest.approx(-result.mean_difference)
    assert swapped.p_value == pytest.approx(result.p_value)


def test_paired_comparison_says_why_it_cannot_test() -> None:
    assert paired_comparison([0.3], [0.1]).note == NOT_ENOUGH
    assert paired_comparison([0.3, np.nan], [0.1, 0.2]).note == NOT_ENOUGH  # one complete pair
    tied = paired_comparison([0.3, 0.4, 0.5], [0.3, 0.4, 0.5])
    assert tied.note == ALL_TIED and math.isnan(tied.p_value) and not tied.separated
    with pytest.raises(ValueError):
        paired_comparison([0.1, 0.2], [0.1])


def test_two_images_cannot_separate_anything() -> None:
    result = paired_comparison([0.9, 0.8], [0.1, 0.2])
    assert result.p_value == pytest.approx(0.5) and not result.separated  # 2 / 2^2
    assert result.low < 0 < result.high and result.interval == "t"  # the t-interval of two differences spans 0


def test_holm_adjustment() -> None:
    adjusted = holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])


def test_rank_groups_separate_only_what_the_data_separate() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.3, size=10)
    mid = base + 0.2
    scores = {
        "low": base,
        "high": base + 0.4 + rng.uniform(0, 0.01, 10),
        "mid": mid,
        "mid-twin": mid + np.array([1, -1] * 5) * rng.uniform(0.001, 0.01, 10),
    }
    groups = rank_groups(scores)
    assert groups[0][0] == "high"
    letters = {method: letter for method, letter, _ in groups}
    assert letters == {"high": "a", "mid": "b", "mid-twin": "b", "low": "c"}
    lower = {m: g for m, g, _ in rank_groups(scores, higher_is_better=False)}
    assert lower["low"] == "a" and lower["high"] == "c"
    few = rank_groups({name: values[:2] for name, values in scores.items()})
    assert {group for _, group, _ in few} == {"a"}  # n = 2: no paired test can reject
    assert [m for m, _, _ in rank_groups({"a": [np.nan, np.nan], "b": [0.1, 0.2]})] == ["b"]


def test_rank_groups_correct_for_multiple_comparisons() -> None:
    """n = 6 all-positive differences: exact p = 2/64 = 0.031 alone separates two methods, but three pairs
    Holm-corrected (3 x 0.031 = 0.094) do not: a chain of small gaps is not claimed as three groups."""
    base = np.array([0.10, 0.20, 0.15, 0.30, 0.25, 0.05])
    steps = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    two = rank_groups({"a": base + steps, "b": base})
    assert [group for _, group, _ in two] == ["a", "b"]
    assert two[0][2] == pytest.approx(0.03125)
    three = rank_groups({"a": base + 2 * steps, "b": base + steps, "c": base})
    assert [group for _, group, _ in three] == ["a", "a", "a"]


def test_rank_groups_test_every_pair_not_only_neighbours() -> None:
    """a > c on every image; b is noisy and overlaps both. Adjacent tests (a-b, b-c) separate nothing; the
    all-pairs test separates a from c, so the letters are a: "a", b: "ab", c: "b" (b shares a letter with each)."""
    rng = np.random.default_rng(3)
    c = rng.uniform(0.2, 0.3, size=10)
    a = c + 0.3 + rng.uniform(0, 0.01, 10)
    b = c + 0.15 + np.array([1, -1] * 5) * 0.5
    groups = rank_groups({"c": c, "b": b, "a": a})
    assert [(method, letters) for method, letters, _ in groups] == [("a", "a"), ("b", "ab"), ("c", "b")]


def test_compact_letters_insert_absorb() -> None:
    from xai.compare.stats import compact_letters

    order = ["w", "x", "y", "z"]
    assert compact_letters(order, set()) == {m: "a" for m in order}
    separated = {frozenset(("w", "y")), frozenset(("w", "z")), frozenset(("x", "z"))}
    assert compact_letters(order, separated) == {"w": "a", "x": "ab", "y": "bc", "z": "c"}


def test_beyond_needs_one_sided_test_and_interval_above_zero() -> None:
    """Eleven small negative differences and one large positive one: the mean is positive and the two-sided test
    rejects, yet most images go the other way. Not "beyond"."""
    from xai.compare.narrative import beats

    null = np.linspace(0.2, 0.5, 12)
    differences = np.array([-0.01 * i for i in range(1, 12)] + [0.9])
    comparison = paired_comparison(null + differences, null)
    assert comparison.mean_difference > 0 and comparison.p_value < 0.05  # the old rule said "beyond"
    assert comparison.p_greater > 0.5
    assert not comparison.exceeds
    assert not beats(comparison.as_dict("superpixel_"), "superpixel_")
    clear = paired_comparison(null + 0.1 + 0.01 * np.arange(12), null)
    assert clear.exceeds and beats(clear.as_dict("x_"), "x_")
    assert not paired_comparison(null, null + 0.1 + 0.01 * np.arange(12)).exceeds


def test_exact_label_says_tied_differences_get_midranks() -> None:
    tied = paired_comparison([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 1.0])
    assert tied.test == "exact Wilcoxon signed-rank (midranks for tied |differences|)"
    assert paired_comparison([1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 0.7, 0.2]).test == "exact Wilcoxon signed-rank"
