"""Agreement of LIME's superpixel mask and a CAM: IoU, Dice, chance baselines and pooled rank correlation.

Protocol (``spec/explanations.md`` section 3.1):

* LIME's mask for top-k is the union of the ``k`` superpixels with the largest **positive** weights
  (fewer when fewer are positive). Equal weights are ordered by segment id, so the mask is deterministic.
* A CAM is binarised (a) **area-matched**: its ``|LIME mask|`` highest pixels, the fair comparison, since
  IoU is biased by unequal areas; and (b) at a sweep of top-p% areas (5..50%) against the same LIME mask.
  "Top ``a`` pixels" is exact: pixels are ordered by decreasing value and equal values by increasing flat
  (row-major) index, so the mask has exactly ``a`` pixels whatever the ties (a plain threshold would not).
* IoU = |A∩B| / |A∪B| and Dice = 2|A∩B| / (|A| + |B|); both are NaN when both masks are empty.
* Chance: for independent uniformly random masks with |A| = a and |B| = b out of n pixels, the overlap X is
  hypergeometric, P(X = x) = C(a, x) C(n-a, b-x) / C(n, b), so E|A∩B| = ab/n, E[Dice] = 2ab / (n(a+b))
  exactly, and E[IoU] = Σ_x P(X = x) · x / (a + b - x) is summed over the whole support (no approximation;
  log-pmf through gammaln, agreeing with ``scipy.stats.hypergeom`` to ~1e-11).
* Rank agreement: Spearman ρ between the mean CAM value of each superpixel and its LIME weight (all
  superpixels, negative weights included), which compares the maps at LIME's granularity and avoids
  resolution artefacts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from xai.compare._parts import Parts, from_json_float, frozen_array, json_float

DEFAULT_KS: tuple[int, ...] = (5, 10)
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 11))
"""Top-p fractions 0.05, 0.10, ..., 0.50 of the image for the threshold sweep."""


def lime_topk_mask(segments: np.ndarray, segment_weights: np.ndarray, k: int) -> np.ndarray:
    """Boolean (H, W) union of the ``k`` superpixels with the largest positive weights (ties: lower id)."""
    weights = np.asarray(segment_weights, dtype=np.float64)
    _check_segments(segments, weights)
    order = np.argsort(-weights, kind="stable")
    chosen = [int(s) for s in order[:k] if weights[s] > 0]
    return np.isin(segments, chosen)


def top_area_mask(saliency: np.ndarray, area: int) -> np.ndarray:
    """Boolean mask of exactly ``area`` pixels: the highest values, ties broken by increasing flat index."""
    values = np.asarray(saliency, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("saliency map has non-finite values")
    if not 0 <= area <= values.size:
        raise ValueError(f"area {area} outside 0..{values.size}")
    order = np.argsort(-values.ravel(), kind="stable")
    mask = np.zeros(values.size, dtype=bool)
    mask[order[:area]] = True
    return mask.reshape(values.shape)


def fraction_area(fraction: float, n_pixels: int) -> int:
    """Pixels in a top-``fraction`` mask: round half up, so the area is well defined for every fraction."""
    return math.floor(fraction * n_pixels + 0.5)


def iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """|A∩B| / |A∪B|; NaN when both masks are empty."""
    a, b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    union = int(np.count_nonzero(a | b))
    return math.nan if union == 0 else int(np.count_nonzero(a & b)) / union


def dice(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """2|A∩B| / (|A| + |B|); NaN when both masks are empty."""
    a, b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return math.nan if total == 0 else 2 * int(np.count_nonzero(a & b)) / total


@lru_cache(maxsize=4096)
def chance_iou(area_a: int, area_b: int, n_pixels: int) -> float:
    """Exact E[IoU] of independent uniformly random masks of sizes ``area_a``, ``area_b`` in ``n_pixels``.

    The overlap is hypergeometric; the expectation of x / (a + b - x) is summed over its whole support.
    NaN when both areas are zero.
    """
    a, b, n = int(area_a), int(area_b), int(n_pixels)
    if not (0 <= a <= n and 0 <= b <= n):
        raise ValueError(f"areas {a}, {b} must lie in 0..{n}")
    if a + b == 0:
        return math.nan
    overlap = np.arange(max(0, a + b - n), min(a, b) + 1)
    # log C(a, x) + log C(n-a, b-x) - log C(n, b) via gammaln (scipy hypergeom.pmf is ~1000x slower here).
    log_probability = (
        _log_choose(a, overlap) + _log_choose(n - a, b - overlap) - _log_choose(n, np.asarray(b))
    )
    probability = np.exp(log_probability)
    return float(np.sum(probability * overlap / (a + b - overlap)))


def _log_choose(total: int, chosen: np.ndarray) -> np.ndarray:
    return special.gammaln(total + 1) - special.gammaln(chosen + 1) - special.gammaln(total - chosen + 1)


def chance_dice(area_a: int, area_b: int, n_pixels: int) -> float:
    """Exact E[Dice] = 2ab / (n(a+b)) for independent uniformly random masks; NaN when both areas are zero."""
    a, b, n = int(area_a), int(area_b), int(n_pixels)
    return math.nan if a + b == 0 else 2 * a * b / (n * (a + b))


def segment_means(saliency: np.ndarray, segments: np.ndarray, n_segments: int) -> np.ndarray:
    """Mean of ``saliency`` inside each superpixel (NaN for a label with no pixels)."""
    labels = np.asarray(segments).ravel()
    sums = np.bincount(labels, weights=np.asarray(saliency, dtype=np.float64).ravel(), minlength=n_segments)
    counts = np.bincount(labels, minlength=n_segments)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def pooled_spearman(
    saliency: np.ndarray, segments: np.ndarray, segment_weights: np.ndarray
) -> tuple[float, float]:
    """Spearman ρ and its p-value between the mean saliency per superpixel and the LIME weight per superpixel.

    Labels with no pixels are skipped; NaN when fewer than 3 superpixels remain or either side is constant.
    """
    weights = np.asarray(segment_weights, dtype=np.float64)
    means = segment_means(saliency, segments, weights.size)
    keep = np.isfinite(means)
    x, y = means[keep], weights[keep]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True, eq=False)
class Agreement:
    """Agreement of one CAM with LIME on one image.

    Arrays are indexed ``[k]`` (over ``ks``) or ``[k, threshold]`` (over ``ks`` x ``thresholds``). ``iou``,
    ``dice`` and their ``chance_*`` are area-matched; ``sweep_*`` use the CAM's top-p% mask against the same
    LIME top-k mask. ``rho``/``rho_p`` is the superpixel-pooled Spearman correlation (independent of k).
    """

    image_id: str
    method: str
    ks: tuple[int, ...]
    thresholds: tuple[float, ...]
    n_pixels: int
    n_segments: int
    lime_area: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    chance_iou: np.ndarray
    chance_dice: np.ndarray
    sweep_iou: np.ndarray
    sweep_dice: np.ndarray
    sweep_chance_iou: np.ndarray
    rho: float
    rho_p: float

    def __post_init__(self) -> None:
        for name in self._ARRAYS[1:]:  # every array but the integer lime_area
            object.__setattr__(self, name, frozen_array(getattr(self, name), np.float64))
        object.__setattr__(self, "lime_area", frozen_array(self.lime_area, np.int64))
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))

    _ARRAYS = (
        "lime_area",
        "iou",
        "dice",
        "chance_iou",
        "chance_dice",
        "sweep_iou",
        "sweep_dice",
        "sweep_chance_iou",
    )

    def to_parts(self) -> Parts:
        arrays = {name: np.array(getattr(self, name)) for name in self._ARRAYS}
        meta: dict[str, Any] = {
            "image_id": self.image_id,
            "method": self.method,
            "ks": list(self.ks),
            "thresholds": list(self.thresholds),
            "n_pixels": self.n_pixels,
            "n_segments": self.n_segments,
            "rho": json_float(self.rho),
            "rho_p": json_float(self.rho_p),
        }
        return arrays, meta

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Agreement:
        return cls(
            image_id=meta["image_id"],
            method=meta["method"],
            ks=tuple(meta["ks"]),
            thresholds=tuple(meta["thresholds"]),
            n_pixels=int(meta["n_pixels"]),
            n_segments=int(meta["n_segments"]),
            rho=from_json_float(meta["rho"]),
            rho_p=from_json_float(meta["rho_p"]),
            **{name: arrays[name] for name in cls._ARRAYS},
        )


def compute_agreement(
    segments: np.ndarray,
    segment_weights: np.ndarray,
    cam: np.ndarray,
    *,
    image_id: str = "",
    method: str = "",
    ks: Sequence[int] = DEFAULT_KS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> Agreement:
    """Agreement of one CAM map (H, W) with the LIME explanation (``segments``, ``segment_weights``)."""
    weights = np.asarray(segment_weights, dtype=np.float64)
    _check_segments(segments, weights)
    cam = np.asarray(cam, dtype=np.float64)
    if cam.shape != segments.shape:
        raise ValueError(f"CAM {method!r} has shape {cam.shape}, segments have {segments.shape}")
    n = cam.size
    cam_masks = {area: top_area_mask(cam, area) for area in {fraction_area(t, n) for t in thresholds}}
    lime_area, ious, dices, chance_i, chance_d = [], [], [], [], []
    sweep_iou = np.empty((len(ks), len(thresholds)))
    sweep_dice = np.empty_like(sweep_iou)
    sweep_chance = np.empty_like(sweep_iou)
    for row, k in enumerate(ks):
        lime_mask = lime_topk_mask(segments, weights, k)
        area = int(np.count_nonzero(lime_mask))
        matched = top_area_mask(cam, area)
        lime_area.append(area)
        ious.append(iou(lime_mask, matched))
        dices.append(dice(lime_mask, matched))
        chance_i.append(chance_iou(area, area, n))
        chance_d.append(chance_dice(area, area, n))
        for column, threshold in enumerate(thresholds):
            cam_area = fraction_area(threshold, n)
            sweep_iou[row, column] = iou(lime_mask, cam_masks[cam_area])
            sweep_dice[row, column] = dice(lime_mask, cam_masks[cam_area])
            sweep_chance[row, column] = chance_iou(area, cam_area, n)
    rho, rho_p = pooled_spearman(cam, segments, weights)
    return Agreement(
        image_id=image_id,
        method=method,
        ks=tuple(ks),
        thresholds=tuple(thresholds),
        n_pixels=n,
        n_segments=int(weights.size),
        lime_area=np.array(lime_area),
        iou=np.array(ious),
        dice=np.array(dices),
        chance_iou=np.array(chance_i),
        chance_dice=np.array(chance_d),
        sweep_iou=sweep_iou,
        sweep_dice=sweep_dice,
        sweep_chance_iou=sweep_chance,
        rho=rho,
        rho_p=rho_p,
    )


def agreement_table(agreements: Sequence[Agreement]) -> pd.DataFrame:
    """One row per image x method x k (input order): area-matched IoU/Dice, chance, lift over chance, ρ."""
    rows = []
    for item in agreements:
        for index, k in enumerate(item.ks):
            rows.append(
                {
                    "image": item.image_id,
                    "method": item.method,
                    "k": k,
                    "lime_area_fraction": item.lime_area[index] / item.n_pixels,
                    "iou": item.iou[index],
                    "chance_iou": item.chance_iou[index],
                    "iou_lift": item.iou[index] - item.chance_iou[index],
                    "dice": item.dice[index],
                    "chance_dice": item.chance_dice[index],
                    "rho": item.rho,
                    "rho_p": item.rho_p,
                    "n_segments": item.n_segments,
                }
            )
    return pd.DataFrame(rows, columns=_AGREEMENT_COLUMNS)


_AGREEMENT_COLUMNS = [
    "image", "method", "k", "lime_area_fraction", "iou", "chance_iou", "iou_lift", "dice", "chance_dice",
    "rho", "rho_p", "n_segments",
]  # fmt: skip


def sweep_table(agreements: Sequence[Agreement]) -> pd.DataFrame:
    """One row per image x method x k x threshold: IoU and Dice of the CAM's top-p% mask, and chance IoU."""
    rows = []
    for item in agreements:
        for row, k in enumerate(item.ks):
            for column, threshold in enumerate(item.thresholds):
                rows.append(
                    {
                        "image": item.image_id,
                        "method": item.method,
                        "k": k,
                        "threshold": threshold,
                        "iou": item.sweep_iou[row, column],
                        "dice": item.sweep_dice[row, column],
                        "chance_iou": item.sweep_chance_iou[row, column],
                    }
                )
    return pd.DataFrame(rows, columns=["image", "method", "k", "threshold", "iou", "dice", "chance_iou"])


