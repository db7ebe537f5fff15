"""Agreement metrics with hand-computed answers: IoU/Dice, area matching, chance baseline, pooled Spearman."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from xai import serial
from xai.compare.agreement import (
    DEFAULT_THRESHOLDS,
    Agreement,
    agreement_table,
    chance_dice,
    chance_iou,
    compute_agreement,
    dice,
    fraction_area,
    iou,
    lime_topk_mask,
    pooled_spearman,
    top_area_mask,
)
from xai.compare.per_image import ImageComparison, compare_image


def grid_segments(size: int = 8, cell: int = 2) -> np.ndarray:
    """Square superpixels of ``cell`` x ``cell``, numbered row-major: 16 segments for an 8x8 grid of 2x2."""
    rows, cols = np.indices((size, size))
    return ((rows // cell) * (size // cell) + cols // cell).astype(np.int32)


def test_iou_and_dice_of_known_masks() -> None:
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :3] = True  # 3 pixels
    b[0, 1:] = True  # 3 pixels, overlap 2, union 4
    b[1, 0] = True  # 4 pixels now, overlap still 2, union 5
    assert iou(a, b) == pytest.approx(2 / 5)
    assert dice(a, b) == pytest.approx(2 * 2 / (3 + 4))
    assert iou(a, a) == 1.0 and dice(a, a) == 1.0
    assert iou(a, ~a) == 0.0 and dice(a, ~a) == 0.0
    empty = np.zeros((4, 4), bool)
    assert math.isnan(iou(empty, empty)) and math.isnan(dice(empty, empty))
    assert iou(a, empty) == 0.0


def test_top_area_mask_has_exact_area_and_breaks_ties_by_index() -> None:
    saliency = np.array([[0.5, 0.9, 0.5], [0.5, 0.1, 0.9]])
    mask = top_area_mask(saliency, 3)
    # 0.9 at flat 1 and 5, then the first 0.5 by flat index is flat 0.
    assert mask.tolist() == [[True, True, False], [False, False, True]]
    for area in range(saliency.size + 1):
        assert int(top_area_mask(saliency, area).sum()) == area
    constant = np.zeros((3, 3))
    assert np.flatnonzero(top_area_mask(constant, 4)).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        top_area_mask(saliency, 7)


def test_lime_topk_mask_takes_only_positive_weights_and_orders_ties_by_id() -> None:
    segments = np.array([[0, 0, 1], [2, 3, 3]], dtype=np.int32)
    weights = np.array([0.3, -1.0, 0.3, 0.0])
    # k=1: tie between segment 0 and 2 -> lower id 0.
    assert lime_topk_mask(segments, weights, 1).tolist() == [[True, True, False], [False, False, False]]
    # k=4: only the two positive segments, never the negative or zero ones.
    assert lime_topk_mask(segments, weights, 4).tolist() == [[True, True, False], [True, False, False]]
    with pytest.raises(ValueError):
        lime_topk_mask(segments, weights[:3], 2)


def test_fraction_area_rounds_half_up() -> None:
    assert fraction_area(0.05, 64) == 3  # 3.2
    assert fraction_area(0.5, 5) == 3  # 2.5 -> 3
    assert fraction_area(0.25, 50176) == 12544


def test_chance_iou_matches_brute_force_enumeration() -> None:
    n, a, b = 6, 2, 3
    pixels = range(n)
    values = []
    for first in itertools.combinations(pixels, a):
        for second in itertools.combinations(pixels, b):
            overlap = len(set(first) & set(second))
            values.append(overlap / (a + b - overlap))
    assert chance_iou(a, b, n) == pytest.approx(np.mean(values), abs=1e-12)
    dices = [
        2 * len(set(f) & set(s)) / (a + b)
        for f in itertools.combinations(pixels, a)
        for s in itertools.combinations(pixels, b)
    ]
    assert chance_dice(a, b, n) == pytest.approx(np.mean(dices), abs=1e-12)


def test_chance_iou_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    n, a, b, trials = 400, 60, 100, 20000
    # By symmetry A can be the first a pixels; B a uniformly random b-subset.
    chosen = np.argsort(rng.random((trials, n)), axis=1)[:, :b]
    overlap = np.sum(chosen < a, axis=1)
    simulated = np.mean(overlap / (a + b - overlap))
    standard_error = np.std(overlap / (a + b - overlap)) / math.sqrt(trials)
    assert abs(chance_iou(a, b, n) - simulated) < 4 * standard_error
    # E|A∩B| = ab/n is the hypergeometric mean.
    assert np.mean(overlap) == pytest.approx(a * b / n, rel=0.01)


def test_chance_iou_edge_cases() -> None:
    assert chance_iou(10, 10, 10) == pytest.approx(1.0, abs=1e-12)
    assert chance_iou(10, 4, 10) == pytest.approx(0.4)  # A is everything: IoU = b / n
    assert chance_iou(0, 5, 10) == 0.0
    assert math.isnan(chance_iou(0, 0, 10))
    with pytest.raises(ValueError):
        chance_iou(11, 1, 10)


def test_pooled_spearman_known_cases() -> None:
    segments = grid_segments()
    weights = np.arange(16, dtype=np.float64)
    increasing = weights[segments] / 15
    rho, _ = pooled_spearman(increasing, segments, weights)
    assert rho == pytest.approx(1.0)
    rho, _ = pooled_spearman(1 - increasing, segments, weights)
    assert rho == pytest.approx(-1.0)
    # Hand case: segment means (1, 2, 3, 4) against weights (1, 3, 2, 4): ranks differ in one swap,
    # d² = 0 + 1 + 1 + 0 = 2, ρ = 1 - 6·2 / (4·15) = 0.8.
    small = np.array([[0, 1], [2, 3]], dtype=np.int32)
    rho, _ = pooled_spearman(np.array([[1.0, 2.0], [3.0, 4.0]]), small, np.array([1.0, 3.0, 2.0, 4.0]))
    assert rho == pytest.approx(0.8)
    assert math.isnan(pooled_spearman(np.zeros((8, 8)), segments, weights)[0])


def test_compute_agreement_on_hand_made_explanations() -> None:
    segments = grid_segments()
    weights = np.zeros(16)
    weights[[0, 1, 4, 5, 10]] = [5.0, 4.0, 3.0, 2.0, 1.0]  # top-4 = the 4x4 top-left block
    weights[15] = -1.0
    cam = np.zeros((8, 8), np.float32)
    cam[:4, :4] = 1.0  # exactly LIME's top-4 mask
    item = compute_agreement(segments, weights, cam, ks=(4, 5), thresholds=(0.25, 0.5))
    assert item.lime_area.tolist() == [[16, 20]]
    assert item.iou[0, 0] == 1.0 and item.dice[0, 0] == 1.0
    # k=5 adds segment 10 (4 pixels); the area-matched CAM takes its 16 ones plus 4 of the 48 tied zeros at
    # random, 4 of which lie in segment 10: overlap 16 + X, X ~ Hypergeom(48, 4, 4), union 40 - (16 + X).
    # (The old row-major tie order took row 0, columns 4..7, always outside LIME's mask: 16/24.)
    x = np.arange(5)
    probability = stats.hypergeom.pmf(x, 48, 4, 4)
    assert item.iou[0, 1] == pytest.approx(float(np.sum(probability * (16 + x) / (24 - x))), abs=1e-12)
    assert item.dice[0, 1] == pytest.approx(2 * (16 + float(np.sum(probability * x))) / 40, abs=1e-12)
    assert item.iou[0, 1] > 16 / 24
    assert item.chance_iou[0, 0] == pytest.approx(chance_iou(16, 16, 64))
    # Sweep at 25% (16 pixels = the block) against k=4 -> IoU 1; at 50% (32 pixels: 16 ones + 16 random
    # zeros, none of which can be in the k=4 mask) -> 16/32.
    assert item.sweep_iou[0].tolist() == pytest.approx([1.0, 0.5])
    assert item.sweep_chance_iou[0, 1] == pytest.approx(chance_iou(16, 32, 64))
    assert item.rho[0] > 0
    # The map is the LIME mask itself: only a random set equal to those 4 of 16 superpixels ties with it
    # (probability 1 / C(16, 4) = 1/1820 per draw).
    assert item.null_p[0] < 0.005 and item.null_percentile[0] > 0.99


def _example_comparison(image_id: str = "img", seed: int = 0) -> ImageComparison:
    rng = np.random.default_rng(seed)
    segments = grid_segments(16, 4)
    weights = rng.normal(size=16)
    image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    cams = {
        "GradCAM": rng.random((16, 16)).astype(np.float32),
        "ScoreCAM": rng.random((16, 16)).astype(np.float32),
    }
    return compare_image(image, segments, weights, cams, image_id=image_id)


def test_agreement_and_image_comparison_round_trip() -> None:
    comparison = _example_comparison()
    arrays, meta = serial.to_parts(comparison)
    restored = serial.from_parts(ImageComparison, arrays, meta)
    restored_arrays, restored_meta = serial.to_parts(restored)
    assert restored_meta == meta
    assert arrays.keys() == restored_arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], restored_arrays[key])
        assert arrays[key].dtype == restored_arrays[key].dtype
    item = comparison.agreements[0]
    assert serial.to_parts(serial.from_parts(Agreement, *serial.to_parts(item)))[1] == serial.to_parts(item)[1]
    assert comparison.methods == ("GradCAM", "ScoreCAM", "centre")
    assert item.sweep_iou.shape == (2, len(DEFAULT_THRESHOLDS))
    with pytest.raises(ValueError):
        item.iou[0] = 0.5  # artifacts are frozen, arrays included


def test_agreement_table_is_deterministic() -> None:
    first = agreement_table(_example_comparison().agreements).to_csv(index=False)
    second = agreement_table(_example_comparison().agreements).to_csv(index=False)
    assert first == second
    assert len(agreement_table(_example_comparison().agreements)) == 3 * 2  # (methods + centre) x ks


def test_table_reports_the_median_seed_p_not_an_average_of_p_values() -> None:
    from xai.compare.agreement import agreement_table

    segments = grid_segments()
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(3, 16))
    cam = rng.random((8, 8)).astype(np.float32)
    item = compute_agreement(segments, weights, cam, ks=(4,), thresholds=(0.5,), seeds=(0, 1, 2))
    table = agreement_table([item])
    assert "rho_p" not in table.columns
    assert table["rho_p_median"].iloc[0] == pytest.approx(float(np.median(item.rho_p)))
