"""Figures of the LIME-vs-CAM comparison: each reads artifacts, writes one PNG and returns its alt text.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), lines also
differ by marker, maps use cividis with a colorbar, every axis is labelled, and titles say what is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries

from xai.compare.agreement import lime_topk_mask
from xai.compare.faithfulness import FaithfulnessResult
from xai.compare.nulls import CENTRE_METHOD, degenerate_reason, random_tie_ranks
from xai.compare.per_image import ImageComparison
from xai.compare.sanity import SanityResult
from xai.compare.summary import ComparisonSummary
from xai.report.figures import save_figure

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
CHANCE_COLOUR = "#666666"
MAP_CMAP = "cividis"
OUTLINE_COLOUR = "#D55E00"
OUTLINE_CMAP = ListedColormap([OUTLINE_COLOUR])


def _style(index: int) -> dict[str, str]:
    return {"color": OKABE_ITO[index % len(OKABE_ITO)], "marker": MARKERS[index % len(MARKERS)]}


def iou_threshold_figure(summary: ComparisonSummary, path: Path, *, k: int | None = None) -> str:
    """Mean IoU (± std over images) of each CAM's top-p% mask with LIME's top-k mask against p, and chance."""
    k = summary.k if k is None else k
    sweep = summary.sweep_by_method[summary.sweep_by_method["k"] == k]
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.add_subplot()
    for index, (method, group) in enumerate(sweep.groupby("method", sort=False)):
        percent = group["threshold"].to_numpy() * 100
        mean, std = group["iou_mean"].to_numpy(), np.nan_to_num(group["iou_std"].to_numpy())
        axes.plot(percent, mean, label=str(method), **_style(index), markersize=4)
        axes.fill_between(percent, mean - std, mean + std, color=_style(index)["color"], alpha=0.12, linewidth=0)
    chance = sweep.groupby("threshold", sort=True)["chance_iou_mean"].mean()
    axes.plot(
        chance.index * 100,
        chance.to_numpy(),
        "--",
        color=CHANCE_COLOUR,
        label="scattered-pixel chance (too easy a null)",
    )
    at_k = summary.agreement[summary.agreement["k"] == k]
    lime_percent = float(at_k["lime_area_fraction"].mean() * 100) if len(at_k) else math.nan
    if math.isfinite(lime_percent):
        axes.axvline(lime_percent, color=CHANCE_COLOUR, linestyle=":", linewidth=1)
        axes.annotate("mean LIME area", (lime_percent, 0.98), xycoords=("data", "axes fraction"), fontsize=8,
                      ha="left", va="top", color=CHANCE_COLOUR)  # fmt: skip
    axes.set_xlabel("CAM binarised at top p% of pixels (p)")
    axes.set_ylabel(f"IoU with LIME top-{k} mask")
    axes.set_ylim(-0.02, 1.02)
    n_images = summary.agreement["image"].nunique()
    axes.set_title(f"IoU of CAM vs LIME top-{k} by CAM threshold (mean ± std, {n_images} images)")
    axes.legend(fontsize=8, frameon=False)
    axes.grid(alpha=0.3)
    save_figure(figure, Path(path))
    return (
        f"Line chart: IoU between LIME's top-{k} superpixel mask and each CAM binarised at its top 5 to 50% "
        f"of pixels, averaged over {n_images} images, with the dashed chance level of random masks."
    )


def image_iou_threshold_figure(comparison: ImageComparison, path: Path, *, k: int) -> str:
    """Per-image version of ``iou_threshold_figure`` from an ``ImageComparison``."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.add_subplot()
    chance = None
    for index, item in enumerate(comparison.agreements):
        row = item.ks.index(k)
        percent = np.asarray(item.thresholds) * 100
        axes.plot(percent, item.sweep_iou[row], label=item.method, **_style(index), markersize=4)
        chance = (percent, item.sweep_chance_iou[row])
    if chance is not None:
        axes.plot(*chance, "--", color=CHANCE_COLOUR, label="chance (random masks)")
    axes.set_xlabel("CAM binarised at top p% of pixels (p)")
    axes.set_ylabel(f"IoU with LIME top-{k} mask")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(f"{comparison.image_id}: IoU of CAM vs LIME top-{k} by CAM threshold")
    axes.legend(fontsize=8, frameon=False)
    axes.grid(alpha=0.3)
    save_figure(figure, Path(path))
    return f"Line chart for {comparison.image_id}: IoU with LIME's top-{k} mask against the CAM threshold."


