"""Deletion/insertion (RISE) on the planted-evidence model: a map on the box must beat a random map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai import serial
from xai.compare.faithfulness import (
    RANDOM_DRAWS,
    RANDOM_METHOD,
    FaithfulnessResult,
    auc,
    blur_input,
    blur_kernel,
    faithfulness_image,
    forward_passes,
    lime_pixel_map,
    pixel_ranks,
    random_map,
    step_plan,
)
from xai.compare.nulls import CENTRE_METHOD
from xai.testing import PlantedEvidenceNet, box_mask, planted_image

MEAN = np.array([0.485, 0.456, 0.406]) * 255
STD = np.array([0.229, 0.224, 0.225]) * 255
BOX = (16, 24, 40, 48)


def to_input(images: np.ndarray) -> torch.Tensor:
    """Stand-in for ``xai.models.to_input``: ImageNet normalisation, NHWC 0..255 -> NCHW."""
    normalised = (np.asarray(images, dtype=np.float64) - MEAN) / STD
    return torch.from_numpy(normalised.transpose(0, 3, 1, 2).astype(np.float32))


class CountingModel(torch.nn.Module):
    """Wraps a model and counts the images it sees."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.images = 0
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += x.shape[0]
        self.calls += 1
        return self.model(x)


def test_auc_of_known_curves() -> None:
    fractions = np.linspace(0, 1, 5)
    assert auc(fractions, 1 - fractions) == pytest.approx(0.5)
    assert auc(fractions, np.ones(5)) == pytest.approx(1.0)
    # Uneven last step: points at 0, 0.4, 0.8, 1.0 with scores 1, 1, 0, 0 -> 0.4 + 0.2 = 0.6.
    assert auc(np.array([0, 0.4, 0.8, 1.0]), np.array([1, 1, 0, 0])) == pytest.approx(0.6)


def test_step_plan_and_ranks() -> None:
    step_pixels, n_steps, counts = step_plan(10, 4)
    assert (step_pixels, n_steps, counts.tolist()) == (3, 4, [0, 3, 6, 9, 10])
    assert step_plan(10, 6)[:2] == (2, 5)  # ceil makes fewer steps than asked; reported, not hidden
    assert step_plan(50176, 224)[:2] == (224, 224)  # the RISE reference plan at 224²
    saliency = np.array([[0.2, 0.9], [0.2, 0.5]])
    ranks = pixel_ranks(saliency)
    assert ranks[0, 1] == 0 and ranks[1, 1] == 1 and {ranks[0, 0], ranks[1, 0]} == {2, 3}
    # Ties are ordered at random (seeded), not row-major: both orders occur over seeds, each reproducibly.
    orders = {tuple(pixel_ranks(saliency, seed)[:, 0]) for seed in range(20)}
    assert orders == {(2, 3), (3, 2)}
    assert np.array_equal(pixel_ranks(saliency, 7), pixel_ranks(saliency, 7))


def test_blur_kernel_is_the_reference_gkern() -> None:
    kernel = blur_kernel()
    assert kernel.shape == (11, 11) and kernel.sum() == pytest.approx(1.0)
    assert kernel[5, 5] == kernel.max() and np.allclose(kernel, kernel.T)
    flat = torch.ones(1, 3, 32, 32)
    blurred = blur_input(flat)
    assert blurred[0, :, 16, 16] == pytest.approx(torch.ones(3))  # interior of a constant image unchanged
    assert float(blurred[0, 0, 0, 0]) < 0.5  # zero padding darkens the corner, as in the reference


@pytest.mark.parametrize(("model_seed", "image_seed"), [(2, 2), (0, 1)])
def test_box_map_beats_random_map_on_planted_model(model_seed: int, image_seed: int) -> None:
    model = PlantedEvidenceNet(BOX, image_size=64, num_classes=5, seed=model_seed)
    image = planted_image(64, seed=image_seed)
    with torch.no_grad():
        target = int(model(to_input(image[None])).argmax())
    result = faithfulness_image(
        model, to_input, image, {"box": box_mask(BOX, 64).astype(np.float32)}, target, steps=16, batch_size=64
    )
    box = result.methods.index("box")
    draws = [index for index, method in enumerate(result.methods) if method.startswith(f"{RANDOM_METHOD}:")]
    assert len(draws) == RANDOM_DRAWS and CENTRE_METHOD in result.methods
    assert result.deletion_auc[box] < result.deletion_auc[draws].min() - 0.05
    assert result.insertion_auc[box] > result.insertion_auc[draws].max() + 0.05
    # Once the box (576 px, 14%) is deleted (point 3 = 768 px) only the bias is left to predict from.
    assert result.deletion[box, 0] > result.deletion[box, 3]


