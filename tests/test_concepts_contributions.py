"""Unit contributions, head detection and concept maps: known answers (completeness, the Grad-CAM identity, the
library's Grad-CAM, IG of a linear function) at real size and on small models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xai.architectures import resolve_layer
from xai.concepts import make_unit_labels
from xai.concepts.bars import concept_bars
from xai.concepts.contributions import (
    gradient_x_activation_contributions,
    integrated_gradients_contributions,
    linear_head_contributions,
    unit_contributions,
)
from xai.concepts.head import GAP_LINEAR, GENERAL, UnitReplacement, detect_head
from xai.concepts.maps import concept_maps
from xai.concepts.suffix import SuffixRunner
from xai.explain import compute_cam
from xai.explain.cams._core import finalize_cam, forward_hook
from xai.testing import PlantedConvNet, PlantedEvidenceNet, PlantedViT, planted_image

BOX = (16, 16, 48, 48)


def _input(size: int = 64, seed: int = 0) -> torch.Tensor:
    image = planted_image(size, seed)
    return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]


def _gradcam_before_relu(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM's ``Σ_u α_u A_u`` with ``α_u = mean_ij ∂z_t/∂A_uij``, by plain autograd (independent of the code)."""
    kept: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        output.retain_grad()
        kept.append(output)

    with forward_hook(layer, keep):
        logits = model(x)
    logits[0, target].backward()
    activation, gradient = kept[0].detach(), kept[0].grad
    alpha = gradient.mean(dim=(2, 3), keepdim=True)
    return (alpha * activation).sum(dim=1)[0].numpy()


def _random_labels(n_units: int, n_concepts: int = 50, seed: int = 0, threshold: float = 0.0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, n_concepts, size=(n_units, 3))
    scores = -np.sort(-rng.normal(size=(n_units, 3)), axis=1)
    return make_unit_labels("layer", [f"c{i}" for i in range(n_concepts)], ids, scores, threshold)


@pytest.fixture(scope="module")
def resnet50_case():
    from torchvision.models import resnet50

    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    runner = SuffixRunner(model, x, model.layer4[-1])
    return model, x, runner


