"""Structured nulls with planted answers: superpixel null, cross-image null, centre prior, ties, degenerate maps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tests.helpers.planted import tempered_planted
from xai.compare.agreement import compute_agreement, iou, lime_topk_mask
from xai.compare.nulls import (
    CENTRE_METHOD,
    MapOrder,
    SuperpixelNull,
    centre_prior_map,
    degenerate_reason,
    permutation_p,
    random_tie_ranks,
)
from xai.compare.per_image import compare_image, cross_image_table
from xai.compare.summary import summarise
from xai.explain.cams.base import compute_cam
from xai.explain.lime_image import LimeParams, run_lime
from xai.models import to_input
from xai.testing import PlantedEvidenceNet, box_mask, planted_image

BOX = (8, 8, 32, 32)
FINE = LimeParams(num_samples=300, kernel_size=2, max_dist=20)


def grid_segments(size: int = 16, cell: int = 4) -> np.ndarray:
    rows, cols = np.indices((size, size))
    return ((rows // cell) * (size // cell) + cols // cell).astype(np.int32)


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LIME and Grad-CAM of a model that only sees BOX: both must point at the box."""
    model = tempered_planted(BOX)
    image = planted_image(64, 0)
    lime = run_lime(model, image, to_input=to_input, params=FINE, seed=0)
    inner = model.model if hasattr(model, "model") else model
    assert isinstance(inner, PlantedEvidenceNet)
    cam = compute_cam(model, to_input(image[None]), "gradcam", inner.layer4[-1], lime.label).map
    return lime.segments, lime.weights, cam


def test_planted_agreement_beats_the_superpixel_null_and_a_moved_map_does_not(planted) -> None:
    segments, weights, cam = planted
    box = box_mask(BOX, 64)
    assert cam[box].mean() > 3 * cam[~box].mean()  # the CAM found the evidence
    true = compute_agreement(segments, weights, cam, ks=(3, 5), thresholds=(0.1,), null_seed=0)
    assert (true.null_p < 0.05).all() and (true.null_percentile > 0.95).all()
    assert (true.iou[0] > 2 * true.null_mean).all()
    # The same map moved to the opposite corner: it no longer covers what LIME found.
    moved = np.roll(cam, (28, 28), axis=(0, 1))
    wrong = compute_agreement(segments, weights, moved, ks=(3, 5), thresholds=(0.1,), null_seed=0)
    assert (wrong.null_p > 0.2).all() and (wrong.iou[0] < true.iou[0]).all()


def test_superpixel_null_matches_enumeration_of_every_set() -> None:
    segments = grid_segments()
    saliency = np.random.default_rng(0).random((16, 16))  # no ties: the top-a mask is unique
    order = MapOrder(saliency)
    exact = []
    for chosen in itertools.combinations(range(16), 3):
        mask = np.isin(segments, chosen)
        exact.append(order.expected_overlap(int(mask.sum()), mask)[0])
    draws = SuperpixelNull(segments, saliency, seed=0).draw(3, 20000, np.random.default_rng(1))
    assert draws.mean() == pytest.approx(np.mean(exact), abs=3 * np.std(exact) / math.sqrt(20000))
    assert set(np.round(draws, 12)) <= set(np.round(exact, 12))


def test_expected_overlap_is_the_mean_over_random_tie_breaks() -> None:
    rng = np.random.default_rng(2)
    saliency = np.zeros((16, 16))
    saliency[4:8, 4:8] = rng.random((4, 4)) + 1  # 16 distinct positives, 240 tied zeros
    other = np.zeros((16, 16), bool)
    other[6:12, 6:12] = True
    area = 40  # 16 positives + 24 of the tied zeros
    expected_iou, expected_dice = MapOrder(saliency).expected_overlap(area, other)
    sampled = [iou(random_tie_ranks(saliency, seed) < area, other) for seed in range(4000)]
    assert expected_iou == pytest.approx(np.mean(sampled), abs=3 * np.std(sampled) / math.sqrt(4000))
    row_major = np.zeros(256, bool)
    row_major[np.argsort(-saliency.ravel(), kind="stable")[:area]] = True
    assert iou(row_major.reshape(16, 16), other) != pytest.approx(expected_iou, abs=1e-3)  # the old bias
    assert 0 < expected_dice < 1
    assert math.isnan(MapOrder(saliency).expected_overlap(0, np.zeros((16, 16), bool))[0])


