"""Defect 3 (planted): the signed-rank p-value is exact with tied |differences|, checked against full enumeration.

scipy's ``method="exact"`` table assumes no ties. Before the fix, the planted differences [4, 4, 5, 2, 2, −2]/64
printed one-sided p = 0.0469 and "A beats B" where the exact permutation p is 0.0625; over 571 random tied samples
the printed p was below the exact one 104 times and flipped 15 decisions at 0.05.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from xai.compare.narrative import beats
from xai.compare.stats import paired_comparison, signed_rank_test

PLANTED = np.array([4, 4, 5, 2, 2, -2]) / 64


def enumerated(differences: np.ndarray) -> tuple[float, float]:
    """``(p_greater, p_two_sided)`` by listing all 2^n sign patterns of the non-zero differences (midranks)."""
    values = differences[differences != 0]
    ranks = stats.rankdata(np.abs(values))
    signs = np.array(list(itertools.product((0, 1), repeat=values.size)), dtype=bool)
    w_plus = signs @ ranks
    observed = ranks[values > 0].sum()
    greater = np.mean(w_plus >= observed - 1e-9)
    less = np.mean(w_plus <= observed + 1e-9)
    return float(greater), float(min(1.0, 2 * min(greater, less)))


def test_planted_ties_give_the_exact_p_and_no_claim() -> None:
    result = paired_comparison(PLANTED, np.zeros(6), seed=0)
    assert result.p_greater == 0.0625 == enumerated(PLANTED)[0]  # 4 of the 64 sign patterns reach W+ >= 19
    assert result.test == "exact Wilcoxon signed-rank (midranks for tied |differences|)"
    assert not result.exceeds and not beats(result.as_dict("x_"), "x_")
    assert stats.wilcoxon(PLANTED, alternative="greater", method="exact").pvalue < 0.05  # what was printed before


def test_random_tied_samples_equal_full_enumeration() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(3, 13))
        differences = rng.integers(-3, 8, n) / 16  # coarse values: ties and zeros are common
        if not np.any(differences):
            continue
        found = signed_rank_test(differences)
        greater, two_sided = enumerated(differences)
        assert found.p_greater == pytest.approx(greater, abs=1e-12)
        assert found.p_two_sided == pytest.approx(two_sided, abs=1e-12)
        assert found.nonzero == np.count_nonzero(differences)
        checked += 1
    assert checked > 250


def test_equals_scipys_permutation_distribution_and_its_exact_table_without_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        tied = rng.integers(-2, 5, 8) / 8
        tied = tied[tied != 0]
        exact = stats.wilcoxon(tied, alternative="greater", method=stats.PermutationMethod(n_resamples=np.inf))
        assert signed_rank_test(tied).p_greater == pytest.approx(exact.pvalue, abs=1e-12)
        untied = rng.normal(0.2, 1, 15)
        assert signed_rank_test(untied).p_two_sided == pytest.approx(
            stats.wilcoxon(untied, method="exact").pvalue, abs=1e-12
        )
        assert signed_rank_test(untied).p_greater == pytest.approx(
            stats.wilcoxon(untied, method="exact", alternative="greater").pvalue, abs=1e-12
        )


def test_large_n_is_exact_too_and_agrees_with_the_normal_approximation() -> None:
    """At n = 200 the exact distribution (milliseconds) is close to scipy's tie-corrected normal approximation."""
    differences = np.round(np.random.default_rng(2).normal(0.05, 0.3, 200), 2)
    found = signed_rank_test(differences)
    approximate = stats.wilcoxon(differences, method="approx", correction=False)
    assert found.tied and found.p_two_sided == pytest.approx(approximate.pvalue, rel=0.05)


def test_zero_differences_are_dropped_and_the_table_says_how_many_were_tested() -> None:
    a = np.array([0.5, 0.6, 0.7, 0.4, 0.3, 0.5, 0.6, 0.2, 0.9, 0.8])
    b = a.copy()
    b[:6] -= np.array([0.1, 0.2, 0.15, 0.05, 0.12, 0.3])  # four images tie exactly
    result = paired_comparison(a, b)
    assert (result.n, result.nonzero) == (10, 6)
    assert result.p_greater == pytest.approx(1 / 64)  # the six non-zero differences all positive
    cells = _claim_cells(result.as_dict("x_"))
    assert (cells["n"], cells["Non-zero"]) == ("10", "6")  # the page's table of every test says how many were tested
    assert _claim_cells(paired_comparison(a, a + 0.1).as_dict("y_"), "y_")["Non-zero"] == "10"


def _claim_cells(row: dict, prefix: str = "x_") -> dict[str, str]:
    """The cells of a comparison in the Task 4 page's table of every test, by column title."""
    from xai.report.blocks import Test
    from xai.report.compare_tests import CLAIM_COLUMNS, ClaimRow
    from xai.report.page import cell_of

    claim = ClaimRow("A", "B", Test.of(row, prefix, one_sided=True))
    return {column.title: str(cell_of(claim, column)) for column in CLAIM_COLUMNS}


def test_every_tested_p_says_which_side() -> None:
    """Two images: p = 0.5 two-sided and 0.25 one-sided, each under a column naming its side (the old n < 3 branch
    printed it bare), and a one-sided cell of the summary prints the one-sided p."""
    from xai.report.blocks import Test
    from xai.report.page import fmt_test

    row = paired_comparison([0.9, 0.8], [0.1, 0.2]).as_dict("x_")
    cells = _claim_cells(row)
    assert (cells["p (two-sided)"], cells["p (one-sided, greater)"]) == ("0.5", "0.25")
    assert "p = 0.25" in fmt_test(Test.of(row, "x_", one_sided=True))
    assert "p = 0.5" in fmt_test(Test.of(row, "x_"))
    assert math.isnan(signed_rank_test([1.0]).p_two_sided) is False
    with pytest.raises(ValueError):
        signed_rank_test([0.0, 0.0])
