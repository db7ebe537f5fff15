"""The exact fast AblationCAM/ScoreCAM on every architecture family: equality with grad-cam at real size (seeded
random weights), which AblationCAM strategy each family takes, the full-forward fallback, and planted evidence on a
MobileNet-like CNN and a ViT (every CAM localises the planted box)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from xai import architectures
from xai.classifiers import ClassifierSpec, build_classifier
from xai.explain import CAM_METHODS, compute_cam
from xai.explain.cams._core import channel_axis, resolve_reshape
from xai.explain.cams.ablation import AFTER_TARGET, FULL_FORWARD, ablation_cam
from xai.explain.cams.score import score_cam
from xai.models import to_input
from xai.testing import PlantedConvNet, PlantedViT, box_mask, planted_image

CHANNELS = 48
"""Channels compared at real size: more than one library AblationCAM batch of 32 (its ablation value restarts per
batch) and three ScoreCAM batches of 16, at a fraction of the 2 x (C + 1) whole-network forwards (ViT-B/16: 768)."""
ATOL = 1e-4
"""Observed max abs difference of the [0, 1] maps: 0 (bitwise) to 3e-5 (regnet); the rest is the batch size's
effect on float32 rounding (the library runs 32 rows, we run one chunk)."""

FAMILIES = [
    pytest.param("resnet18", id="resnet"),
    pytest.param("mobilenet_v3_small", id="mobilenet"),
    pytest.param("efficientnet_b0", id="efficientnet"),
    pytest.param("regnet_y_400mf", id="regnet"),
    pytest.param("convnext_tiny", id="convnext", marks=pytest.mark.slow),
    pytest.param("vit_b_16", id="vit", marks=pytest.mark.slow),
    pytest.param("swin_t", id="swin", marks=pytest.mark.slow),
]


def _library_map(cam_class: type, model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int, **kwargs):
    cam = cam_class(model=model, target_layers=[layer], **kwargs)
    try:
        return cam(x, [ClassifierOutputTarget(target)])[0]
    finally:
        cam.activations_and_grads.release()


def _first_channels(reshape: str | None, channels: int):
    """The test hook: the family's reshape, then its first ``channels`` channels. Both libraries take it as the
    reshape, so both run their usual code on a smaller channel set (grad-cam ablates channel indices 0..channels-1
    of the raw output, as we do)."""
    base = resolve_reshape(reshape)
    return lambda tensor: base(tensor)[:, :channels]


@pytest.mark.parametrize("name", FAMILIES)
def test_fast_cams_equal_library_per_family_at_real_size(name: str) -> None:
    model = build_classifier(ClassifierSpec(name), "random", seed=0, weights_dir=None).module
    target_layer = architectures.auto_target_layer(model)
    layer = architectures.resolve_layer(model, target_layer.path)
    size = getattr(model, "image_size", 224)
    x = to_input(planted_image(size, 1)[None])
    with torch.no_grad():
        target = int(model(x).argmax())
    reshape = _first_channels(target_layer.reshape, CHANNELS)

    ours = ablation_cam(model, x, layer, target, reshape=reshape)
    expected = _library_map(
        AblationCAM,
        model,
        layer,
        x,
        target,
        reshape_transform=reshape,
        ablation_layer=architectures.ablation_layer_for(target_layer.reshape),
    )
    assert ours.strategy == AFTER_TARGET  # the fast path holds for every known family at its auto target layer
    assert ours.forward_passes == 1 + CHANNELS + 1
    assert expected.std() > 0.01
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=ATOL)

    ours = score_cam(model, x, layer, target, reshape=reshape)
    expected = _library_map(ScoreCAM, model, layer, x, target, reshape_transform=reshape)
    assert expected.std() > 0.01
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=ATOL)


def test_channel_axis_is_the_axis_the_reshape_moves_to_dim_1() -> None:
    vit = torch.zeros(1, 1 + 4 * 4, 6)
    swin = torch.zeros(1, 3, 3, 6)
    conv = torch.zeros(1, 6, 3, 3)
    assert channel_axis(vit, resolve_reshape("vit_tokens_to_map")) == 2
    assert channel_axis(swin, resolve_reshape("channels_last_to_map")) == 3
    assert channel_axis(conv, resolve_reshape(None)) == 1
    assert channel_axis(vit, _first_channels("vit_tokens_to_map", 4)) == 2
    with pytest.raises(ValueError, match="channel axis"):
        channel_axis(conv, lambda tensor: tensor.flip(1))
    with pytest.raises(ValueError, match="unknown reshape"):
        resolve_reshape("tokens")


class _ConcatAfterTarget(nn.Module):
    """DenseNet-style: the target's output is concatenated with a tensor that bypasses it."""

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


