"""Objective image complexity, its rank correlation with agreement, and the generated answer to the question.

Measures (all computed from the image or its explanations, none chosen by eye):

* ``n_segments``: LIME's superpixel count (quickshift/SLIC finds more segments in cluttered images).
* ``edge_density``: fraction of Canny edge pixels (``skimage.feature.canny``, σ = 2, default hysteresis
  thresholds) of the grey-level image.
* ``colour_entropy``: Shannon entropy in bits of the joint RGB histogram with 8 bins per channel (512 bins,
  so 0..9 bits).
* ``object_area``: mean over the CAM methods of the fraction of pixels whose map is ≥ 0.5. It comes from the
  same maps whose agreement is measured, so its correlation with IoU is not independent evidence; it is
  reported alongside, not used as the primary measure.

Correlation: Spearman ρ over images. The p-value is exact (all n! pairings enumerated, two-sided) for n ≤ 8,
and the usual t approximation (``scipy.stats.spearmanr``) above that. The 95% interval of ρ is Fisher's z
interval with the Bonett & Wright (2000) standard error for Spearman's ρ, ``sqrt((1 + ρ²/2) / (n − 3))``
(needs n ≥ 4). The answer sentence states ρ, its interval, p and n, and no threshold on n.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from skimage.color import rgb2gray
from skimage.feature import canny

COMPLEXITY_MEASURES: tuple[str, ...] = ("n_segments", "edge_density", "colour_entropy", "object_area")
PRIMARY_MEASURE = "edge_density"
EXACT_P_MAX_N = 8
ALPHA = 0.05


@dataclass(frozen=True)
class Complexity:
    """Complexity measures of one image (see the module docstring for their definitions)."""

    image_id: str
    n_segments: int
    edge_density: float
    colour_entropy: float
    object_area: float


def edge_density(image: np.ndarray, sigma: float = 2.0) -> float:
    """Fraction of pixels that Canny marks as edges on the grey-level image."""
    grey = rgb2gray(np.asarray(image))
    return float(np.mean(canny(grey, sigma=sigma)))


def colour_entropy(image: np.ndarray, bins_per_channel: int = 8) -> float:
    """Shannon entropy (bits) of the joint RGB histogram with ``bins_per_channel`` bins per channel."""
    pixels = np.asarray(image, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
    quantised = pixels * bins_per_channel // 256
    codes = (quantised[:, 0] * bins_per_channel + quantised[:, 1]) * bins_per_channel + quantised[:, 2]
    counts = np.bincount(codes, minlength=bins_per_channel**3)
    probability = counts[counts > 0] / codes.size
    return float(-np.sum(probability * np.log2(probability)) + 0.0)


def object_area(cam_maps: Mapping[str, np.ndarray], threshold: float = 0.5) -> float:
    """Mean over methods of the fraction of pixels with map value ≥ ``threshold``; NaN without maps."""
    if not cam_maps:
        return math.nan
    return float(np.mean([np.mean(np.asarray(m) >= threshold) for m in cam_maps.values()]))


def image_complexity(
    image: np.ndarray,
    n_segments: int,
    cam_maps: Mapping[str, np.ndarray],
    *,
    image_id: str = "",
    object_threshold: float = 0.5,
) -> Complexity:
    """All complexity measures of one image."""
    return Complexity(
        image_id=image_id,
        n_segments=int(n_segments),
        edge_density=edge_density(image),
        colour_entropy=colour_entropy(image),
        object_area=object_area(cam_maps, object_threshold),
    )


def complexity_table(items: Sequence[Complexity]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in items], columns=["image_id", *COMPLEXITY_MEASURES]).rename(
        columns={"image_id": "image"}
    )


def spearman_with_p(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, int, str]:
    """Spearman ρ, two-sided p-value, n (pairs with both values finite) and how p was computed.

    Exact permutation p for n ≤ ``EXACT_P_MAX_N`` (ties handled through average ranks), t approximation above.
    NaN ρ and p when n < 3 or a side is constant.
    """
    x_arr, y_arr = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x_arr) & np.isfinite(y_arr)
    x_arr, y_arr = x_arr[keep], y_arr[keep]
    n = int(x_arr.size)
    if n < 3 or np.ptp(x_arr) == 0 or np.ptp(y_arr) == 0:
        return math.nan, math.nan, n, "undefined"
    rank_x, rank_y = stats.rankdata(x_arr), stats.rankdata(y_arr)
    rho = float(np.corrcoef(rank_x, rank_y)[0, 1])
    if n > EXACT_P_MAX_N:
        return rho, float(stats.spearmanr(x_arr, y_arr).pvalue), n, "t approximation"
    permuted = rank_y[np.array(list(itertools.permutations(range(n))))]
    centred_x = rank_x - rank_x.mean()
    centred = permuted - permuted.mean(axis=1, keepdims=True)
    rhos = centred @ centred_x / (np.linalg.norm(centred, axis=1) * np.linalg.norm(centred_x))
    p_value = float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))
    return rho, p_value, n, "exact permutation"


def spearman_interval(rho: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Fisher-z interval of Spearman's ρ with the Bonett & Wright (2000) standard error; NaN for n < 4."""
    if n < 4 or not math.isfinite(rho):
        return math.nan, math.nan
    if abs(rho) >= 1:
        return rho, rho
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
    return math.tanh(math.atanh(rho) - half), math.tanh(math.atanh(rho) + half)


