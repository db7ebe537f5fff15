"""Concept maps: where on the image each concept bar's contribution sits.

``M_k(i, j) = Σ_{u in bar k} P_u(i, j)`` with the per-position contributions ``P_u`` of
:class:`~xai.concepts.contributions.UnitContributions` (``w_tu · A_u(i, j) / (h·w)`` for a linear head). The maps
of all bars (the unlabelled one included) sum to ``Σ_u P_u``, which for a global-average-pool + linear head *is*
the layer's Grad-CAM map before its ReLU (Selvaraju et al., ICCV 2017: ``Σ_u α_u A_u`` with
``α_u = w_tu / (h·w)``). So the total is not new information; the split by concept is. For integrated gradients the
total is the activation-space IG map instead. ``M_k`` summed over positions is ``C_k`` minus the bar's unmapped part
(ViT's class token).

Upsampling to the image: bilinear, ``align_corners=False`` (the convention of ``cv2.resize``, which grad-cam uses
for CAMs), values unscaled (rank-based comparisons do not need grad-cam's min-max scaling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xai.concepts.bars import ConceptBars
from xai.concepts.contributions import UnitContributions


@dataclass(frozen=True)
class ConceptMaps:
    """One map per bar, at the explained layer's resolution.

    Attributes:
        concepts: the bars' concepts: the labelled bars in :attr:`ConceptBars.bars` order, then the unlabelled one.
        maps: (n_bars + 1, h, w) float32 ``M_k`` in the same order.
        unmapped: (n_bars + 1,) float32 the part of each bar no map position holds (ViT's class token).
    """

    concepts: tuple[str, ...]
    maps: np.ndarray
    unmapped: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """(h, w) ``Σ_k M_k``: the Grad-CAM map before ReLU for a linear head (see the module docstring)."""
        return self.maps.astype(np.float64).sum(axis=0).astype(np.float32)

    def map_of(self, concept: str) -> np.ndarray:
        """(h, w) the map of ``concept``."""
        return self.maps[self.concepts.index(concept)]


def concept_maps(contributions: UnitContributions, bars: ConceptBars) -> ConceptMaps:
    """``M_k`` for every bar of ``bars`` (and the unlabelled units), from ``contributions.per_position``."""
    everything = (*bars.bars, bars.unlabelled)
    per_position = contributions.per_position.astype(np.float64)
    maps = np.stack([per_position[bar.units].sum(axis=0) for bar in everything]).astype(np.float32)
    unmapped = np.array([contributions.unmapped[bar.units].astype(np.float64).sum() for bar in everything])
    return ConceptMaps(
        concepts=tuple(bar.concept for bar in everything), maps=maps, unmapped=unmapped.astype(np.float32)
    )


def upsample(layer_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) -> (H, W) float32, bilinear with ``align_corners=False`` (see the module docstring)."""
    tensor = torch.as_tensor(np.asarray(layer_map, np.float32))[None, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
