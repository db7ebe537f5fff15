"""Agreement of each concept map with Task 2-3's maps of the same image: LIME's and each CAM's.

The concept map ``M_k`` is upsampled to the image (:func:`xai.concepts.maps.upsample`) and compared as Task 3
compares maps (:mod:`xai.compare.agreement`):

* LIME: :func:`xai.compare.agreement.compute_agreement` with ``M_k`` in the CAM's place: IoU of ``M_k``'s top
  pixels, area-matched to LIME's top-k positive superpixels (ties as an exact expectation), Spearman ρ between
  ``M_k``'s mean per superpixel and LIME's weight, and the superpixel null's p.
* A CAM: both maps binarised to their top ``top_fraction`` (20%) of pixels, the same area (``M_k``'s ties as an
  exact expectation, :class:`xai.compare.nulls.MapOrder`; the CAM's, whose ReLU leaves flat zero regions, by a
  seeded permutation), IoU against its chance value for two random masks of that area; Spearman ρ over all pixels
  (ties get average ranks). Pixel level because a CAM has no superpixels; both maps are smooth upsamplings of the
  same grid, so ρ is a comparison of two smooth fields, not of pixel noise.

A degenerate map (constant, all zero) is excluded with the reason, as Task 3 does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from xai.compare.agreement import chance_iou, compute_agreement, fraction_area
from xai.compare.nulls import MapOrder, degenerate_reason, random_tie_ranks
from xai.concepts.maps import upsample

LIME_METHOD = "lime"
TOP_FRACTION = 0.2
LIME_K = 5
LIME_NULL_DRAWS = 500


@dataclass(frozen=True)
class LimeWeights:
    """LIME's explanation of the image: (H, W) int superpixel ids and (S,) or (n_seeds, S) weights."""

    segments: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class MapAgreement:
    """One concept map against one other map.

    Attributes:
        concept, method: the pair compared (``lime`` or a CAM's name).
        rho: Spearman ρ (superpixel-pooled for LIME, pixel-level for a CAM; mean over LIME seeds).
        iou: area-matched IoU (expected over ties; mean over LIME seeds).
        chance_iou: expected IoU of two independent random masks of the same areas.
        area: pixels in the binarised masks (LIME: the mean top-k area over seeds).
        null_p: the superpixel null's one-sided p (LIME only, else NaN).
        excluded: why not scored ("" when scored).
    """

    concept: str
    method: str
    rho: float
    iou: float
    chance_iou: float
    area: float
    null_p: float
    excluded: str = ""


def _excluded(concept: str, method: str, reason: str) -> MapAgreement:
    return MapAgreement(concept, method, math.nan, math.nan, math.nan, math.nan, math.nan, reason)


def lime_agreement(
    concept: str, image_map: np.ndarray, lime: LimeWeights, *, k: int = LIME_K, seed: int = 0
) -> MapAgreement:
    """``M_k`` (upsampled) against LIME through :func:`xai.compare.agreement.compute_agreement`."""
    result = compute_agreement(
        lime.segments, lime.weights, image_map, ks=(k,), null_draws=LIME_NULL_DRAWS, null_seed=seed
    )
    if result.excluded:
        return _excluded(concept, LIME_METHOD, f"concept map {result.excluded}")
    return MapAgreement(
        concept=concept,
        method=LIME_METHOD,
        rho=float(np.nanmean(result.rho)) if np.isfinite(result.rho).any() else math.nan,
        iou=float(np.mean(result.iou[:, 0])),
        chance_iou=float(np.mean(result.chance_iou[:, 0])),
        area=float(np.mean(result.lime_area[:, 0])),
        null_p=float(result.null_p[0]),
    )


def cam_agreement(
    concept: str,
    image_map: np.ndarray,
    method: str,
    cam: np.ndarray,
    *,
    top_fraction: float = TOP_FRACTION,
    seed: int = 0,
) -> MapAgreement:
    """``M_k`` (upsampled) against one CAM map of the same (H, W) (see the module docstring)."""
    cam = np.asarray(cam, np.float64)
    if cam.shape != image_map.shape:
        raise ValueError(f"{method} map has shape {cam.shape}; the concept map {image_map.shape}")
    for name, values in (("concept map", image_map), (f"{method} map", cam)):
        reason = degenerate_reason(values)
        if reason:
            return _excluded(concept, method, f"{name} {reason}")
    area = max(1, fraction_area(top_fraction, cam.size))
    cam_mask = random_tie_ranks(cam, seed) < area
    iou, _ = MapOrder(image_map).expected_overlap(area, cam_mask)
    rho = float(stats.spearmanr(np.ravel(image_map), np.ravel(cam)).statistic)
    return MapAgreement(concept, method, rho, iou, chance_iou(area, area, cam.size), float(area), math.nan)


def map_agreements(
    layer_maps: Sequence[np.ndarray],
    concepts: Sequence[str],
    size: tuple[int, int],
    *,
    cam_maps: Mapping[str, np.ndarray] | None = None,
    lime: LimeWeights | None = None,
    top_fraction: float = TOP_FRACTION,
    lime_k: int = LIME_K,
    seed: int = 0,
) -> tuple[MapAgreement, ...]:
    """Every concept map (layer resolution, upsampled to ``size``) against LIME and every CAM given, concept by
    concept, LIME first, CAMs in the mapping's order."""
    results: list[MapAgreement] = []
    for concept, layer_map in zip(concepts, layer_maps, strict=True):
        image_map = upsample(layer_map, size).astype(np.float64)
        if lime is not None:
            results.append(lime_agreement(concept, image_map, lime, k=lime_k, seed=seed))
        for method, cam in (cam_maps or {}).items():
            results.append(cam_agreement(concept, image_map, method, cam, top_fraction=top_fraction, seed=seed))
    return tuple(results)
