"""Tiny seeded models with planted answers, shipped for tests (as captum ships ``captum.testing``).

The planted-evidence network decides its class from one known image box and nothing else: the input is
multiplied by a fixed 0/1 box mask before any convolution, and every convolution is bias-free, so activations
outside the box (dilated by the receptive field) are exactly zero. Any faithful explanation must therefore
concentrate on the box, and moving the box must move the explanation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

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
        mask = torch.zeros(1, 1, image_size, image_size)
        top, left, bottom, right = box
        mask[..., top:bottom, left:right] = 1.0
        self.register_buffer("evidence_mask", mask)
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
