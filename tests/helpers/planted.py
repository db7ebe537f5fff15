"""The planted-evidence net with tempered logits: LIME regresses probabilities, which a saturated softmax would
flatten. Shared by the LIME and the comparison-null tests."""

from __future__ import annotations

import torch
from torch import nn

from xai.testing import PlantedEvidenceNet


class Tempered(nn.Module):
    """Divides the logits so the planted net's softmax is not saturated (LIME regresses probabilities)."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


def tempered_planted(box: tuple[int, int, int, int]) -> nn.Module:
    """The planted net that reads ``box``, its logits divided by 200."""
    return Tempered(PlantedEvidenceNet(box, seed=0), 200.0).eval()