def test_degenerate_maps_are_excluded_with_their_reason() -> None:
    assert degenerate_reason(np.zeros((4, 4))) == "all zero"
    assert degenerate_reason(np.full((4, 4), 0.3)) == "constant"
    assert degenerate_reason(np.array([[np.nan, 1.0]])) == "non-finite values"
    assert degenerate_reason(np.eye(4)) == ""
    segments = grid_segments()
    weights = np.arange(16, dtype=float) - 5
    item = compute_agreement(segments, weights, np.zeros((16, 16)), ks=(3,), thresholds=(0.1,))
    assert item.excluded == "all zero" and np.isnan(item.iou).all() and np.isnan(item.null_p).all()


def test_centre_prior_and_permutation_p() -> None:
    prior = centre_prior_map((9, 9))
    assert prior.max() == prior[4, 4] == 1.0 and np.allclose(prior, prior.T) and np.allclose(prior, prior[::-1])
    assert permutation_p(0.9, np.array([0.1, 0.2, 0.95])) == (pytest.approx(0.5), pytest.approx(2 / 3))
    assert math.isnan(permutation_p(math.nan, np.array([0.1]))[0])


def test_cross_image_null_sees_centre_bias() -> None:
    """A map that is the same on every image (pure centre bias) is not beyond the cross-image null; a map
    that follows each image's LIME mask is."""
    segments = grid_segments()
    rng = np.random.default_rng(3)
    inputs, comparisons = [], []
    for index in range(8):
        weights = rng.normal(size=16)
        follows = lime_topk_mask(segments, weights, 3).astype(float) + 0.01 * rng.random((16, 16))
        cams = {"follows": follows, "fixed": centre_prior_map((16, 16)) + 1e-3 * rng.random((16, 16))}
        image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        comparisons.append(
            compare_image(
                image, segments, weights, cams, image_id=f"im{index}", ks=(3,), thresholds=(0.1,), null_draws=500
            )
        )
        inputs.append((f"im{index}", segments, weights, cams))
    cross = cross_image_table(inputs, ks=(3,))
    # Image 0's value is the mean over the *other* images' maps, each binarised to LIME's area.
    mask = lime_topk_mask(segments, inputs[0][2], 3)
    by_hand = np.mean(
        [MapOrder(inputs[j][3]["follows"]).expected_overlap(int(mask.sum()), mask)[0] for j in range(1, 8)]
    )
    first = cross[(cross["image"] == "im0") & (cross["method"] == "follows")]["cross_image_iou"].item()
    assert first == pytest.approx(by_hand, abs=1e-12)
    summary = summarise(comparisons, k=3, cross_image=cross)
    rows = summary.agreement_by_method.set_index("method")
    assert rows.at["follows", "cross_image_p"] < 0.05 and rows.at["follows", "cross_image_diff"] > 0.3
    assert rows.at["fixed", "cross_image_diff"] == pytest.approx(0, abs=0.05)
    assert not rows.at["fixed", "cross_image_p"] < 0.05
    assert rows.at["follows", "superpixel_p"] < 0.05 and rows.at["follows", "images_beating_superpixel"] >= 6
    assert CENTRE_METHOD in rows.index and math.isnan(rows.at[CENTRE_METHOD, "centre_p"])
    assert rows.at["follows", "agreement_group"] == "a" and "a" not in rows.at["fixed", "agreement_group"]