def complexity_scatter_figure(
    summary: ComparisonSummary, path: Path, *, measure: str | None = None, k: int | None = None
) -> str:
    """Each image's mean area-matched IoU (over CAMs) against a complexity measure; ρ, p, n in the title."""
    k = summary.k if k is None else k
    measure = summary.primary_measure if measure is None else measure
    agreement = summary.agreement
    at_k = agreement[(agreement["k"] == k) & (agreement["method"] != CENTRE_METHOD) & (agreement["excluded"] == "")]
    mean_iou = at_k.groupby("image", sort=False)["iou"].mean()
    values = summary.complexity.set_index("image")[measure].reindex(mean_iou.index)
    correlation = summary.complexity_correlation
    row = correlation[(correlation["method"] == "all") & (correlation["measure"] == measure) & (correlation["k"] == k)]
    figure = Figure(figsize=(6.4, 4.6))
    axes = figure.add_subplot()
    for index, (method, group) in enumerate(at_k.groupby("method", sort=False)):
        x = summary.complexity.set_index("image")[measure].reindex(group["image"])
        style = _style(index + 1)
        axes.scatter(x, group["iou"], s=14, alpha=0.45, color=style["color"], marker=style["marker"],
                     label=str(method))  # fmt: skip
    axes.scatter(values, mean_iou, s=46, color="#000000", marker="o", label="mean over CAMs", zorder=3)
    for image, x, y in zip(mean_iou.index, values, mean_iou, strict=True):
        axes.annotate(str(image), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    label = measure.replace("_", " ")
    if len(row):
        rho, p_value, n = row["rho"].iloc[0], row["p_value"].iloc[0], int(row["n"].iloc[0])
        stat = f"Spearman ρ = {rho:.2f}, p = {p_value:.2g}, n = {n}" if math.isfinite(rho) else f"ρ undefined, n = {n}"
    else:
        stat = "no correlation computed"
    axes.set_title(f"Agreement vs image complexity ({label}): {stat}", fontsize=10)
    axes.set_xlabel(f"Image complexity: {label}")
    axes.set_ylabel(f"Area-matched IoU with LIME top-{k}")
    axes.set_ylim(-0.02, 1.02)
    axes.legend(fontsize=7, frameon=False)
    axes.grid(alpha=0.3)
    save_figure(figure, Path(path))
    return f"Scatter plot of agreement (IoU) against {label} per image; {stat}."


def faithfulness_curves_figure(result: FaithfulnessResult, path: Path) -> str:
    """Deletion and insertion curves of every method on one image, AUC in the legend."""
    return _curves_figure(
        result.fractions, result.methods, result.deletion, result.insertion, path,
        title=f"{result.image_id}: probability of class {result.target} as pixels are deleted / inserted",
    )  # fmt: skip


def mean_faithfulness_curves_figure(results: Sequence[FaithfulnessResult], path: Path) -> str:
    """Deletion and insertion curves averaged over images (interpolated onto the first result's fractions)."""
    if not results:
        raise ValueError("no faithfulness results to plot")
    methods = results[0].methods
    grid = results[0].fractions
    deletion = np.zeros((len(methods), grid.size))
    insertion = np.zeros_like(deletion)
    for result in results:
        for row, method in enumerate(methods):
            index = result.methods.index(method)
            deletion[row] += np.interp(grid, result.fractions, result.deletion[index]) / len(results)
            insertion[row] += np.interp(grid, result.fractions, result.insertion[index]) / len(results)
    return _curves_figure(grid, methods, deletion, insertion, path,
                          title=f"Mean over {len(results)} images: target-class probability")  # fmt: skip


def _curves_figure(
    fractions: np.ndarray,
    methods: Sequence[str],
    deletion: np.ndarray,
    insertion: np.ndarray,
    path: Path,
    *,
    title: str,
) -> str:
    figure = Figure(figsize=(10, 4))
    panels = figure.subplots(1, 2, sharey=True)
    for axes, curves, name, better in ((panels[0], deletion, "Deletion", "lower"),
                                       (panels[1], insertion, "Insertion", "higher")):  # fmt: skip
        for index, method in enumerate(methods):
            area = float(np.trapezoid(curves[index], fractions))
            style = _style(index)
            baseline = method.startswith("random") or method == "centre"
            if baseline:
                style = {"color": CHANCE_COLOUR, "marker": "" if method.startswith("random") else "."}
            axes.plot(fractions * 100, curves[index], label=f"{method} (AUC {area:.3f})", markersize=3,
                      markevery=max(1, len(fractions) // 10), linestyle="--" if baseline else "-",
                      **style)  # fmt: skip
        axes.set_xlabel(f"Pixels {'deleted' if name == 'Deletion' else 'inserted'}, most important first (%)")
        axes.set_title(f"{name} ({better} AUC is more faithful)", fontsize=10)
        axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, frameon=False)
    panels[0].set_ylabel("Softmax probability of the target class")
    figure.suptitle(title, fontsize=11)
    save_figure(figure, Path(path))
    return f"Two line charts: deletion and insertion curves for {', '.join(methods)}. {title}."


def sanity_figure(result: SanityResult, path: Path) -> str:
    """|Spearman ρ| and SSIM of each method's map to its original, per cascading randomisation step."""
    if result.weights_are_random:
        raise ValueError("the sanity check was skipped (random weights); show the note instead of a figure")
    figure = Figure(figsize=(10, 4))
    panels = figure.subplots(1, 2)
    steps = ["original", *result.steps]
    positions = np.arange(len(steps))
    panel_data = ((panels[0], result.spearman_abs, "|Spearman ρ|"), (panels[1], result.ssim, "SSIM"))
    for axes, values, name in panel_data:
        scored = np.isfinite(values).sum(axis=2)  # constant maps are NaN: not scored, left out of the mean
        means = np.where(scored > 0, np.nansum(values, axis=2) / np.maximum(scored, 1), np.nan)
        for index, method in enumerate(result.methods):
            axes.plot(positions, [1.0, *means[index]], label=str(method), **_style(index))
        axes.set_xticks(positions, steps, rotation=30, ha="right", fontsize=8)
        axes.set_xlabel("Randomised down to (cumulative, from the logits)")
        mean = f", mean over {result.n_images} images" if result.n_images > 1 else ""
        axes.set_title(f"{name} with the original map{mean}", fontsize=10)
        axes.axhline(0, color=CHANCE_COLOUR, linewidth=0.8)
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("Similarity to the map of the trained model")
    panels[0].set_ylim(-0.05, 1.05)
    panels[1].set_ylim(min(-0.05, float(np.nanmin(result.ssim, initial=0.0)) - 0.05), 1.05)
    panels[0].legend(fontsize=7, frameon=False, loc="best")
    figure.suptitle("Sanity check: cascading model-parameter randomisation (Adebayo et al. 2018)", fontsize=11)
    save_figure(figure, Path(path))
    return (
        "Line charts of map similarity to the original as layers are randomised from the logits down, for "
        f"{', '.join(result.methods)}; the edge detector never sees the model and is the control."
    )


def comparison_panel_figure(
    image: np.ndarray,
    segments: np.ndarray,
    segment_weights: np.ndarray,
    cam_maps: Mapping[str, np.ndarray],
    path: Path,
    *,
    k: int = 5,
    image_id: str = "",
    ious: Mapping[str, float] | None = None,
) -> str:
    """The image with LIME's top-k outline, then each CAM (cividis) with the same outline and its IoU.

    Each CAM's area-matched binarisation (its top pixels with LIME's area) is drawn as a dotted white contour.
    ``ious`` are the artifact's IoUs at ``k`` (mean over every LIME seed scored, as the tables give them); the
    renderer computes none: a method missing from it is titled "IoU n/a". The outline is of ``segment_weights``
    (one seed) and is drawn only.
    """
    lime_mask = lime_topk_mask(np.asarray(segments), np.asarray(segment_weights), k)
    outline = find_boundaries(lime_mask, mode="inner")
    columns = 1 + len(cam_maps)
    figure = Figure(figsize=(2.6 * columns + 0.6, 3.2))
    panels = np.atleast_1d(figure.subplots(1, columns))
    panels[0].imshow(image)
    panels[0].imshow(np.ma.masked_where(~outline, outline), cmap=OUTLINE_CMAP, interpolation="nearest")
    panels[0].set_title(f"Image + LIME top-{k} outline", fontsize=9)
    area = int(lime_mask.sum())
    image_artist = None
    for axes, (method, cam) in zip(panels[1:], cam_maps.items(), strict=True):
        image_artist = axes.imshow(cam, cmap=MAP_CMAP, vmin=0, vmax=1)
        reason = degenerate_reason(cam)
        if reason:
            axes.set_title(f"{method}: excluded ({reason})", fontsize=9)
        else:  # the contour shows one seeded tie-break; the title is the expectation the tables report
            matched = random_tie_ranks(np.asarray(cam), 0) < area
            axes.contour(matched, levels=[0.5], colors="white", linewidths=0.8, linestyles=":")
            value = (ious or {}).get(method, math.nan)
            axes.set_title(f"{method}: IoU {value:.2f}" if math.isfinite(value) else f"{method}: IoU n/a", fontsize=9)
        axes.imshow(np.ma.masked_where(~outline, outline), cmap=OUTLINE_CMAP, interpolation="nearest")
    for axes in panels:
        axes.set_xlabel("x (pixels)", fontsize=7)
        axes.set_ylabel("y (pixels)", fontsize=7)
        axes.tick_params(labelsize=6)
    if image_artist is not None:
        colorbar = figure.colorbar(image_artist, ax=list(panels[1:]), fraction=0.02, pad=0.01)
        colorbar.set_label("CAM value", fontsize=8)
    figure.suptitle(f"{image_id}: LIME top-{k} mask (red outline) over each CAM", fontsize=10)
    save_figure(figure, Path(path))
    return (
        f"Image {image_id} and {len(cam_maps)} CAM heat maps, each with LIME's top-{k} superpixels outlined "
        "in red and the CAM's area-matched mask dotted in white; titles give the IoU."
    )