def test_ablationcam_falls_back_to_full_forward_where_a_bypass_does_not_broadcast() -> None:
    model = _ConcatAfterTarget()
    x = to_input(planted_image(32, 4)[None])
    target = int(model(x).argmax())
    ours = ablation_cam(model, x, model.target, target, batch_size=5)
    assert ours.strategy == FULL_FORWARD
    expected = _library_map(AblationCAM, model, model.target, x, target)
    assert expected.std() > 0.01
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=ATOL)


def test_ablationcam_full_forward_fallback_on_a_densenet_block_layer() -> None:
    from torchvision.models import densenet121

    torch.manual_seed(0)
    model = densenet121(weights=None, num_classes=10).eval()
    layer = model.features.denseblock4.denselayer15  # its 32 new channels are concatenated with the block input
    x = to_input(planted_image(64, 5)[None])
    target = int(model(x).argmax())
    ours = ablation_cam(model, x, layer, target)
    assert ours.strategy == FULL_FORWARD
    expected = _library_map(AblationCAM, model, layer, x, target)
    assert expected.std() > 0.01
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=ATOL)


# ----------------------------------------------------------------------------------------------------------------
# Planted evidence: the same criterion as tests/test_explain_cams.py, on a non-ResNet CNN and a ViT.

BOX = (8, 8, 32, 32)
CONTROL_BOX = (32, 32, 56, 56)
PLANTED = [
    pytest.param(PlantedConvNet, "features[-1]", None, id="mobilenet-like"),
    pytest.param(PlantedViT, "encoder.layers[-1].ln_1", "vit_tokens_to_map", id="vit"),
]


def _top_fraction_inside(cam_map: np.ndarray, box: tuple[int, int, int, int]) -> float:
    top = cam_map >= np.quantile(cam_map, 0.9)
    return float((top & box_mask(box, cam_map.shape[0])).sum() / top.sum())


@pytest.mark.parametrize("model_class", [PlantedConvNet, PlantedViT])
def test_planted_models_decide_from_their_box_alone(model_class: type) -> None:
    model = model_class(BOX, seed=0)
    x = to_input(planted_image(64, 0)[None])
    with torch.no_grad():
        logits = model(x)
        changed = model(x + torch.from_numpy(~box_mask(BOX, 64)).float())  # every pixel outside the box changes
        inside = model(x + torch.from_numpy(box_mask(BOX, 64)).float())
    assert torch.equal(logits, changed)
    assert not torch.allclose(logits, inside)


def test_planted_vit_target_tokens_are_zero_outside_the_box_patches() -> None:
    model = PlantedViT(BOX, seed=0)
    activations: list[torch.Tensor] = []
    handle = model.encoder.layers[-1].ln_1.register_forward_hook(lambda module, inputs, out: activations.append(out))
    with torch.no_grad():
        model(to_input(planted_image(64, 0)[None]))
    handle.remove()
    nonzero = resolve_reshape("vit_tokens_to_map")(activations[0])[0].abs().sum(0) > 0  # (8, 8) patch grid
    expected = torch.from_numpy(box_mask(BOX, 64)[4::8, 4::8])
    assert torch.equal(nonzero, expected) and int(expected.sum()) == 9


@pytest.mark.parametrize("method", CAM_METHODS)
@pytest.mark.parametrize(("model_class", "path", "reshape"), PLANTED)
def test_every_cam_localises_the_planted_box(method: str, model_class: type, path: str, reshape: str | None) -> None:
    x = to_input(planted_image(64, 0)[None])
    for box, elsewhere in ((BOX, CONTROL_BOX), (CONTROL_BOX, BOX)):
        model = model_class(box, seed=0)
        layer = architectures.resolve_layer(model, path)
        cam = compute_cam(model, x, method, layer, int(model(x).argmax()), reshape=reshape)
        assert cam.map.shape == (64, 64) and cam.map.min() >= 0.0 and cam.map.max() <= 1.0 + 1e-6
        # The box is 14% of the image; most of the hottest 10% of pixels must fall inside it, none in the other.
        assert _top_fraction_inside(cam.map, box) > 0.5
        assert _top_fraction_inside(cam.map, elsewhere) < 0.1