def test_forward_pass_count_is_exact_and_batch_size_does_not_change_results() -> None:
    model = PlantedEvidenceNet(BOX, image_size=64, seed=2)
    image = planted_image(64, seed=2)
    maps = {"box": box_mask(BOX, 64).astype(np.float32), "noise": random_map((64, 64), 5)}
    counted = CountingModel(model).eval()
    result = faithfulness_image(counted, to_input, image, maps, 1, steps=10, batch_size=7, seed=3)
    n_steps = len(result.fractions) - 1
    n_maps = 2 + RANDOM_DRAWS + 1  # the two maps, the smooth random draws, the centre prior
    assert result.forward_passes == forward_passes(n_maps, n_steps) == counted.images
    assert counted.images == 3 + 2 * n_maps * (n_steps - 1)
    assert counted.calls == -(-counted.images // 7)
    other = faithfulness_image(model, to_input, image, maps, 1, steps=10, batch_size=64, seed=3)
    np.testing.assert_allclose(result.deletion, other.deletion, atol=1e-6)
    np.testing.assert_allclose(result.insertion, other.insertion, atol=1e-6)
    again = faithfulness_image(counted, to_input, image, maps, 1, steps=10, batch_size=7, seed=3)
    np.testing.assert_array_equal(result.deletion, again.deletion)  # deterministic
    assert result.deletion[:, 0] == pytest.approx(result.insertion[:, -1])  # both are the original image


def test_result_round_trips_and_rejects_bad_input() -> None:
    model = PlantedEvidenceNet(BOX, image_size=64, seed=2)
    image = planted_image(64, seed=2)
    result = faithfulness_image(model, to_input, image, {"box": box_mask(BOX, 64)}, 0, steps=4)
    arrays, meta = serial.to_parts(result)
    restored = serial.from_parts(FaithfulnessResult, arrays, meta)
    assert serial.to_parts(restored)[1] == meta
    for key, value in arrays.items():
        np.testing.assert_array_equal(serial.to_parts(restored)[0][key], value)
    model.train()
    with pytest.raises(ValueError, match="eval"):
        faithfulness_image(model, to_input, image, {"box": box_mask(BOX, 64)}, 0, steps=4)
    model.eval()
    with pytest.raises(ValueError, match="reserved"):
        faithfulness_image(model, to_input, image, {RANDOM_METHOD: box_mask(BOX, 64)}, 0, steps=4)
    with pytest.raises(ValueError, match="shape"):
        faithfulness_image(model, to_input, image, {"small": np.zeros((8, 8))}, 0, steps=4)


def test_smooth_random_maps_are_cam_like_and_seeded() -> None:
    first, again, other = random_map((224, 224), 1), random_map((224, 224), 1), random_map((224, 224), 2)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.min() == 0 and first.max() == pytest.approx(1)
    # Upsampled from a 7x7 grid: neighbouring pixels differ by at most 1/32 of the range per pixel step.
    assert np.abs(np.diff(first, axis=0)).max() < 0.05 and np.abs(np.diff(first, axis=1)).max() < 0.05
    uniform = np.random.default_rng(1).random((224, 224))
    assert np.abs(np.diff(uniform, axis=0)).max() > 0.9  # what the old scattered-pixel baseline looked like


def test_degenerate_maps_are_excluded_not_scored() -> None:
    model = PlantedEvidenceNet(BOX, image_size=64, seed=2)
    image = planted_image(64, seed=2)
    maps = {
        "box": box_mask(BOX, 64).astype(np.float32),
        "dead": np.zeros((64, 64), np.float32),
        "flat": np.full((64, 64), 0.5, np.float32),
    }
    result = faithfulness_image(model, to_input, image, maps, 0, steps=4, include_random=False, include_centre=False)
    assert result.methods == ("box",)
    assert result.excluded == (("dead", "all zero"), ("flat", "constant"))
    assert serial.from_parts(FaithfulnessResult, *serial.to_parts(result)).excluded == result.excluded


def test_lime_pixel_map_spreads_weights_over_segments() -> None:
    segments = np.array([[0, 1], [1, 2]], dtype=np.int32)
    assert lime_pixel_map(segments, np.array([0.5, -1.0, 2.0])).tolist() == [[0.5, -1.0], [-1.0, 2.0]]


def test_default_steps_are_the_measured_coarsest_with_every_finer_count_passing() -> None:
    """The default step count is read off the committed measurement, not chosen by hand: the coarsest count
    such that it AND every finer candidate stay within the tolerance in the worst case over several softmax
    sharpness levels (a coarse count that passes by luck while a finer one fails is not chosen)."""
    import inspect

    from tests.helpers.bench import load_bench
    from xai.compare.faithfulness import step_error_measurement
    from xai.config_compare import CompareConfig

    coarsest_with_finer_passing = load_bench("bench_step_error").coarsest_with_finer_passing

    measurement = step_error_measurement()
    assert measurement["reference_steps"] == 224 and measurement["tolerance"] == 0.005
    assert len(measurement["temperatures"]) >= 3 and min(measurement["temperatures"]) <= 10
    assert "--temperatures" in measurement["command"]
    rows = sorted(measurement["rows"], key=lambda row: row["steps"])
    for row in rows:
        assert row["max_abs_error"] == max(row["max_abs_error_by_temperature"].values())
    chosen = measurement["coarsest_within_tolerance"]
    at = [row["steps"] for row in rows].index(chosen)
    assert all(row["max_abs_error"] <= measurement["tolerance"] for row in rows[at:])
    assert at == 0 or rows[at - 1]["max_abs_error"] > measurement["tolerance"]
    assert CompareConfig().faithfulness_steps == chosen
    assert inspect.signature(faithfulness_image).parameters["steps"].default == chosen
    # the rule itself: 16 passes but 28 fails, so 16 is not chosen
    rule_rows = [
        {"steps": 14, "max_abs_error": 0.006},
        {"steps": 16, "max_abs_error": 0.004},
        {"steps": 28, "max_abs_error": 0.0057},
        {"steps": 32, "max_abs_error": 0.004},
        {"steps": 56, "max_abs_error": 0.001},
    ]
    assert coarsest_with_finer_passing(rule_rows, 0.005) == 32
    assert coarsest_with_finer_passing([{"steps": 8, "max_abs_error": 1.0}], 0.005) is None
