"""Cross-image summary: deterministic tables, exact round trip, and findings generated from the numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.helpers import compare_artifacts as fixed
from xai import serial
from xai.compare import (
    RANDOM_WEIGHTS_NOTE,
    TABLES,
    ComparisonSummary,
    SanityResult,
    findings,
    summarise,
)
from xai.compare.narrative import complexity_line, sanity_notes
from xai.report.compare_tests import agreement_claims
from xai.report.page import cell_of

_segments = fixed.segment_grid
_faithfulness = fixed.faithfulness_result
_sanity = fixed.sanity_result
PRIMARY = fixed.CAMS
"""The CAMs of the primary family in these tests (a run's are the assignment's)."""


def _comparisons(n_images: int = 8):
    return fixed.image_comparisons(n_images)


def _summary(sanity: SanityResult | None = None, n_images: int = 8) -> ComparisonSummary:
    return fixed.comparison_summary(sanity, n_images)


def test_summary_tables_are_deterministic_and_round_trip() -> None:
    summary = _summary(_sanity())
    assert _summary(_sanity()).csv_texts() == summary.csv_texts()  # byte-identical CSV for the same inputs
    arrays, meta = serial.to_parts(summary)
    restored = serial.from_parts(ComparisonSummary, arrays, meta)
    assert restored.csv_texts() == summary.csv_texts()
    assert serial.to_parts(restored)[1] == meta and restored.notes == ("img0: a caveat",)
    for name in TABLES:
        assert list(restored.tables()[name].dtypes) == list(summary.tables()[name].dtypes), name
    assert len(summary.agreement) == 8 * 3 * 2  # images x (methods + centre prior) x ks
    assert (summary.agreement["n_seeds"] == 2).all()


def test_summary_numbers_carry_intervals_and_paired_tests() -> None:
    summary = _summary()
    by_method = summary.agreement_by_method.set_index(["method", "k"])
    good, noise = by_method.loc[("Good", 5)], by_method.loc[("Noise", 5)]
    assert good["iou_low"] < good["iou_mean"] < good["iou_high"] and good["n_images"] == 8
    assert good["superpixel_p"] < 0.05 and good["superpixel_test"] == "exact Wilcoxon signed-rank"
    assert good["cross_image_diff"] > 0 and good["location_diff"] > 0 and good["centre_diff"] > 0
    assert not noise["superpixel_p"] < 0.05
    # 7 primary claims (2 CAMs x 3 nulls + 1 pair): Good's three one-sided p = 1/256 adjust to 7/256 = 0.027
    assert good["superpixel_p_holm"] == pytest.approx(7 / 256) and good["superpixel_family"] == "primary"
    assert good["superpixel_claim"] and good["location_claim"] and not noise["superpixel_claim"]
    assert good["agreement_group"] == good["primary_group"] == "a" and "a" not in noise["agreement_group"]
    assert math.isnan(by_method.loc[("Good", 10), "superpixel_p_holm"])  # claims are made at the headline k only
    ranking = summary.faithfulness_ranking.set_index("method")
    assert list(ranking.index) == ["Good", "lime", "centre", "random", "Noise"]
    # lime, Good and Noise form the primary faithfulness family (6 one-sided + 3 pairs); each pair differs on all 8
    # images (p = 2/256) and Holm's step-down after the one-sided claims still separates them.
    pairs = summary.faithfulness_pairs.set_index(["a", "b"])
    assert (pairs["family"] == "primary").all() and pairs["separated"].all()
    assert [ranking.at[m, "faithfulness_group"] for m in ("Good", "lime", "Noise")] == ["a", "b", "c"]
    design = summary.design.set_index(["question", "family"])
    assert design.at[("faithfulness", "primary"), "tests"] == 9
    assert design.at[("faithfulness", "primary"), "smallest_adjusted_p_two_sided"] == pytest.approx(9 / 256)
    assert ranking.at["Good", "vs_random_p"] == pytest.approx(2 / 2**8)  # 8 positive paired differences
    assert ranking.at["Good", "vs_random_diff"] > 0 and ranking.at["Noise", "vs_random_diff"] < 0
    assert ranking.at["random", "random_std_mean"] > 0  # spread over the smooth random draws is reported
    assert ranking.at["Good", "iou_mean"] == pytest.approx(good["iou_mean"])
    assert summary.faithfulness_agreement_n == 2  # too few CAM methods for a rank correlation
    sweep = summary.sweep_by_method
    assert len(sweep) == 3 * 2 * 10
    correlations = summary.complexity_correlation
    assert set(correlations["method"]) == {"all", "Good", "Noise"} and (correlations["n"] == 8).all()


def test_findings_are_generated_from_the_numbers_without_cut_offs() -> None:
    summary = _summary(_sanity())
    text = findings(summary)
    joined = " ".join(text)
    by_method = summary.agreement_by_method.set_index(["method", "k"])
    good_iou = f"{by_method.loc[('Good', 5), 'iou_mean']:.2f}"
    assert any(s.startswith(f"Good: IoU {good_iou} [") and "with LIME's top-5 (n = 8)" in s for s in text)
    assert any(s.startswith("Good:") and "beyond all three nulls" in s for s in text)
    assert any(s.startswith("Noise:") and "not shown beyond any null" in s for s in text)
    assert any(s.startswith("The assignment's CAMs by IoU (Holm, 7 primary tests, n = 8)") for s in text)
    assert any(s.startswith("By faithfulness") and s.index("Good ") < s.index("Noise") for s in text)
    # the full test output is in the page's table of every test, not in the sentences
    claims = agreement_claims(summary)
    good = next(row for row in claims.rows if (row.method, row.against) == ("Good", "superpixel null"))
    cells = {column.title: str(cell_of(good, column)) for column in claims.columns}
    assert (cells["p (two-sided)"], cells["p (one-sided, greater)"], cells["n"]) == ("0.0078", "0.0039", "8")
    assert "exact Wilcoxon" not in joined
    assert any(s.startswith("Agreement, primary (7 tests, n = 8, 80% power)") for s in text)
    for banned in ("passes", "fails", "unrelated", "pass mark"):
        assert banned not in joined
    assert any(s.startswith("Good after randomising down to layer4") and "0.10 [" in s for s in text)
    assert "Adebayo et al. 2018" in joined and "Edge detector after randomising" in joined
    assert any("300 samples" in note for note in sanity_notes(summary))
    assert complexity_line(summary) in text
    assert not summary.weights_are_random


def test_random_weights_say_so_instead_of_numbers() -> None:
    summary = _summary(SanityResult.skipped())
    assert summary.weights_are_random
    assert summary.sanity.empty
    text = findings(summary)
    assert RANDOM_WEIGHTS_NOTE in text
    assert not any("after randomising" in s for s in text)
    restored = serial.from_parts(ComparisonSummary, *serial.to_parts(summary))
    assert restored.weights_are_random


def test_summary_rejects_duplicate_image_ids_and_accepts_no_images() -> None:
    comparison = _comparisons(1)[0][0]
    with pytest.raises(ValueError, match="unique"):
        summarise([comparison, comparison])
    empty = summarise([])
    assert empty.agreement.empty and "cannot be answered" in empty.complexity_answer
    assert serial.from_parts(ComparisonSummary, *serial.to_parts(empty)).csv_texts() == empty.csv_texts()


@pytest.mark.parametrize("n_images", [1, 2])
def test_summary_with_few_images_says_not_enough(n_images: int) -> None:
    summary = _summary(n_images=n_images)
    assert "cannot be answered" in summary.complexity_answer
    text = findings(summary)
    if n_images == 1:  # one image: no interval, no test
        good = next(s for s in text if s.startswith("Good: IoU"))
        assert "[" not in good and "top-5 (n = 1); no claim possible on 1 image " in good
        notes = {row.test.note for row in agreement_claims(summary).rows}
        assert notes == {"not enough images"}
    else:  # two images: an exact Wilcoxon p can never be below 0.5, so nothing is claimed and nothing ranked
        assert not any("beyond all three nulls" in s for s in text)
        assert set(summary.faithfulness_ranking["faithfulness_group"]) == {""}
        assert any("cannot be ranked on 2 images" in s for s in text)


def test_the_answers_are_the_primary_verdicts_and_rankings() -> None:
    from xai.compare.narrative import answers

    found = answers(_summary(_sanity()))
    lines = [line for _, line in found]
    assert lines[0].startswith("Good: IoU") and "beyond all three nulls" in lines[0]
    assert ("design", next(line for line in lines if line.startswith("The assignment's CAMs by IoU"))) in found
    assert any(topic == "faithfulness" and line.startswith("Most faithful") for topic, line in found)
    assert not any(line.startswith("Good: score") for line in lines)  # per-method detail stays on the page
    assert [topic for topic, _ in found][-2:] == ["complexity", "sanity"]


def test_a_family_that_cannot_reach_alpha_is_an_answer_of_its_own() -> None:
    """Three images: the primary CAMs cannot be ranked and nothing can be claimed; each is one line of the answers."""
    from xai.compare.narrative import answers

    lines = [line for _, line in answers(_summary(_sanity(), n_images=3))]
    assert any(line.startswith("The assignment's CAMs by IoU cannot be ranked on 3 images") for line in lines)
    assert any("no claim possible on 3 images (Holm p ≥" in line for line in lines)


def test_maps_excluded_from_faithfulness_are_shown_with_their_reason() -> None:
    """A map that was not scored (all zero) on one image appears in the faithfulness table and findings with its
    reason, and the ranking's n counts only the scored images."""
    import dataclasses

    from xai.compare.narrative import faithfulness_findings
    from xai.report.compare_tests import excluded_table, ranking_table
    from xai.report.page import cell_of

    comparisons, cross = _comparisons(4)
    faithful = []
    for i in range(4):
        result = _faithfulness(f"img{i}", {"lime": (0.3, 0.7 + 0.01 * i), "Good": (0.2, 0.8 + 0.01 * i)})
        if i == 2:  # Good's map was all zero on img2: faithfulness_image leaves it out and records why
            result = dataclasses.replace(
                result,
                methods=("lime",),
                deletion=result.deletion[:1],
                insertion=result.insertion[:1],
                deletion_auc=result.deletion_auc[:1],
                insertion_auc=result.insertion_auc[:1],
                excluded=(("Good", "the map is all zero"),),
            )
        faithful.append(result)
    summary = summarise(comparisons, faithful, None, k=5, cross_image=cross)
    ranking = summary.faithfulness_ranking.set_index("method")
    assert ranking.at["Good", "n_images"] == 3 and ranking.at["Good", "n_excluded"] == 1
    assert ranking.at["Good", "excluded"] == "img2: the map is all zero"
    table = summary.faithfulness.set_index(["image", "method"])
    assert table.at[("img2", "Good"), "excluded"] == "the map is all zero"
    assert np.isnan(table.at[("img2", "Good"), "score"])
    sentence = "Good: faithfulness not scored on 1 image(s) (the table gives the reasons)."
    assert sentence in faithfulness_findings(summary)
    ranked = ranking_table(summary.faithfulness_ranking)
    good = next(row for row in ranked.rows if row["method"] == "Good")
    cells = {column.title: str(cell_of(good, column)) for column in ranked.columns}
    assert cells["Excluded"] == "1" and cells["Images"] == "3"
    reasons = {(row["method"], row["question"]): row["reasons"] for row in excluded_table(summary).rows}
    assert reasons[("Good", "faithfulness")] == "img2: the map is all zero"


def test_seed_count_sentence_follows_each_image() -> None:
    """An image that fell back to one LIME seed is not described as the mean over the others' seed count."""
    from types import SimpleNamespace

    import pandas as pd

    from xai.compare.narrative import seeds_text

    table = pd.DataFrame(
        {"method": ["Good"] * 3 + ["Other"], "k": [5] * 4, "excluded": [""] * 4, "n_seeds": [3, 1, 3, 3]}
    )
    summary = SimpleNamespace(agreement=table, k=5)
    assert seeds_text(summary, "Good") == (
        "each the mean over the LIME seeds computed for that image (1 to 3; 1 image(s) with 1)"
    )
    assert seeds_text(summary, "Other") == "each the mean over 3 LIME seed(s)"