def agreement_by_method(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread per method x k of an ``agreement_table`` (std with ddof=1; NaN for one image).

    ``above_chance`` is the fraction of images whose area-matched IoU exceeds its chance IoU.
    """
    rows = []
    for (method, k), group in table.groupby(["method", "k"], sort=False):
        rows.append(
            {
                "method": method,
                "k": int(k),
                "n_images": len(group),
                "iou_mean": group["iou"].mean(),
                "iou_std": group["iou"].std(ddof=1),
                "iou_median": group["iou"].median(),
                "iou_min": group["iou"].min(),
                "iou_max": group["iou"].max(),
                "chance_iou_mean": group["chance_iou"].mean(),
                "above_chance": float(np.mean(group["iou"] > group["chance_iou"])),
                "dice_mean": group["dice"].mean(),
                "dice_std": group["dice"].std(ddof=1),
                "rho_mean": group["rho"].mean(),
                "rho_std": group["rho"].std(ddof=1),
            }
        )
    return pd.DataFrame(rows, columns=_BY_METHOD_COLUMNS)


_BY_METHOD_COLUMNS = [
    "method", "k", "n_images", "iou_mean", "iou_std", "iou_median", "iou_min", "iou_max", "chance_iou_mean",
    "above_chance", "dice_mean", "dice_std", "rho_mean", "rho_std",
]  # fmt: skip


def sweep_by_method(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of IoU, and mean chance IoU, per method x k x threshold of a ``sweep_table``."""
    grouped = table.groupby(["method", "k", "threshold"], sort=False)
    frame = grouped.agg(
        n_images=("iou", "size"),
        iou_mean=("iou", "mean"),
        iou_std=("iou", "std"),
        chance_iou_mean=("chance_iou", "mean"),
    ).reset_index()
    frame["k"] = frame["k"].astype(np.int64)
    return frame


def _check_segments(segments: np.ndarray, weights: np.ndarray) -> None:
    if segments.ndim != 2 or not np.issubdtype(segments.dtype, np.integer):
        raise ValueError("segments must be an integer (H, W) label array")
    if segments.size and (segments.min() < 0 or segments.max() >= weights.size):
        raise ValueError(f"segment labels must lie in 0..{weights.size - 1}")
