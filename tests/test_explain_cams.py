"""CAM family: planted evidence, exact equality of the fast paths with grad-cam, hooks, determinism."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from xai.explain import CAM_METHODS, compute_cam
from xai.explain.cams.ablation import library_ablation_values
from xai.models import to_input
from xai.testing import PlantedEvidenceNet, box_mask, planted_image, tiny_resnet

BOX = (8, 8, 32, 32)
CONTROL_BOX = (32, 32, 56, 56)


def _library_map(
    cam_class: type, model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int, **kwargs
) -> np.ndarray:
    cam = cam_class(model=model, target_layers=[layer], **kwargs)
    try:
        return cam(x, [ClassifierOutputTarget(target)])[0]
    finally:
        cam.activations_and_grads.release()


def _top_fraction_inside(cam_map: np.ndarray, box: tuple[int, int, int, int]) -> float:
    top = cam_map >= np.quantile(cam_map, 0.9)
    return float((top & box_mask(box, cam_map.shape[0])).sum() / top.sum())


@pytest.fixture(scope="module")
def planted() -> tuple[nn.Module, torch.Tensor, int]:
    model = PlantedEvidenceNet(BOX, seed=0)
    x = to_input(planted_image(64, 0)[None])
    return model, x, int(model(x).argmax())


@pytest.mark.parametrize("method", CAM_METHODS)
def test_planted_evidence_concentrates_in_box_and_follows_it(method: str, planted) -> None:
    model, x, target = planted
    cam = compute_cam(model, x, method, model.layer4[-1], target)
    assert cam.map.shape == (64, 64) and cam.map.dtype == np.float32
    assert cam.map.min() >= 0.0 and cam.map.max() <= 1.0 + 1e-6
    # The box is 14% of the image; most of the hottest 10% of pixels must fall inside it.
    assert _top_fraction_inside(cam.map, BOX) > 0.5
    control = PlantedEvidenceNet(CONTROL_BOX, seed=0)
    moved = compute_cam(control, x, method, control.layer4[-1], int(control(x).argmax()))
    assert _top_fraction_inside(moved.map, CONTROL_BOX) > 0.5
    assert _top_fraction_inside(moved.map, BOX) < 0.1


@pytest.mark.parametrize(("method", "cam_class"), [("ablationcam", AblationCAM), ("scorecam", ScoreCAM)])
def test_fast_cams_equal_library_on_small_model(method: str, cam_class: type) -> None:
    model = PlantedEvidenceNet(BOX, seed=1)
    x = to_input(planted_image(64, 1)[None])
    for target in (int(model(x).argmax()), 3):  # the prediction and a non-top class
        ours = compute_cam(model, x, method, model.layer4[-1], target)
        expected = _library_map(cam_class, model, model.layer4[-1], x, target)
        assert expected.std() > 0.01  # a real map, not a constant both sides agree on
        np.testing.assert_allclose(ours.map, expected, rtol=0, atol=1e-4)


def test_fast_scorecam_equals_library_on_resnet18() -> None:
    model = tiny_resnet(10, seed=1)
    x = to_input(planted_image(48, 1)[None])
    target = int(model(x).argmax())
    ours = compute_cam(model, x, "scorecam", model.layer4[-1], target)
    expected = _library_map(ScoreCAM, model, model.layer4[-1], x, target)
    assert expected.std() > 0.01
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=1e-4)


def test_fast_ablationcam_equals_library_on_resnet50() -> None:
    from torchvision.models import resnet50

    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    x = to_input(planted_image(40, 2)[None])  # 40x40: layer4 is still 2x2; the library run stays ~10 s on CPU
    target = int(model(x).argmax())
    ours = compute_cam(model, x, "ablationcam", model.layer4[-1], target)
    expected = _library_map(AblationCAM, model, model.layer4[-1], x, target, batch_size=256)
    assert expected.std() > 0.01
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=1e-4)
    assert ours.forward_passes == 1 + 2048 + 1  # original, every ablated channel, one unablated check row


def test_ablation_value_reproduces_library_when_activations_can_be_negative() -> None:
    # A conv output (before ReLU) has a negative minimum: the library then ablates with min - (i+1)*1e7.
    model = PlantedEvidenceNet(BOX, seed=2)
    x = to_input(planted_image(64, 2)[None])
    layer = model.layer4[-1].conv
    target = int(model(x).argmax())
    ours = compute_cam(model, x, "ablationcam", layer, target, batch_size=5)
    np.testing.assert_allclose(ours.map, _library_map(AblationCAM, model, layer, x, target), rtol=0, atol=1e-4)
    values = library_ablation_values(torch.tensor([[[-1.0]], [[2.0]], [[3.0]]]), library_batch_size=2)
    first = torch.tensor(-1.0) - 1e7  # float32, as the library computes it row after row
    assert values.tolist() == [first.item(), (first - 1e7).item(), first.item()]
    assert library_ablation_values(torch.tensor([[[0.0]], [[2.0]]])).tolist() == [0.0, 0.0]


def test_scorecam_computes_constant_channels_once_and_still_equals_library() -> None:
    model = copy.deepcopy(PlantedEvidenceNet(BOX, seed=3))
    with torch.no_grad():
        model.layer4[-1].conv.weight[:10] = 0.0  # channels 0..9 are exactly 0 after the ReLU
    x = to_input(planted_image(64, 3)[None])
    target = int(model(x).argmax())
    ours = compute_cam(model, x, "scorecam", model.layer4[-1], target)
    assert ours.forward_passes == 1 + (32 - 10) + 1
    np.testing.assert_allclose(ours.map, _library_map(ScoreCAM, model, model.layer4[-1], x, target), rtol=0, atol=1e-4)


class _FailAfter(nn.Module):
    """Wraps a model so that every forward raises after the target layer ran."""

    def __init__(self, model: PlantedEvidenceNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.model.layer4(self.model.layer3(self.model.layer2(self.model.layer1(self.model.conv1(x)))))
        raise RuntimeError("boom")


@pytest.mark.parametrize("method", CAM_METHODS)
def test_hooks_released_and_grads_restored_after_an_exception(method: str) -> None:
    inner = PlantedEvidenceNet(BOX, seed=0)
    model = _FailAfter(inner).eval()
    x = to_input(planted_image(64, 0)[None])
    with pytest.raises(RuntimeError, match="boom"):
        compute_cam(model, x, method, inner.layer4[-1], 0)
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks
    assert all(parameter.grad is None for parameter in model.parameters())
    assert isinstance(inner.layer4[-1], nn.Module) and type(inner.layer4[-1]).__name__ == "_Block"


@pytest.mark.parametrize("method", ["gradcam", "ablationcam", "scorecam", "eigencam"])
def test_deterministic_and_pure(method: str, planted) -> None:
    model, x, target = planted
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    first = compute_cam(model, x, method, model.layer4[-1], target)
    second = compute_cam(model, x, method, model.layer4[-1], target)
    assert np.array_equal(first.map, second.map)
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())
    assert not model.training


def test_rejects_training_mode_unknown_method_and_shared_layer(planted) -> None:
    model, x, target = planted
    with pytest.raises(ValueError, match="unknown explanation method"):
        compute_cam(model, x, "gradcam9000", model.layer4[-1], target)
    with pytest.raises(ValueError, match="not a CAM"):
        compute_cam(model, x, "lime", model.layer4[-1], target)
    shared = nn.ReLU()
    twice = nn.Sequential(
        nn.Conv2d(3, 4, 3), shared, nn.Conv2d(4, 4, 3), shared, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    ).eval()
    with pytest.raises(ValueError, match="ran 2 times"):
        compute_cam(twice, x, "ablationcam", shared, 0)
    training = PlantedEvidenceNet(BOX).train()
    with pytest.raises(ValueError, match="training mode"):
        compute_cam(training, x, "gradcam", training.layer4[-1], 0)
