"""Small stand-ins for the probe pass's networks and transforms (a tiny CLIP image tower, the ResNet transform)."""

from __future__ import annotations

import torch
from torch import nn
from torchvision import transforms as T

LAYERS = ("layer3", "layer4", "fc")


class TinyClip(nn.Module):
    """Stands in for CLIP: ``encode_image`` of a 32-px image (a small conv and a projection)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.proj = nn.Linear(8 * 7 * 7, 16)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(images).flatten(1))


CLIP_TRANSFORM = T.Compose(
    [
        T.Resize(32, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(32),
        T.ToTensor(),
        T.Normalize((0.48, 0.46, 0.41), (0.27, 0.26, 0.28)),
    ]
)
TARGET_TRANSFORM = T.Compose(
    [T.Resize(72), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
)
