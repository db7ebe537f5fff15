"""Cascading randomisation (Adebayo et al. 2018): Grad-CAM must decorrelate, an edge map must not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from skimage.filters import sobel

from xai import serial
from xai.compare.sanity import (
    EDGE_METHOD,
    SanityResult,
    map_similarity,
    randomise_modules,
    sanity_check,
    sanity_explain_fn,
    sanity_table,
)
from xai.explain.lime_image import LimeParams
from xai.testing import planted_image, tiny_resnet

SIZE = 128


@pytest.fixture(scope="module")
def setup() -> tuple[torch.nn.Module, torch.Tensor, np.ndarray, list[int]]:
    """A seeded random ResNet18 and two 128² images (the check averages over images)."""
    model = tiny_resnet(num_classes=10, seed=0)
    images = np.stack([planted_image(SIZE, seed=1), planted_image(SIZE, seed=2)])
    inputs = torch.from_numpy((images / 255.0 - 0.45) / 0.225).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        targets = model(inputs).argmax(dim=1).tolist()
    return model, inputs, images, targets


def make_explain_fn(inputs: torch.Tensor, images: np.ndarray, targets: list[int]):
    edges = np.stack([sobel(image.mean(axis=2) / 255.0) for image in images])
    edges = (edges / edges.max(axis=(1, 2), keepdims=True)).astype(np.float32)

    def explain(model: torch.nn.Module) -> dict[str, np.ndarray]:
        with GradCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
            grad_cam = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(t) for t in targets])
        # A model-independent control, as the grad-cam tutorial suggests: it must fail the check.
        return {"GradCAM": grad_cam, "edges": edges}

    return explain


def test_gradcam_decorrelates_and_a_model_independent_map_fails(setup) -> None:
    model, inputs, images, targets = setup
    before = {name: value.clone() for name, value in model.state_dict().items()}
    rng_before = torch.random.get_rng_state()
    result = sanity_check(model, make_explain_fn(inputs, images, targets), seed=0)
    gradcam, edges = result.methods.index("GradCAM"), result.methods.index("edges")
    assert result.steps == ("fc", "layer4", "layer3", "layer2", "layer1", "conv1+bn1")
    assert result.n_images == 2
    assert result.spearman_abs.shape == (2, 6, 2)  # methods x steps x images: intervals need the images
    assert result.spearman_abs[gradcam, -1].mean() < 0.5
    np.testing.assert_allclose(result.spearman[edges], 1.0)
    np.testing.assert_allclose(result.ssim[edges], 1.0)
    table = sanity_table(result)
    last = table[table["step_index"] == 5].set_index("method")
    assert last.at["GradCAM", "spearman_abs_mean"] == pytest.approx(result.spearman_abs[gradcam, -1].mean())
    low, high = last.at["GradCAM", "spearman_abs_low"], last.at["GradCAM", "spearman_abs_high"]
    assert 0 <= low <= high <= 1  # two images: the t-interval, cut to the range |ρ| can take
    assert "passed" not in table.columns  # no invented pass mark
    # The caller's model and the global RNG are untouched.
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    again = sanity_check(model, make_explain_fn(inputs, images, targets), seed=0)
    np.testing.assert_array_equal(again.spearman, result.spearman)  # seeded


def test_randomised_layers_change_the_output(setup) -> None:
    model, inputs, _, _ = setup
    import copy

    working = copy.deepcopy(model)
    with torch.no_grad():
        original = working(inputs)
        assert randomise_modules(working, ["fc"], seed=0) == 1
        after_fc = working(inputs)
        randomise_modules(working, ["layer4"], seed=1)
        after_layer4 = working(inputs)
    assert not torch.allclose(original, after_fc)
    assert not torch.allclose(after_fc, after_layer4)
    with pytest.raises(AttributeError):
        randomise_modules(working, ["no_such_layer"], seed=0)


def test_skipped_with_random_weights_and_round_trip() -> None:
    def explode(model: torch.nn.Module) -> dict[str, np.ndarray]:
        raise AssertionError("nothing may be computed when the weights are random")

    skipped = sanity_check(torch.nn.Linear(2, 2), explode, ["weight"], weights_are_random=True)
    assert skipped.weights_are_random and skipped.methods == () and skipped.spearman.shape == (0, 0, 0)
    restored = serial.from_parts(SanityResult, *serial.to_parts(skipped))
    assert restored.weights_are_random and serial.to_parts(restored)[1] == serial.to_parts(skipped)[1]
    assert sanity_table(skipped).empty
    values = np.arange(12, dtype=float).reshape(2, 2, 3) / 12
    result = SanityResult(False, ("a", "b"), ("fc", "layer4"), values, values, values, 3, budgets=(("a", "cheaper"),))
    arrays, meta = serial.to_parts(result)
    again = serial.from_parts(SanityResult, arrays, meta)
    assert serial.to_parts(again)[1] == meta
    for key, value in arrays.items():
        np.testing.assert_array_equal(serial.to_parts(again)[0][key], value)


def test_map_similarity_known_cases() -> None:
    ramp = np.tile(np.linspace(0, 1, 16), (16, 1))
    assert map_similarity(ramp, ramp) == (pytest.approx(1.0), pytest.approx(1.0))
    rho, ssim = map_similarity(ramp, 1 - ramp)
    assert rho == pytest.approx(-1.0) and ssim < 0.5
    rho, _ = map_similarity(ramp, np.zeros_like(ramp))
    assert np.isnan(rho)
    small = map_similarity(np.eye(4), np.eye(4))  # smaller than the default 7x7 SSIM window
    assert small[1] == pytest.approx(1.0)


def test_lime_ablationcam_scorecam_are_checked_beside_the_edge_control() -> None:
    """The methods the assignment names go through the same cascade (LIME at a cheaper budget)."""
    model = tiny_resnet(num_classes=10, seed=0)
    pixels = planted_image(64, seed=1)
    from xai.explain.lime_image import quickshift_segmenter
    from xai.models import to_input

    params = LimeParams(num_samples=40, kernel_size=2, max_dist=20)
    segments = quickshift_segmenter(params)(pixels).astype(np.int32)
    with torch.no_grad():
        target = int(model(to_input(pixels[None])).argmax())
    methods = ["lime", "ablationcam", "scorecam"]
    explain = sanity_explain_fn(
        [(pixels, segments, target)], methods, target="layer4[-1]", lime_params=params, seed=0, batch_size=64
    )
    result = sanity_check(model, explain, (("fc",), ("layer4",)), seed=0, budgets={"lime": "40 samples"})
    assert result.methods == (*methods, EDGE_METHOD) and result.budgets == (("lime", "40 samples"),)
    np.testing.assert_allclose(result.spearman_abs[-1], 1.0)  # the control never sees the model
    assert np.isfinite(result.spearman_abs).all() and np.isfinite(result.ssim).all()
    # LIME (explaining the fixed target class on the fixed segmentation) and AblationCAM change once fc and
    # layer4 are random. ScoreCAM is reported, not asserted: its softmax-over-channels weights can stay near
    # uniform on a random model, so its map can stay close to the activation sum (what the check is for).
    assert result.spearman_abs[0, -1, 0] < 0.99 and result.spearman_abs[1, -1, 0] < 0.99


def test_a_map_that_becomes_constant_is_counted_not_scored_as_zero() -> None:
    """Randomising fc makes 'flat' constant on image 0: that image is left out of ρ, |ρ| and SSIM (not counted as
    |ρ| = 0) and counted in ``constant``; the table's n and the findings say so."""
    ramp = np.tile(np.linspace(0, 1, 16), (16, 1))
    model = torch.nn.Sequential()
    model.add_module("fc", torch.nn.Linear(2, 2))
    calls = []

    def explain(model: torch.nn.Module) -> dict[str, np.ndarray]:
        calls.append(1)
        first = ramp if len(calls) == 1 else np.zeros_like(ramp)
        return {"flat": np.stack([first, ramp, ramp.T, ramp**2])}

    result = sanity_check(model, explain, ["fc"], seed=0)
    assert result.constant.tolist() == [[1]]
    assert np.isnan(result.spearman_abs[0, 0, 0]) and np.isnan(result.ssim[0, 0, 0])
    np.testing.assert_allclose(result.spearman_abs[0, 0, 1:], 1.0)
    table = sanity_table(result)
    assert table.loc[0, "n_constant"] == 1 and table.loc[0, "n_images"] == 3
    assert table.loc[0, "spearman_abs_mean"] == pytest.approx(1.0)  # not (0 + 1 + 1 + 1) / 4
    again = serial.from_parts(SanityResult, *serial.to_parts(result))
    assert again.constant.tolist() == [[1]]

    from types import SimpleNamespace

    from xai.compare.narrative import sanity_findings

    text = " ".join(sanity_findings(SimpleNamespace(sanity_result=result, sanity=table)))
    assert "(n = 3; 1 constant map(s) not scored)" in text


