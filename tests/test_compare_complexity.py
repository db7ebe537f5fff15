"""Complexity measures, the exact small-n Spearman p-value, and the generated answer sentence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xai import serial
from xai.compare.complexity import (
    Complexity,
    colour_entropy,
    complexity_answer,
    complexity_correlations,
    edge_density,
    image_complexity,
    object_area,
    spearman_with_p,
)


def test_colour_entropy_known_values() -> None:
    flat = np.full((8, 8, 3), 100, np.uint8)
    assert colour_entropy(flat) == 0.0
    halves = flat.copy()
    halves[:, 4:] = 250  # two equally frequent colours in different bins -> 1 bit
    assert colour_entropy(halves) == pytest.approx(1.0)
    quarters = halves.copy()
    quarters[:4, :, 0] = 0  # four equally frequent colours -> 2 bits
    assert colour_entropy(quarters) == pytest.approx(2.0)


def test_edge_density_grows_with_structure() -> None:
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert edge_density(flat) == 0.0
    one_edge = flat.copy()
    one_edge[:, 32:] = 0
    stripes = flat.copy()
    stripes[:, ::8] = 0
    stripes[:, 1::8] = 0
    assert 0 < edge_density(one_edge) < edge_density(stripes)


def test_object_area_and_round_trip() -> None:
    cam = np.zeros((4, 4), np.float32)
    cam[:2] = 0.9
    assert object_area({"a": cam, "b": np.ones((4, 4), np.float32)}) == pytest.approx((0.5 + 1.0) / 2)
    assert math.isnan(object_area({}))
    item = image_complexity(np.zeros((4, 4, 3), np.uint8), 7, {"a": cam}, image_id="x")
    assert serial.from_parts(Complexity, *serial.to_parts(item)) == item


def test_spearman_exact_p_for_small_n() -> None:
    rho, p_value, n, how = spearman_with_p([1, 2, 3, 4], [10, 20, 30, 40])
    # Of the 4! = 24 pairings only the identity and the reversal reach |ρ| = 1.
    assert (rho, n, how) == (pytest.approx(1.0), 4, "exact permutation")
    assert p_value == pytest.approx(2 / 24)
    rho, _, _, _ = spearman_with_p([1, 2, 3, 4, 5], [5, 6, 7, 9, 8])
    assert rho == pytest.approx(1 - 6 * 2 / (5 * 24))  # one adjacent swap: d² sum = 2
    x = np.arange(12.0)
    y = np.array([1, 3, 2, 5, 4, 7, 6, 9, 8, 12, 10, 11.0])
    rho, p_value, n, how = spearman_with_p(x, y)
    reference = stats.spearmanr(x, y)
    assert (rho, p_value, how) == (
        pytest.approx(reference.statistic),
        pytest.approx(reference.pvalue),
        "t approximation",
    )
    assert math.isnan(spearman_with_p([1, 2], [3, 4])[0])
    assert math.isnan(spearman_with_p([1, 2, 3], [5, 5, 5])[0])


def _tables(ious: list[float], edges: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    images = [f"img{i}" for i in range(len(ious))]
    agreement = pd.DataFrame({"image": images, "method": "GradCAM", "k": 5, "iou": ious})
    complexity = pd.DataFrame(
        {
            "image": images,
            "n_segments": np.arange(len(ious)) + 20,
            "edge_density": edges,
            "colour_entropy": np.linspace(3, 6, len(ious)),
            "object_area": np.linspace(0.2, 0.4, len(ious)),
        }
    )
    return agreement, complexity


def test_answer_says_yes_for_a_strong_negative_correlation_with_enough_images() -> None:
    ious = [0.9, 0.8, 0.75, 0.6, 0.5, 0.45, 0.3, 0.2, 0.1, 0.05]
    agreement, complexity = _tables(ious, list(np.linspace(0.01, 0.2, 10)))
    correlations = complexity_correlations(agreement, complexity, k=5)
    pooled = correlations[(correlations["method"] == "all") & (correlations["measure"] == "edge_density")]
    assert pooled["rho"].iloc[0] == pytest.approx(-1.0) and int(pooled["n"].iloc[0]) == 10
    answer = complexity_answer(agreement, complexity, correlations, k=5)
    assert answer.startswith("In this sample, more complex images (by edge density) agree less")
    assert "ρ = -1.00" in answer and "n = 10 images" in answer
    assert "img0" in answer and "img9" in answer  # simplest and most complex are named with their IoU
    assert "0.90" in answer and "0.05" in answer


def test_spearman_interval_is_fisher_z_with_bonett_wright_se() -> None:
    from xai.compare.complexity import spearman_interval

    low, high = spearman_interval(0.5, 12)
    half = 1.959963984540054 * math.sqrt((1 + 0.125) / 9)
    assert low == pytest.approx(math.tanh(math.atanh(0.5) - half))
    assert high == pytest.approx(math.tanh(math.atanh(0.5) + half))
    assert all(math.isnan(v) for v in spearman_interval(0.5, 3))


def test_answer_hedges_with_few_images_or_no_relation() -> None:
    agreement, complexity = _tables([0.9, 0.5, 0.1, 0.3], [0.01, 0.05, 0.1, 0.2])
    answer = complexity_answer(agreement, complexity, complexity_correlations(agreement, complexity, k=5), k=5)
    assert answer.startswith("The data do not show a relation") and "n = 4 images" in answer
    assert "95% CI" in answer and "tentative" not in answer and "only" not in answer
    agreement, complexity = _tables([0.5, 0.4], [0.01, 0.2])
    answer = complexity_answer(agreement, complexity, complexity_correlations(agreement, complexity, k=5), k=5)
    assert "cannot be answered" in answer