def test_resnet50_linear_head_is_complete_in_float32_and_maps_sum_to_gradcam(resnet50_case) -> None:
    model, x, runner = resnet50_case
    head = detect_head(runner)
    assert head.kind == GAP_LINEAR and head.linear is model.fc
    target = int(runner.logits.argmax())
    contributions = linear_head_contributions(runner, head, target)
    assert contributions.contributions.dtype == np.float32 and contributions.n_units == 2048
    assert abs(contributions.completeness_error) < 1e-4
    assert abs(contributions.logit) > 1  # a real logit, not a zero that any sum would match
    weight = model.fc.weight[target].detach().numpy()
    with torch.inference_mode():
        pooled = model.layer4(
            model.layer3(model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x)))))))
        )
    np.testing.assert_allclose(
        contributions.contributions, weight * pooled.mean(dim=(2, 3))[0].numpy(), rtol=1e-5, atol=1e-6
    )
    bars = concept_bars(contributions, _random_labels(2048))
    maps = concept_maps(contributions, bars)
    expected = _gradcam_before_relu(model, model.layer4[-1], x, target)
    np.testing.assert_allclose(maps.total, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    # and after grad-cam's own ReLU, resize and scaling, the library's Grad-CAM map
    library = compute_cam(model, x, "gradcam", model.layer4[-1], target).map
    ours = finalize_cam(np.ones((1, 1), np.float32), maps.total[None, None], (224, 224))
    np.testing.assert_allclose(ours, library, atol=1e-4)


def test_small_model_completeness_bars_and_maps_add_up() -> None:
    model = PlantedEvidenceNet(BOX)
    runner = SuffixRunner(model, _input(), model.layer4[-1])
    head = detect_head(runner)
    target = int(runner.logits.argmax())
    contributions = unit_contributions(runner, head, target, np.zeros(runner.n_units, np.float32))
    assert contributions.method == "linear_head"
    assert abs(contributions.completeness_error) < 1e-4 * max(1.0, abs(contributions.logit))
    labels = _random_labels(runner.n_units, n_concepts=5, threshold=0.2)
    bars = concept_bars(contributions, labels)
    summed = sum(bar.contribution for bar in bars.bars) + bars.unlabelled.contribution + bars.offset
    assert summed == pytest.approx(contributions.logit, abs=1e-4 * abs(contributions.logit))
    assert sum(bar.n_units for bar in bars.bars) + bars.unlabelled.n_units == runner.n_units
    assert bars.unlabelled.n_units == int((~labels.reliable).sum()) > 0
    maps = concept_maps(contributions, bars)
    for bar, layer_map in zip((*bars.bars, bars.unlabelled), maps.maps, strict=True):
        assert layer_map.sum() == pytest.approx(bar.contribution, abs=1e-4 * abs(contributions.logit))
    expected = _gradcam_before_relu(model, model.layer4[-1], _input(), target)
    np.testing.assert_allclose(maps.total, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


class _ReluAfterTarget(nn.Module):
    """DenseNet's head: ReLU, then global average pool, then one linear layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8))
        self.classifier = nn.Linear(8, 4)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.features(x))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class _ConcatAfterTarget(nn.Module):
    """DenseNet's block: the target's output is concatenated with a tensor that bypasses it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.target = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(16, 8, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        return self.head(torch.cat([stem, self.target(stem)], dim=1))


def _silent_relu_head() -> nn.Module:
    """The ReLU head on a target whose output is all zero on every image: only rows at unit scale reveal the ReLU."""
    model = _ReluAfterTarget()
    with torch.no_grad():
        for parameter in model.features.parameters():
            parameter.zero_()
    return model


def _mobilenet_v2() -> nn.Module:
    from torchvision.models import mobilenet_v2

    torch.manual_seed(0)
    return mobilenet_v2(weights=None, num_classes=10).eval()


@pytest.mark.parametrize(
    ("build", "layer", "reshape", "kind"),
    [
        pytest.param(lambda: PlantedEvidenceNet(BOX), "layer4.1", None, GAP_LINEAR, id="resnet-like"),
        pytest.param(_mobilenet_v2, "features.18", None, GAP_LINEAR, id="mobilenet_v2-functional-pool"),
        pytest.param(lambda: PlantedConvNet(BOX), "features.3", None, GENERAL, id="mlp-head"),
        pytest.param(_ReluAfterTarget, "features", None, GENERAL, id="relu-before-pool"),
        pytest.param(_silent_relu_head, "features", None, GENERAL, id="relu-before-pool-silent-target"),
        pytest.param(lambda: PlantedViT(BOX), "encoder.layers[-1].ln_1", "vit_tokens_to_map", GENERAL, id="vit"),
    ],
)
def test_head_kind_is_read_from_what_the_modules_compute(build, layer, reshape, kind) -> None:
    model = build()
    runner = SuffixRunner(model, _input(), resolve_layer(model, layer), reshape)
    assert detect_head(runner).kind == kind


def test_runner_falls_back_to_full_forward_where_a_bypass_does_not_broadcast() -> None:
    model = _ConcatAfterTarget()
    x = _input(32)
    runner = SuffixRunner(model, x, model.target)
    assert runner.strategy == "full-forward"
    assert detect_head(runner).kind == GENERAL
    masks = np.zeros((2, 8), dtype=bool)
    masks[1, [0, 3]] = True
    logits = UnitReplacement(runner, detect_head(runner), np.full(8, 0.25, np.float32)).logits(masks)

    def replace(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, [0, 3]] = 0.25
        return output

    with forward_hook(model.target, replace), torch.inference_mode():
        expected = model(x)[0].double().numpy()
    np.testing.assert_allclose(logits[1], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits[0], runner.logits.double().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("build", "layer", "reshape"),
    [
        pytest.param(lambda: PlantedConvNet(BOX), "features.3", None, id="mlp-head"),
        pytest.param(lambda: PlantedViT(BOX), "encoder.layers[-1].ln_1", "vit_tokens_to_map", id="vit"),
    ],
)
def test_integrated_gradients_are_nearly_complete_on_other_heads(build, layer, reshape) -> None:
    model = build()
    runner = SuffixRunner(model, _input(), resolve_layer(model, layer), reshape)
    head = detect_head(runner)
    target = int(runner.logits.argmax())
    baseline = np.random.default_rng(0).uniform(0, 0.5, runner.n_units).astype(np.float32)
    contributions = unit_contributions(runner, head, target, baseline)
    assert contributions.method == "integrated_gradients" and contributions.steps == 32
    change = contributions.logit - contributions.offset
    assert abs(change) > 0.5
    assert abs(contributions.completeness_error) < 0.01 * abs(change)
    with torch.inference_mode():  # the offset is the logit with every unit at its baseline
        baseline_logits = UnitReplacement(runner, head, baseline).logits(np.ones((1, runner.n_units), bool))
    assert contributions.offset == pytest.approx(baseline_logits[0, target], abs=1e-5)
    # gradient x activation is a first-order term: far from complete on the same head
    first_order = gradient_x_activation_contributions(runner, target)
    assert abs(first_order.completeness_error) > 10 * abs(contributions.completeness_error)


def test_on_a_linear_head_integrated_gradients_and_gradient_x_activation_equal_the_exact_formula() -> None:
    model = PlantedEvidenceNet(BOX)
    runner = SuffixRunner(model, _input(), model.layer4[-1])
    head = detect_head(runner)
    target = int(runner.logits.argmax())
    exact = linear_head_contributions(runner, head, target)
    scale = np.abs(exact.contributions).max()
    baseline = np.random.default_rng(1).uniform(0, 1, runner.n_units).astype(np.float32)
    path = integrated_gradients_contributions(runner, target, baseline, steps=4)
    np.testing.assert_allclose(path.contributions, exact.contributions - exact.weights * baseline, atol=1e-5 * scale)
    np.testing.assert_allclose(path.weights, exact.weights, rtol=1e-5)
    first_order = gradient_x_activation_contributions(runner, target)
    np.testing.assert_allclose(first_order.contributions, exact.contributions, atol=1e-5 * scale)
    np.testing.assert_allclose(first_order.per_position, exact.per_position, atol=1e-6 * scale)


def test_vit_maps_hold_patch_tokens_and_the_class_token_is_reported_unmapped() -> None:
    model = PlantedViT(BOX)
    runner = SuffixRunner(model, _input(), model.encoder.layers[-1].ln_1, "vit_tokens_to_map")
    assert runner.axis == 2 and runner.n_units == 32
    target = int(runner.logits.argmax())
    contributions = integrated_gradients_contributions(runner, target, np.zeros(32, np.float32))
    assert contributions.per_position.shape == (32, 8, 8)
    mapped = contributions.per_position.astype(np.float64).sum(axis=(1, 2))
    np.testing.assert_allclose(mapped + contributions.unmapped, contributions.contributions, atol=1e-5)


def test_unknown_method_and_mismatched_baseline_are_refused() -> None:
    model = PlantedEvidenceNet(BOX)
    runner = SuffixRunner(model, _input(), model.layer4[-1])
    head = detect_head(runner)
    with pytest.raises(ValueError, match="unknown contribution method"):
        unit_contributions(runner, head, 0, np.zeros(32, np.float32), method="shap")
    with pytest.raises(ValueError, match="units"):
        UnitReplacement(runner, head, np.zeros(5, np.float32))
    convnet = PlantedConvNet(BOX)
    other = SuffixRunner(convnet, _input(), convnet.features[-1])
    with pytest.raises(ValueError, match="gap_linear"):
        linear_head_contributions(other, detect_head(other), 0)


class _InPlaceReluHead(nn.Module):
    """DenseNet's head with its in-place ReLU: ``relu_(target output)``, pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8))
        self.classifier = nn.Linear(8, 4)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu(self.features(x), inplace=True)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_in_place_layers_after_the_target_change_neither_the_rows_nor_the_gradients() -> None:
    model = _InPlaceReluHead()
    runner = SuffixRunner(model, _input(), model.features)
    raw = runner.raw.clone()
    assert raw.min() < 0  # the in-place ReLU would write into it
    target = int(runner.logits.argmax())
    # ReLU is positively homogeneous, so the head is linear along the path from 0: IG is exact there
    contributions = integrated_gradients_contributions(runner, target, np.zeros(8, np.float32), steps=4)
    assert abs(contributions.completeness_error) < 1e-5
    gradient_x_activation_contributions(runner, target)
    assert torch.equal(runner.raw, raw)