def complexity_correlations(agreement: pd.DataFrame, complexity: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """Spearman ρ of area-matched IoU (at ``k``) against each complexity measure, per method and pooled.

    ``method == "all"`` uses each image's mean IoU over the CAM methods. ``agreement`` is an
    ``agreement_table``; ``complexity`` a ``complexity_table``.
    """
    at_k = agreement[agreement["k"] == k]
    per_image = {"all": at_k.groupby("image", sort=False)["iou"].mean()}
    for method, group in at_k.groupby("method", sort=False):
        per_image[str(method)] = group.set_index("image")["iou"]
    measures = complexity.set_index("image")
    rows = []
    for method, ious in per_image.items():
        for measure in COMPLEXITY_MEASURES:
            joined = pd.concat([ious.rename("iou"), measures[measure]], axis=1, join="inner")
            rho, p_value, n, how = spearman_with_p(joined["iou"], joined[measure])
            low, high = spearman_interval(rho, n)
            rows.append({"method": method, "k": k, "measure": measure, "rho": rho, "rho_low": low, "rho_high": high,
                         "p_value": p_value, "n": n, "p_method": how})  # fmt: skip
    return pd.DataFrame(
        rows, columns=["method", "k", "measure", "rho", "rho_low", "rho_high", "p_value", "n", "p_method"]
    )


def complexity_answer(
    agreement: pd.DataFrame,
    complexity: pd.DataFrame,
    correlations: pd.DataFrame,
    *,
    k: int,
    primary: str = PRIMARY_MEASURE,
) -> str:
    """The answer to "do simple images agree more than complex ones?", generated only from the numbers.

    Uses the pooled ("all") correlation of mean IoU with the ``primary`` measure; names the simplest and most
    complex image by that measure with their IoU; states ρ with its interval, p and n (no threshold on n); lists the
    other measures' ρ so a reader sees whether they point the same way.
    """
    pooled = correlations[(correlations["method"] == "all") & (correlations["k"] == k)].set_index("measure")
    if primary not in pooled.index:
        return "No complexity correlation was computed."
    rho, p_value, n = pooled.at[primary, "rho"], pooled.at[primary, "p_value"], int(pooled.at[primary, "n"])
    label = primary.replace("_", " ")
    at_k = agreement[agreement["k"] == k].groupby("image", sort=False)["iou"].mean()
    measures = complexity.set_index("image")[primary].reindex(at_k.index)
    if n < 3 or not math.isfinite(rho):
        return (
            f"With {n} image(s) with a defined {label} and IoU, the question cannot be answered: a rank "
            "correlation needs at least 3 images with differing values."
        )
    simplest, hardest = measures.idxmin(), measures.idxmax()
    example = (
        f"The simplest image by {label}, {simplest} ({measures[simplest]:.3g}), has a mean area-matched IoU "
        f"of {at_k[simplest]:.2f}; the most complex, {hardest} ({measures[hardest]:.3g}), has "
        f"{at_k[hardest]:.2f}."
    )
    direction = "less" if rho < 0 else "more"
    low, high = (
        (pooled.at[primary, "rho_low"], pooled.at[primary, "rho_high"])
        if "rho_low" in pooled
        else (spearman_interval(rho, n))
    )
    interval = (
        f"95% CI {low:.2f} to {high:.2f}"
        if math.isfinite(low) and math.isfinite(high)
        else "no interval: fewer than 4 images"
    )
    stat = f"Spearman ρ = {rho:.2f} ({interval}), p = {p_value:.2g}, n = {n} images"
    if p_value < ALPHA:
        verdict = (
            f"In this sample, more complex images (by {label}) agree {direction} between LIME and the CAMs "
            f"({stat}; the test of no rank correlation rejects at α = {ALPHA})."
        )
    else:
        verdict = (
            f"The data do not show a relation between complexity ({label}) and agreement ({stat}; the test "
            f"of no rank correlation does not reject at α = {ALPHA})."
        )
    others = [
        f"{m.replace('_', ' ')} ρ = {pooled.at[m, 'rho']:.2f} (p = {pooled.at[m, 'p_value']:.2g})"
        for m in COMPLEXITY_MEASURES
        if m != primary and m in pooled.index and math.isfinite(pooled.at[m, "rho"])
    ]
    other_text = f" Other measures: {'; '.join(others)}." if others else ""
    return f"{verdict} {example}{other_text}"