def test_ablationcam_warning_under_randomisation_reaches_the_result_and_the_findings() -> None:
    """Explaining the class with the most negative logit makes AblationCAM divide by a negative number on every
    model state; the sanity check keeps the warning per state (it used to keep only ``.map``)."""
    from types import SimpleNamespace

    from xai.compare.narrative import sanity_notes
    from xai.models import to_input

    model = tiny_resnet(num_classes=10, seed=0)
    pixels = planted_image(64, seed=1)
    with torch.no_grad():
        negative = int(model(to_input(pixels[None]))[0].argmin())
    segments = np.zeros((64, 64), np.int32)
    explain = sanity_explain_fn(
        [(pixels, segments, negative)],
        ["ablationcam"],
        target="layer4[-1]",
        lime_params=LimeParams(num_samples=10),
        seed=0,
        batch_size=64,
    )
    result = sanity_check(model, explain, (("layer4",),), seed=0)
    states = [state for state, _ in result.warnings]
    assert "original" in states
    assert all(
        "flips the sign of every channel weight" in text and "sanity image 1" in text for _, text in result.warnings
    )
    again = serial.from_parts(SanityResult, *serial.to_parts(result))
    assert again.warnings == result.warnings
    notes = sanity_notes(SimpleNamespace(sanity_result=result, sanity=sanity_table(result)))
    assert any(note.startswith("original: sanity image 1:") for note in notes)  # one line per warning
