"""Cross-image summary: deterministic tables, exact round trip, and findings generated from the numbers."""

from __future__ import annotations

import numpy as np
import pytest

from xai.compare import (
    RANDOM_WEIGHTS_NOTE,
    TABLES,
    ComparisonSummary,
    FaithfulnessResult,
    SanityResult,
    compare_image,
    findings,
    summarise,
)
from xai.compare.faithfulness import auc


def _segments() -> np.ndarray:
    rows, cols = np.indices((16, 16))
    return ((rows // 4) * 4 + cols // 4).astype(np.int32)


def _comparisons(n_images: int = 4):
    segments = _segments()
    comparisons = []
    for index in range(n_images):
        rng = np.random.default_rng(index)
        weights = rng.normal(size=16)
        lime_like = (weights[segments] - weights.min()) / np.ptp(weights)
        noise = rng.random((16, 16))
        # "Good" follows LIME, more so in early images; "Noise" is unrelated to it.
        good = (1 - index / (2 * n_images)) * lime_like + index / (2 * n_images) * noise
        image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        cams = {"Good": good.astype(np.float32), "Noise": noise.astype(np.float32)}
        comparisons.append(compare_image(image, segments, weights, cams, image_id=f"img{index}", ks=(5, 10)))
    return comparisons


def _faithfulness(image_id: str, scores: dict[str, tuple[float, float]]) -> FaithfulnessResult:
    fractions = np.linspace(0, 1, 5)
    methods = tuple(scores)
    deletion = np.array([[1, d, d, d, 0] for d, _ in scores.values()], dtype=np.float64)
    insertion = np.array([[0, i, i, i, 1] for _, i in scores.values()], dtype=np.float64)
    return FaithfulnessResult(
        image_id=image_id, target=3, methods=methods, fractions=fractions, deletion=deletion,
        insertion=insertion,
        deletion_auc=np.array([auc(fractions, c) for c in deletion]),
        insertion_auc=np.array([auc(fractions, c) for c in insertion]),
        step_pixels=64, forward_passes=3 + 2 * len(methods) * 3, batch_size=8, deletion_baseline="zero",
        seed=0,
    )  # fmt: skip


def _summary(sanity: SanityResult | None = None) -> ComparisonSummary:
    faithful = [
        _faithfulness(
            f"img{i}", {"lime": (0.3, 0.7), "Good": (0.2, 0.8), "Noise": (0.6, 0.4), "random": (0.5, 0.5)}
        )
        for i in range(4)
    ]
    return summarise(_comparisons(), faithful, sanity, k=5)


def test_summary_tables_are_deterministic_and_round_trip() -> None:
    summary = _summary()
    assert _summary().csv_texts() == summary.csv_texts()  # byte-identical CSV for the same inputs
    arrays, meta = summary.to_parts()
    restored = ComparisonSummary.from_parts(arrays, meta)
    assert restored.csv_texts() == summary.csv_texts()
    assert restored.to_parts()[1] == meta
    for name in TABLES:
        assert list(restored.tables()[name].dtypes) == list(summary.tables()[name].dtypes), name
    assert len(summary.agreement) == 4 * 2 * 2  # images x methods x ks


def test_summary_numbers() -> None:
    summary = _summary()
    by_method = summary.agreement_by_method.set_index(["method", "k"])
    assert by_method.loc[("Good", 5), "iou_mean"] > by_method.loc[("Noise", 5), "iou_mean"]
    assert by_method.loc[("Good", 5), "n_images"] == 4
    ranking = summary.faithfulness_ranking
    assert ranking["method"].tolist() == ["Good", "lime", "random", "Noise"]
    assert ranking["faithfulness_rank"].tolist() == [1, 2, 3, 4]
    assert ranking.set_index("method").loc["Good", "beats_random"] == 1.0
    assert ranking.set_index("method").loc["Noise", "beats_random"] == 0.0
    assert ranking.set_index("method")["agreement_rank"].dropna().to_dict() == {"Good": 1.0, "Noise": 2.0}
    assert summary.faithfulness_agreement_n == 2  # too few CAM methods for a rank correlation
    sweep = summary.sweep_by_method
    assert len(sweep) == 2 * 2 * 10 and set(sweep["threshold"].round(2)) == {
        round(0.05 * i, 2) for i in range(1, 11)
    }
    correlations = summary.complexity_correlation
    assert set(correlations["method"]) == {"all", "Good", "Noise"} and (correlations["n"] == 4).all()


def test_findings_are_generated_from_the_numbers() -> None:
    sanity = SanityResult(
        False, ("Good", "Noise"), ("fc", "layer4"), np.array([[0.4, 0.1], [0.9, 0.95]]),
        np.array([[0.5, 0.2], [0.9, 0.9]]), [True, False], 0.5, 0,
    )  # fmt: skip
    summary = _summary(sanity)
    text = findings(summary)
    by_method = summary.agreement_by_method.set_index(["method", "k"])
    good_iou = f"{by_method.loc[('Good', 5), 'iou_mean']:.2f}"
    assert any(s.startswith("Good: mean area-matched IoU") and good_iou in s for s in text)
    assert any(s.startswith("Good agrees best with LIME") for s in text)
    # Score = 0.75 (i - d) for the 5-point curves [1, d, d, d, 0] and [0, i, i, i, 1].
    assert any("Good (0.450) > lime (0.300) > random (0.000) > Noise (-0.150)" in s for s in text)
    assert any("No better than the random map (0.000) on average: Noise." in s for s in text)
    assert any(s.startswith("Good passes") and "0.10" in s for s in text)
    assert any(s.startswith("Noise fails") and "0.95" in s for s in text)
    assert summary.complexity_answer in text
    assert not summary.weights_are_random


def test_random_weights_say_so_instead_of_numbers() -> None:
    summary = _summary(SanityResult.skipped())
    assert summary.weights_are_random
    assert summary.sanity.empty
    text = findings(summary)
    assert RANDOM_WEIGHTS_NOTE in text
    assert not any("passes the parameter" in s or "fails the parameter" in s for s in text)
    restored = ComparisonSummary.from_parts(*summary.to_parts())
    assert restored.weights_are_random


def test_summary_rejects_duplicate_image_ids_and_accepts_no_images() -> None:
    comparison = _comparisons(1)[0]
    with pytest.raises(ValueError, match="unique"):
        summarise([comparison, comparison])
    empty = summarise([])
    assert empty.agreement.empty and "cannot be answered" in empty.complexity_answer
    assert ComparisonSummary.from_parts(*empty.to_parts()).csv_texts() == empty.csv_texts()


@pytest.mark.parametrize("n_images", [1, 2])
def test_summary_with_few_images_does_not_crash(n_images: int) -> None:
    summary = summarise(_comparisons(n_images), k=10)
    assert summary.faithfulness_ranking.empty
    assert "cannot be answered" in summary.complexity_answer
    assert findings(summary)
