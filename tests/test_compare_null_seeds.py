"""Defect 1 (planted): the per-image superpixel null with several LIME seeds shares the statistic's structure.

The statistic averages IoU over seeds whose top-k sets overlap; a null that drew each seed's set independently was
far narrower than the statistic, so independent maps were called agreeing too often (measured before the fix on
this simulation, 600 maps each: p < 0.05 on 6.0% with one seed, 16.3% with three identical seeds, 11.0% with
three correlated seeds). One relabelling of the superpixels per draw, shared by every seed, keeps the rate nominal.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tests.helpers.compare_simulations import seed_weights, smooth_map, voronoi_segments
from xai.compare.agreement import compute_agreement, lime_topk_superpixels
from xai.compare.nulls import MapOrder, SuperpixelNull


def _false_positive_rate(kind: str, n_seeds: int, replicates: int = 400) -> float:
    """Share of independent (segmentation, LIME weights, CAM) triples whose superpixel-null p is below 0.05."""
    hits = 0
    for replicate in range(replicates):
        rng = np.random.default_rng(replicate)
        segments = voronoi_segments(rng)
        weights = seed_weights(rng, int(segments.max()) + 1, n_seeds, kind)
        cam = smooth_map(rng)  # independent of LIME: the null is true
        found = compute_agreement(segments, weights, cam, ks=(5,), thresholds=(0.1,), null_draws=200, null_seed=7)
        hits += found.null_p[0] < 0.05
    return hits / replicates


@pytest.mark.parametrize(("kind", "n_seeds"), [("identical", 1), ("identical", 3), ("correlated", 3)])
def test_superpixel_null_rejects_independent_maps_at_the_nominal_rate(kind: str, n_seeds: int) -> None:
    rate = _false_positive_rate(kind, n_seeds)
    # 400 maps: a nominal 5% rate falls in [0.02, 0.085] with probability > 0.99; the old null gave 0.16 / 0.11.
    assert 0.015 <= rate <= 0.085, rate


def test_identical_seeds_give_exactly_the_one_seed_p() -> None:
    """Three copies of one LIME run are one run: the joint null makes the p-value the one-seed p, draw for draw."""
    for replicate in range(20):
        rng = np.random.default_rng(100 + replicate)
        segments = voronoi_segments(rng)
        weights = seed_weights(rng, int(segments.max()) + 1, 1, "identical")
        cam = smooth_map(rng)
        one = compute_agreement(segments, weights, cam, ks=(3, 5), thresholds=(0.1,), null_draws=300, null_seed=1)
        three = compute_agreement(
            segments, np.repeat(weights, 3, axis=0), cam, ks=(3, 5), thresholds=(0.1,), null_draws=300, null_seed=1
        )
        np.testing.assert_array_equal(three.null_p, one.null_p)
        np.testing.assert_allclose(three.null_mean, one.null_mean, rtol=1e-12)  # a mean of 3 equal floats


def test_a_joint_draw_keeps_the_seeds_overlap_and_each_set_uniform() -> None:
    """Each drawn set is a uniformly random set of its size (mean IoU = the enumeration's), and two seeds' drawn sets
    overlap exactly as their observed sets do (a relabelling preserves intersections)."""
    rows, columns = np.indices((16, 16))
    segments = ((rows // 4) * 4 + columns // 4).astype(np.int32)
    saliency = np.random.default_rng(0).random((16, 16))
    first, second = np.array([0, 1, 2]), np.array([1, 2, 7])
    null = SuperpixelNull(segments, saliency, seed=0)
    rng = np.random.default_rng(1)
    relabel = np.argsort(np.random.default_rng(1).random((4000, 16)), axis=1)
    drawn = null.draw_joint([first, second], 4000, rng)
    overlap = [len(set(row[first]) & set(row[second])) for row in relabel]
    assert set(overlap) == {2}
    order = MapOrder(saliency)
    exact = []
    for chosen in itertools.combinations(range(16), 3):
        mask = np.isin(segments, chosen)
        exact.append(order.expected_overlap(int(mask.sum()), mask)[0])
    for column in range(2):
        assert drawn[:, column].mean() == pytest.approx(np.mean(exact), abs=4 * np.std(exact) / math.sqrt(4000))
    assert np.isnan(null.draw_joint([np.array([], dtype=np.int64)], 5, rng)).all()


def test_the_chosen_superpixels_are_the_masks() -> None:
    weights = np.array([0.3, -0.2, 0.9, 0.3, 0.0, 0.1])
    assert lime_topk_superpixels(weights, 3) == [2, 0, 3]  # ties: the lower id first
    assert lime_topk_superpixels(weights, 10) == [2, 0, 3, 5]  # only positive weights
