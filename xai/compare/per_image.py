"""Per-image comparison: compare LIME's explanation with every CAM map of one image (pure function -> artifact)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xai.compare.agreement import DEFAULT_KS, DEFAULT_THRESHOLDS, Agreement, compute_agreement, lime_topk_mask
from xai.compare.complexity import Complexity, image_complexity
from xai.compare.faithfulness import lime_pixel_map
from xai.compare.nulls import (
    CENTRE_METHOD,
    NULL_DRAWS,
    MapOrder,
    centre_prior_map,
    cross_image_iou,
    degenerate_reason,
    location_maps,
)

LIME_METHOD = "lime"


@dataclass(frozen=True, eq=False)
class ImageComparison:
    """Everything the comparison computes for one image without the model: one ``Agreement`` per CAM method
    (in the order of ``cam_maps``), then the centre prior's (``"centre"``), and the image's ``Complexity``."""

    image_id: str
    agreements: tuple[Agreement, ...]
    complexity: Complexity

    def __post_init__(self) -> None:
        object.__setattr__(self, "agreements", tuple(self.agreements))

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(item.method for item in self.agreements)

    def agreement(self, method: str) -> Agreement:
        for item in self.agreements:
            if item.method == method:
                return item
        raise KeyError(f"no agreement for method {method!r}; have {self.methods}")


def compare_image(
    image: np.ndarray,
    segments: np.ndarray,
    segment_weights: np.ndarray,
    cam_maps: Mapping[str, np.ndarray],
    *,
    image_id: str = "",
    ks: Sequence[int] = DEFAULT_KS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    object_threshold: float = 0.5,
    seeds: Sequence[int] | None = None,
    null_draws: int = NULL_DRAWS,
    null_seed: int = 0,
    include_centre: bool = True,
) -> ImageComparison:
    """Agreement of each CAM (and the centre prior) with LIME on one image, and the image's complexity.

    Args:
        image: uint8 ``(H, W, 3)``, the image both explanations were computed on.
        segments: LIME's superpixel labels ``(H, W)``, integers in ``0..S-1``.
        segment_weights: ``(S,)`` LIME weight of each superpixel for the explained class (0 if not explained),
            or ``(n_seeds, S)`` for every LIME seed run on the same segmentation (``seeds`` names them).
        cam_maps: method -> ``(H, W)`` map in [0, 1].
        ks: LIME mask sizes (top-k positive superpixels).
        thresholds: top-p fractions for the CAM binarisation sweep.
        object_threshold: CAM level above which a pixel counts as object in the complexity measure.
        null_draws, null_seed: draws and seed of the superpixel null (``nulls.SuperpixelNull``).
        include_centre: also score the centre prior (``nulls.centre_prior_map``) as method ``"centre"``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != np.shape(segments):
        raise ValueError(f"image {image.shape} must be (H, W, 3) matching segments {np.shape(segments)}")
    segments = np.asarray(segments)
    weights = np.atleast_2d(np.asarray(segment_weights, dtype=np.float64))
    if CENTRE_METHOD in cam_maps:
        raise ValueError(f"method name {CENTRE_METHOD!r} is reserved for the centre prior")
    scored = {**cam_maps, **({CENTRE_METHOD: centre_prior_map(segments.shape)} if include_centre else {})}
    agreements = tuple(
        compute_agreement(
            segments,
            weights,
            cam,
            image_id=image_id,
            method=method,
            ks=ks,
            thresholds=thresholds,
            seeds=seeds,
            null_draws=null_draws,
            null_seed=null_seed + index,
        )
        for index, (method, cam) in enumerate(scored.items())
    )
    complexity = image_complexity(
        image, weights.shape[1], cam_maps, image_id=image_id, object_threshold=object_threshold
    )
    return ImageComparison(image_id=image_id, agreements=agreements, complexity=complexity)


def explanation_maps(
    segments: np.ndarray, segment_weights: np.ndarray, cam_maps: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Maps to score for faithfulness: LIME's superpixel-weight map first (as ``"lime"``), then the CAMs."""
    if LIME_METHOD in cam_maps:
        raise ValueError(f"method name {LIME_METHOD!r} is reserved for LIME")
    return {LIME_METHOD: lime_pixel_map(segments, segment_weights), **cam_maps}


CrossImageInput = tuple[str, np.ndarray, np.ndarray, Mapping[str, np.ndarray]]
"""``(image_id, segments, segment_weights (S,) or (n_seeds, S), cam_maps)`` of one image."""


def cross_image_table(
    inputs: Sequence[CrossImageInput], ks: Sequence[int] = DEFAULT_KS, *, max_others: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """The cross-image null and the location baseline for every image x CAM method x k.

    For image i and method m, with this image's LIME top-k mask(s) (one per seed):

    * ``cross_image_iou`` (``nulls.cross_image_iou``): the mean expected IoU of the mask(s) with m's CAMs of the
      other images, each binarised to the mask's area. ``max_others`` caps how many other images are used (the next
      ones in a permutation of the images seeded by ``seed``; None: all), so a sample of hundreds of images costs
      ``n · max_others`` rather than ``n²`` comparisons.
    * ``location_iou``: the mean over the mask(s) of the expected IoU with the leave-one-image-out mean of m's maps
      over **all** the other images (``nulls.location_maps``: where m usually points), area-matched.

    Degenerate maps are left out of both; NaN with a single image or when the mean map is flat.
    """
    scored = [{method: cam for method, cam in cams.items() if not degenerate_reason(cam)} for _, _, _, cams in inputs]
    orders = [{method: MapOrder(cam) for method, cam in found.items()} for found in scored]
    methods = list(dict.fromkeys(method for _, _, _, cams in inputs for method in cams))
    location_orders: dict[str, list[MapOrder | None]] = {}
    for method in methods:
        means = location_maps([found.get(method) for found in scored])
        location_orders[method] = [
            MapOrder(mean) if mean is not None and not degenerate_reason(mean) else None for mean in means
        ]
    count = len(inputs)
    ring = np.random.default_rng(seed).permutation(count) if max_others is not None else np.arange(count)
    position = {int(index): place for place, index in enumerate(ring)}
    rows = []
    for index, (image_id, segments, weights, cams) in enumerate(inputs):
        others = [j for j in range(count) if j != index]
        if max_others is not None and max_others < count - 1:
            others = [int(ring[(position[index] + step) % count]) for step in range(1, max_others + 1)]
        rows_of_weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        for k in ks:
            masks = [lime_topk_mask(np.asarray(segments), row, k) for row in rows_of_weights]
            for method in cams:
                found = [orders[j][method] for j in others if method in orders[j]]
                location = location_orders[method][index] if method in scored[index] else None
                rows.append(
                    {
                        "image": image_id,
                        "method": method,
                        "k": int(k),
                        "cross_image_iou": cross_image_iou(masks, found) if found else math.nan,
                        "location_iou": cross_image_iou(masks, [location]) if location is not None else math.nan,
                    }
                )
    return pd.DataFrame(rows, columns=["image", "method", "k", "cross_image_iou", "location_iou"])
