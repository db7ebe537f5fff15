"""AblationCAM runs the layers before its target once: the model cut at the target with torch.fx gives the
model's own output, the same maps as the hooked forward, and is re-cut when the model's modules change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from xai.explain.cams import ablation
from xai.explain.cams.ablation import AFTER_TARGET, ablation_cam
from xai.explain.cams.split import split_at
from xai.models import to_input
from xai.testing import PlantedViT, planted_image


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return resnet18(num_classes=10).eval()


def _calls(module: nn.Module) -> list[int]:
    counter = [0]
    module.register_forward_hook(lambda *_: counter.__setitem__(0, counter[0] + 1))
    return counter


def test_the_layers_before_the_target_run_once(model: nn.Module) -> None:
    x = to_input(planted_image(64, 0)[None])
    stem = _calls(model.conv1)
    found = ablation_cam(model, x, model.layer4[-1], 3, batch_size=16)  # 512 channels: 32 chunks
    assert found.strategy == AFTER_TARGET and found.forward_passes == 1 + 512 + 1
    assert stem[0] == 1


class _InPlaceAfterTarget(nn.Module):
    """VGG-style: an in-place ReLU right after the target, and a residual added in place to its result."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.target = nn.Conv2d(8, 8, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        out = self.relu(self.target(stem))
        out += stem
        return self.head(out)


@pytest.mark.parametrize("which", ["resnet", "vit", "in-place"])
def test_the_split_gives_the_hooked_forwards_map(model: nn.Module, which: str, monkeypatch) -> None:
    if which == "resnet":
        net, layer, reshape, x = model, model.layer4[-1], None, to_input(planted_image(64, 1)[None])
    elif which == "in-place":
        net = _InPlaceAfterTarget()
        layer, reshape, x = net.target, None, to_input(planted_image(32, 1)[None])
    else:
        net = PlantedViT((8, 8, 32, 32), seed=0).eval()
        layer, reshape = net.encoder.layers[-1].ln_1, "vit_tokens_to_map"
        x = to_input(planted_image(64, 1)[None])
    assert split_at(net, layer) is not None
    cut = ablation_cam(net, x, layer, 2, batch_size=7, reshape=reshape)
    monkeypatch.setattr(ablation, "split_at", lambda *_: None)
    hooked = ablation_cam(net, x, layer, 2, batch_size=7, reshape=reshape)
    assert cut.strategy == hooked.strategy == AFTER_TARGET
    assert cut.forward_passes == hooked.forward_passes
    assert hooked.map.std() > 0.01
    np.testing.assert_allclose(cut.map, hooked.map, rtol=0, atol=1e-6)


def test_the_split_computes_the_models_output_and_follows_a_replaced_module(model: nn.Module) -> None:
    x = torch.randn(2, 3, 64, 64)
    split = split_at(model, model.layer3)
    assert split is not None and split.live == 0
    with torch.inference_mode():
        output, *live = split.prefix(x)
        assert torch.equal(split.run_suffix(output, tuple(live)), model(x))
    assert split_at(model, model.layer3) is split  # kept while the model is the same objects
    torch.manual_seed(1)
    model.fc = nn.Linear(512, 10).eval()
    again = split_at(model, model.layer3)
    assert again is not split
    with torch.inference_mode():
        output, *live = again.prefix(x)
        assert torch.equal(again.run_suffix(output, tuple(live)), model(x))


class _Branching(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.target = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if x.mean() > 10:  # never true; only a real tensor can answer
            x = -x
        return self.head(torch.relu(self.target(x)))


def test_a_model_torch_fx_cannot_trace_keeps_the_hooked_forward() -> None:
    net = _Branching()
    assert split_at(net, net.target) is None
    x = to_input(planted_image(32, 2)[None])
    found = ablation_cam(net, x, net.target, 1, batch_size=3)
    assert found.strategy == AFTER_TARGET and found.forward_passes == 1 + 8 + 1
