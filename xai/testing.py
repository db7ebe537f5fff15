"""Tiny seeded models with planted answers, shipped for tests (as captum ships ``captum.testing``).

The planted-evidence networks decide their class from one known image box and nothing else: the input is
multiplied by a fixed 0/1 box mask before anything else, and every layer up to the CAM target maps zero to zero
(bias-free convolutions, zero-bias layer norms and MLPs), so target activations outside the box (dilated by the
receptive field) are exactly zero. Any faithful explanation must therefore concentrate on the box, and moving
the box must move the explanation. Three shapes: ResNet-like (:class:`PlantedEvidenceNet`), MobileNet-like
(:class:`PlantedConvNet`, a ``features`` Sequential) and a torchvision ViT (:class:`PlantedViT`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.models import VisionTransformer

Box = tuple[int, int, int, int]
"""``(top, left, bottom, right)`` in input pixels, bottom/right exclusive."""


class _Block(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class PlantedEvidenceNet(nn.Module):
    """A ResNet-shaped toy classifier (``conv1``, ``layer1..layer4``, ``avgpool``, ``fc``) that only sees ``box``.

    ``layer4[-1]`` is the usual CAM target layer, as in torchvision ResNets.
    """

    def __init__(self, box: Box, image_size: int = 64, num_classes: int = 5, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("evidence_mask", _mask(box, image_size))
        self.box = box
        self.conv1 = _Block(3, 8, 1)
        self.layer1 = nn.Sequential(_Block(8, 16, 2))
        self.layer2 = nn.Sequential(_Block(16, 16, 1))
        self.layer3 = nn.Sequential(_Block(16, 32, 2))
        self.layer4 = nn.Sequential(_Block(32, 32, 1), _Block(32, 32, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.evidence_mask
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _mask(box: Box, image_size: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, image_size, image_size)
    top, left, bottom, right = box
    mask[..., top:bottom, left:right] = 1.0
    return mask


def _seeded_(module: nn.Module, seed: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


class _ConvAct(nn.Sequential):
    """Bias-free convolution + activation (torchvision's ``Conv2dNormActivation`` without the norm's shift)."""

    def __init__(
        self,
        channels_in: int,
        channels_out: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] = nn.Hardswish,
    ) -> None:
        super().__init__(
            nn.Conv2d(channels_in, channels_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            activation(),
        )


class _InvertedResidual(nn.Module):
    """MobileNetV2/V3's block: 1x1 expand, 3x3 depthwise, 1x1 project, plus the input."""

    def __init__(self, channels: int, expanded: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _ConvAct(channels, expanded, 1),
            _ConvAct(expanded, expanded, 3, groups=expanded),
            nn.Conv2d(expanded, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class PlantedConvNet(nn.Module):
    """A MobileNet-shaped toy classifier (``features`` Sequential with an inverted residual and a depthwise
    convolution, ``avgpool``, ``classifier``) that only sees ``box``. ``features[-1]`` is the CAM target layer,
    as for torchvision's MobileNets and EfficientNets. Hardswish inside, as MobileNetV3; the last block ends in
    ReLU6, as MobileNetV2's, so AblationCAM ablates to 0 (with a negative minimum grad-cam's ``min - 1e7`` value
    swamps the logits and its map says nothing about the box)."""

    def __init__(self, box: Box, image_size: int = 64, num_classes: int = 5, seed: int = 0) -> None:
        super().__init__()
        self.register_buffer("evidence_mask", _mask(box, image_size))
        self.box = box
        self.features = nn.Sequential(
            _ConvAct(3, 16, 3, stride=2),
            _InvertedResidual(16, 32),
            _ConvAct(16, 24, 3, stride=2),
            _ConvAct(24, 48, 1, activation=nn.ReLU6),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(48, 32), nn.Hardswish(), nn.Linear(32, num_classes))
        _seeded_(self, seed, 0.5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x * self.evidence_mask)
        return self.classifier(torch.flatten(self.avgpool(x), 1))


class PlantedViT(VisionTransformer):
    """A torchvision ``VisionTransformer`` (64 px, 8 px patches, 2 encoder layers) that only sees ``box``.

    Outside the box the patch tokens start as exact zeros (masked pixels, no ``conv_proj`` bias, zero class token
    and position embedding) and stay zero up to the last block's ``ln_1``, the CAM target layer (as for
    ``vit_b_16``): layer norms, attention projections and MLPs have zero biases, and the first block's attention
    output projection is zero, so tokens are not mixed before the target. The last block's attention lets the class
    token read the box's tokens, so the logits depend on the box alone. ``box`` must lie on the 8 px patch grid.
    """

    def __init__(self, box: Box, image_size: int = 64, num_classes: int = 5, seed: int = 0) -> None:
        super().__init__(
            image_size=image_size,
            patch_size=8,
            num_layers=2,
            num_heads=2,
            hidden_dim=32,
            mlp_dim=64,
            num_classes=num_classes,
        )
        if any(edge % 8 for edge in box):
            raise ValueError(f"box {box} is not on the 8 px patch grid")
        self.register_buffer("evidence_mask", _mask(box, image_size))
        self.box = box
        _seeded_(self, seed, 0.5)
        zero = [self.conv_proj.bias, self.class_token, self.encoder.pos_embedding]
        for block in self.encoder.layers:
            zero += [block.ln_1.bias, block.ln_2.bias, block.self_attention.in_proj_bias]
            zero += [block.self_attention.out_proj.bias, block.mlp[0].bias, block.mlp[3].bias]
        zero.append(self.encoder.layers[0].self_attention.out_proj.weight)
        with torch.no_grad():
            for parameter in zero:
                parameter.zero_()
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * self.evidence_mask)


def planted_image(image_size: int = 64, seed: int = 0) -> np.ndarray:
    """A textured uint8 RGB image (H, W, 3): smooth colour blobs so superpixel methods find real segments."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(8, 8, 3))
    image = np.kron(coarse, np.ones((image_size // 8, image_size // 8, 1)))
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def box_mask(box: Box, image_size: int) -> np.ndarray:
    """Boolean (H, W) mask of ``box``."""
    mask = np.zeros((image_size, image_size), dtype=bool)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = True
    return mask


def tiny_resnet(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """A seeded torchvision ResNet18 with random weights, for equality tests against the libraries."""
    from torchvision.models import resnet18

    torch.manual_seed(seed)
    return resnet18(weights=None, num_classes=num_classes).eval()
