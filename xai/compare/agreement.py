"""Agreement of LIME's superpixel mask and a CAM: IoU, Dice, chance baselines and pooled rank correlation.

Protocol (``spec/explanations.md`` section 3.1):

* LIME's mask for top-k is the union of the ``k`` superpixels with the largest **positive** weights
  (fewer when fewer are positive). Equal weights are ordered by segment id, so the mask is deterministic.
* A CAM is binarised (a) **area-matched**: its ``|LIME mask|`` highest pixels, the fair comparison, since
  IoU is biased by unequal areas; and (b) at a sweep of top-p% areas (5..50%) against the same LIME mask.
  Pixels tied at the boundary are filled uniformly at random and IoU/Dice are the exact expectation over that
  choice (``nulls.MapOrder``; a row-major order would fill a small CAM's zero region from the top rows).
  ``top_area_mask`` (row-major ties) is kept as the exact-area primitive. Maps that are all zero or constant are
  excluded with the reason (``nulls.degenerate_reason``).
* Every LIME seed computed is scored (``segment_weights`` ``(n_seeds, S)``); tables report the mean over seeds
  and its spread (SD with ddof = 1). The superpixel null (``nulls.SuperpixelNull.draw_joint``: one relabelling of
  the superpixels per draw, shared by every seed's set) gives a per-image permutation p.
* IoU = |A∩B| / |A∪B| and Dice = 2|A∩B| / (|A| + |B|); both are NaN when both masks are empty.
* Scattered-pixel chance (kept for reference; too easy a null for contiguous, centre-biased maps, see
  ``nulls``): for independent uniformly random masks with |A| = a and |B| = b out of n pixels, the overlap X is
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

from xai.compare._parts import frozen_array
from xai.compare.nulls import NULL_DRAWS, MapOrder, SuperpixelNull, degenerate_reason, permutation_p

DEFAULT_KS: tuple[int, ...] = (5, 10)
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 11))
"""Top-p fractions 0.05, 0.10, ..., 0.50 of the image for the threshold sweep."""


def lime_topk_superpixels(segment_weights: np.ndarray, k: int) -> list[int]:
    """The ids of the ``k`` superpixels with the largest positive weights (ties: lower id; fewer when fewer are
    positive)."""
    weights = np.asarray(segment_weights, dtype=np.float64)
    order = np.argsort(-weights, kind="stable")
    return [int(s) for s in order[:k] if weights[s] > 0]


def lime_topk_mask(segments: np.ndarray, segment_weights: np.ndarray, k: int) -> np.ndarray:
    """Boolean (H, W) union of the ``k`` superpixels with the largest positive weights (ties: lower id)."""
    weights = np.asarray(segment_weights, dtype=np.float64)
    _check_segments(segments, weights)
    return np.isin(segments, lime_topk_superpixels(weights, k))


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
    log_probability = _log_choose(a, overlap) + _log_choose(n - a, b - overlap) - _log_choose(n, np.asarray(b))
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


def pooled_spearman(saliency: np.ndarray, segments: np.ndarray, segment_weights: np.ndarray) -> tuple[float, float]:
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
    """Agreement of one map (a CAM or the centre prior) with LIME on one image, for every LIME seed scored.

    Arrays are indexed ``[seed, k]`` (``lime_area``, ``iou``, ``dice``, ``chance_*``; seeds in ``seeds``),
    ``[k]`` (the superpixel null of the mean-over-seeds IoU: ``null_mean``, ``null_p``, ``null_percentile``),
    ``[k, threshold]`` (``sweep_*``, mean over seeds) or ``[seed]`` (``rho``, ``rho_p``: superpixel-pooled
    Spearman correlation). IoU/Dice are exact expectations over random tie-breaking (``nulls.MapOrder``).
    ``excluded`` names why the map was not scored (then every number is NaN), else it is ``""``.
    """

    image_id: str
    method: str
    ks: tuple[int, ...]
    thresholds: tuple[float, ...]
    seeds: tuple[int, ...]
    n_pixels: int
    n_segments: int
    excluded: str
    lime_area: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    chance_iou: np.ndarray
    chance_dice: np.ndarray
    null_mean: np.ndarray
    null_p: np.ndarray
    null_percentile: np.ndarray
    sweep_iou: np.ndarray
    sweep_dice: np.ndarray
    sweep_chance_iou: np.ndarray
    rho: np.ndarray
    rho_p: np.ndarray

    _ARRAYS = (
        "lime_area",
        "iou",
        "dice",
        "chance_iou",
        "chance_dice",
        "null_mean",
        "null_p",
        "null_percentile",
        "sweep_iou",
        "sweep_dice",
        "sweep_chance_iou",
        "rho",
        "rho_p",
    )

    def __post_init__(self) -> None:
        for name in self._ARRAYS[1:]:  # every array but the integer lime_area
            object.__setattr__(self, name, frozen_array(getattr(self, name), np.float64))
        object.__setattr__(self, "lime_area", frozen_array(self.lime_area, np.int64))
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))


def compute_agreement(
    segments: np.ndarray,
    segment_weights: np.ndarray,
    cam: np.ndarray,
    *,
    image_id: str = "",
    method: str = "",
    ks: Sequence[int] = DEFAULT_KS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    seeds: Sequence[int] | None = None,
    null_draws: int = NULL_DRAWS,
    null_seed: int = 0,
) -> Agreement:
    """Agreement of one map (H, W) with LIME's explanation(s) on the same segmentation.

    ``segment_weights`` is ``(S,)`` for one LIME run or ``(n_seeds, S)`` for every seed scored (``seeds``
    names them; default ``0..n_seeds-1``). The superpixel null uses ``null_draws`` draws seeded by
    ``null_seed``.
    """
    weights = np.atleast_2d(np.asarray(segment_weights, dtype=np.float64))
    for row in weights:
        _check_segments(segments, row)
    seeds = tuple(range(len(weights))) if seeds is None else tuple(seeds)
    if len(seeds) != len(weights):
        raise ValueError(f"{len(seeds)} seeds named for {len(weights)} weight vectors")
    cam = np.asarray(cam, dtype=np.float64)
    if cam.shape != segments.shape:
        raise ValueError(f"map {method!r} has shape {cam.shape}, segments have {segments.shape}")
    n, n_seeds, n_ks = cam.size, len(seeds), len(ks)
    masks = [[lime_topk_mask(segments, row, k) for k in ks] for row in weights]
    lime_area = np.array([[int(np.count_nonzero(mask)) for mask in row] for row in masks]).reshape(n_seeds, n_ks)
    nan_sk, nan_kt = np.full((n_seeds, n_ks), np.nan), np.full((n_ks, len(thresholds)), np.nan)
    fields: dict[str, Any] = {
        "iou": nan_sk,
        "dice": nan_sk,
        "null_mean": np.full(n_ks, np.nan),
        "null_p": np.full(n_ks, np.nan),
        "null_percentile": np.full(n_ks, np.nan),
        "sweep_iou": nan_kt,
        "sweep_dice": nan_kt,
        "rho": np.full(n_seeds, np.nan),
        "rho_p": np.full(n_seeds, np.nan),
    }
    excluded = degenerate_reason(cam)
    if not excluded:
        order = MapOrder(cam)
        pairs = np.array(
            [
                [order.expected_overlap(int(area), mask) for area, mask in zip(areas, row, strict=True)]
                for areas, row in zip(lime_area, masks, strict=True)
            ]
        ).reshape(n_seeds, n_ks, 2)
        fields["iou"], fields["dice"] = pairs[..., 0], pairs[..., 1]
        sweep = np.array(
            [[[order.expected_overlap(fraction_area(t, n), mask) for t in thresholds] for mask in row] for row in masks]
        ).reshape(n_seeds, n_ks, len(thresholds), 2)
        fields["sweep_iou"], fields["sweep_dice"] = sweep[..., 0].mean(axis=0), sweep[..., 1].mean(axis=0)
        null = SuperpixelNull(segments, cam, seed=null_seed)
        rng = np.random.default_rng(null_seed)
        for column, k in enumerate(ks):
            # one random relabelling of the superpixels per draw, applied to every seed's set (nulls module)
            sets = [np.asarray(lime_topk_superpixels(row, k), dtype=np.int64) for row in weights]
            draws = np.mean(null.draw_joint(sets, null_draws, rng), axis=1)
            observed = float(np.mean(fields["iou"][:, column]))
            fields["null_mean"][column] = float(np.mean(draws))
            fields["null_p"][column], fields["null_percentile"][column] = permutation_p(observed, draws)
        correlations = [pooled_spearman(cam, segments, row) for row in weights]
        fields["rho"] = np.array([rho for rho, _ in correlations])
        fields["rho_p"] = np.array([p for _, p in correlations])
    chance_i = np.vectorize(lambda a: chance_iou(int(a), int(a), n), otypes=[float])(lime_area)
    chance_d = np.vectorize(lambda a: chance_dice(int(a), int(a), n), otypes=[float])(lime_area)
    sweep_chance = np.array(
        [
            [
                np.mean([chance_iou(int(lime_area[s, row]), fraction_area(t, n), n) for s in range(n_seeds)])
                for t in thresholds
            ]
            for row in range(n_ks)
        ]
    )
    return Agreement(
        image_id=image_id,
        method=method,
        ks=tuple(ks),
        thresholds=tuple(thresholds),
        seeds=seeds,
        n_pixels=n,
        n_segments=int(weights.shape[1]),
        excluded=excluded,
        lime_area=lime_area,
        chance_iou=chance_i,
        chance_dice=chance_d,
        sweep_chance_iou=sweep_chance.reshape(n_ks, len(thresholds)),
        **fields,
    )


def agreement_table(agreements: Sequence[Agreement]) -> pd.DataFrame:
    """One row per image x method x k (input order); IoU/Dice/ρ are means over the LIME seeds scored.

    ``iou_seed_std``/``iou_seed_min``/``iou_seed_max`` give the spread over seeds; ``superpixel_*`` is the
    superpixel null (mean, one-sided p, percentile); ``cross_image_iou`` and ``location_iou`` (the location
    baseline) are filled in by the summary from ``per_image.cross_image_table``.
    ``rho_p_median`` is the median over seeds of each seed's Spearman p-value: a summary of the per-seed tests,
    not a combined test (p-values of correlated runs cannot be averaged into one).
    """
    rows = []
    for item in agreements:
        for index, k in enumerate(item.ks):
            ious = item.iou[:, index]
            rows.append(
                {
                    "image": item.image_id,
                    "method": item.method,
                    "k": k,
                    "n_seeds": len(item.seeds),
                    "lime_area_fraction": float(np.mean(item.lime_area[:, index])) / item.n_pixels,
                    "iou": _nanmean(ious),
                    "iou_seed_std": float(np.std(ious, ddof=1)) if len(ious) > 1 else math.nan,
                    "iou_seed_min": _nanmin(ious),
                    "iou_seed_max": _nanmax(ious),
                    "dice": _nanmean(item.dice[:, index]),
                    "chance_iou": float(np.mean(item.chance_iou[:, index])),
                    "superpixel_iou": item.null_mean[index],
                    "superpixel_p": item.null_p[index],
                    "superpixel_percentile": item.null_percentile[index],
                    "cross_image_iou": math.nan,
                    "location_iou": math.nan,
                    "rho": _nanmean(item.rho),
                    "rho_p_median": _nanmedian(item.rho_p),
                    "n_segments": item.n_segments,
                    "excluded": item.excluded,
                }
            )
    return pd.DataFrame(rows, columns=_AGREEMENT_COLUMNS)


_AGREEMENT_COLUMNS = [
    "image", "method", "k", "n_seeds", "lime_area_fraction", "iou", "iou_seed_std", "iou_seed_min",
    "iou_seed_max", "dice", "chance_iou", "superpixel_iou", "superpixel_p", "superpixel_percentile",
    "cross_image_iou", "location_iou", "rho", "rho_p_median", "n_segments", "excluded",
]  # fmt: skip


def _nanmean(values: np.ndarray) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else math.nan


def _nanmedian(values: np.ndarray) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else math.nan


def _nanmin(values: np.ndarray) -> float:
    finite = np.asarray(values, dtype=np.float64)
    return float(np.nanmin(finite)) if np.isfinite(finite).any() else math.nan


def _nanmax(values: np.ndarray) -> float:
    finite = np.asarray(values, dtype=np.float64)
    return float(np.nanmax(finite)) if np.isfinite(finite).any() else math.nan


def sweep_table(agreements: Sequence[Agreement]) -> pd.DataFrame:
    """One row per image x method x k x threshold: IoU and Dice of the map's top-p% mask, and chance IoU."""
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


def sweep_by_method(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of IoU, and mean chance IoU, per method x k x threshold of a ``sweep_table``."""
    grouped = table.groupby(["method", "k", "threshold"], sort=False)
    frame = grouped.agg(
        n_images=("iou", "count"),
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
