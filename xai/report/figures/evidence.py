"""The figures Task 4's answers rest on: a forest plot of every method's agreement and faithfulness with their 95%
intervals beside the nulls, and the paired differences behind each claim.

Both read the comparison summary's tables and draw them (no number is computed here: means, intervals, Holm p and
verdicts come from :mod:`xai.compare`). Style as :mod:`xai.report.figures.compare`: the Okabe-Ito palette, markers
that differ as well as colours, every axis labelled; a filled marker is a claim the page makes, a hollow one is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from xai.compare.narrative import title
from xai.compare.nulls import CENTRE_METHOD
from xai.compare.summary import ComparisonSummary
from xai.report.figures import save_figure
from xai.report.figures.compare import CHANCE_COLOUR, OKABE_ITO

NULLS = (
    ("superpixel", "superpixel null", "s", OKABE_ITO[1]),
    ("cross_image", "cross-image null", "^", OKABE_ITO[2]),
    ("location", "location baseline", "D", OKABE_ITO[3]),
)
"""(column prefix, name, marker, colour) of each null an agreement claim is tested against."""
BASELINES = (("random", "smooth random maps", "s", OKABE_ITO[1]), ("centre", "centre prior", "D", OKABE_ITO[3]))
METHOD_COLOUR = OKABE_ITO[0]
BAND_COLOUR = "#BBBBBB"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _agreement_rows(summary: ComparisonSummary) -> pd.DataFrame:
    by_method = summary.agreement_by_method
    if by_method.empty:
        return by_method
    at_k = by_method[(by_method["k"] == summary.k) & (by_method["n_images"] > 0)]
    return at_k.sort_values("agreement_order", kind="stable")


def _faithfulness_rows(summary: ComparisonSummary) -> pd.DataFrame:
    ranking = summary.faithfulness_ranking
    if ranking.empty:
        return ranking
    return ranking[~ranking["method"].isin([name for name, *_ in BASELINES]) & (ranking["n_images"] > 0)]


def _interval(axes: Axes, y: float, row: Any, prefix: str, filled: bool, colour: str, marker: str = "o") -> None:
    """A mean and its 95% interval at height ``y``; the interval is left out where it is undefined."""
    mean, low, high = row[f"{prefix}_mean"], row[f"{prefix}_low"], row[f"{prefix}_high"]
    if _finite(low) and _finite(high):
        axes.plot([low, high], [y, y], color=colour, linewidth=1.6, solid_capstyle="butt")
    if _finite(mean):
        axes.plot([mean], [y], marker=marker, markersize=7, color=colour,
                  markerfacecolor=colour if filled else "white", markeredgewidth=1.4, linestyle="none")  # fmt: skip


def _rows_axes(axes: Axes, labels: Sequence[str]) -> None:
    axes.set_yticks(range(len(labels)), labels, fontsize=9)
    axes.set_ylim(len(labels) - 0.5, -0.5)
    axes.grid(axis="x", alpha=0.3)


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color=CHANCE_COLOUR)
    axes.set_yticks([])


def forest_figure(summary: ComparisonSummary, path: Path) -> str:
    """Left: each method's mean IoU with LIME's top-k mask and its 95% interval, the nulls' means as grey marks and
    their range as a band (filled: agrees beyond all three nulls after Holm). Right: each map's faithfulness score
    (insertion − deletion AUC) with its interval, the smooth random maps' and centre prior's intervals as bands across
    the panel (filled: more faithful than both)."""
    agreement, faithful = _agreement_rows(summary), _faithfulness_rows(summary)
    rows = max(len(agreement), len(faithful), 2)
    figure = Figure(figsize=(11, 0.42 * rows + 1.9), layout="constrained")
    left, right = figure.subplots(1, 2)
    if len(agreement):
        for y, (_, row) in enumerate(agreement.iterrows()):
            nulls = [row.get(f"{name}_iou_mean", math.nan) for name, *_ in NULLS]
            shown = [value for value in nulls if _finite(value)]
            if shown:
                left.add_patch(_band(min(shown), max(shown), y))
            for (_, label, marker, colour), value in zip(NULLS, nulls, strict=True):
                if _finite(value):
                    left.plot([value], [y], marker=marker, color=colour, markersize=5, linestyle="none",
                              label=label if y == 0 else None)  # fmt: skip
            beaten = all(bool(row.get(f"{name}_claim", False)) for name, *_ in NULLS)
            colour = CHANCE_COLOUR if row["method"] == CENTRE_METHOD else METHOD_COLOUR
            _interval(left, y, row, "iou", beaten, colour)
        _rows_axes(left, [title(str(m)) for m in agreement["method"]])
        left.plot([], [], marker="o", color=METHOD_COLOUR, label="mean IoU, 95% CI\n(filled: beyond all three nulls)")
        left.set_xlim(-0.02, 1.02)
        left.legend(fontsize=7, frameon=False, loc="lower right")
    else:
        _empty(left, "no agreement scored")
    n_agreement = int(agreement["n_images"].max()) if len(agreement) else 0
    left.set_xlabel(f"IoU with LIME's top-{summary.k} superpixels (n = {n_agreement} images)")
    left.set_title("Agreement with LIME, beside the nulls", fontsize=10)
    ranking = summary.faithfulness_ranking
    if len(faithful):
        for name, label, _, colour in BASELINES:
            found = ranking[ranking["method"] == name]
            if len(found):
                base = found.iloc[0]
                if _finite(base["score_low"]) and _finite(base["score_high"]):
                    right.axvspan(base["score_low"], base["score_high"], color=colour, alpha=0.15, linewidth=0)
                right.axvline(base["score_mean"], color=colour, linestyle="--", linewidth=1, label=f"{label} (95% CI)")
        for y, (_, row) in enumerate(faithful.iterrows()):
            beaten = all(bool(row.get(f"vs_{name}_claim", False)) for name, *_ in BASELINES)
            _interval(right, y, row, "score", beaten, METHOD_COLOUR)
        _rows_axes(right, [title(str(m)) for m in faithful["method"]])
        right.axvline(0, color=CHANCE_COLOUR, linewidth=0.8)
        right.plot([], [], marker="o", color=METHOD_COLOUR, label="mean score, 95% CI\n(filled: beyond both baselines)")
        right.legend(fontsize=7, frameon=False, loc="lower right")
    else:
        _empty(right, "no faithfulness scored")
    n_faithful = int(faithful["n_images"].max()) if len(faithful) else 0
    right.set_xlabel(f"Insertion AUC − deletion AUC, higher is more faithful (n = {n_faithful} images)")
    right.set_title("Faithfulness, beside the baseline maps", fontsize=10)
    save_figure(figure, Path(path))
    return (
        f"Forest plot: each method's mean IoU with LIME's top-{summary.k} superpixels (left) and faithfulness score "
        "(right) with 95% intervals; the nulls' means and the baseline maps' intervals drawn as grey marks and bands."
    )


def _band(low: float, high: float, y: float) -> Any:
    from matplotlib.patches import Rectangle

    width = max(high - low, 0.006)  # nulls that coincide still show as a thin band
    return Rectangle((low - (width - (high - low)) / 2, y - 0.3), width, 0.6, color=BAND_COLOUR, alpha=0.35,
                     linewidth=0)  # fmt: skip


def differences_figure(summary: ComparisonSummary, path: Path) -> str:
    """Every claim's paired mean difference with its 95% interval: left, each CAM's IoU minus each null's; right,
    each map's faithfulness score minus each baseline's. Filled: the claim is made (Holm-adjusted p < α and the
    interval above 0); hollow: it is not."""
    agreement, faithful = _agreement_rows(summary), _faithfulness_rows(summary)
    agreement = agreement[agreement["method"] != CENTRE_METHOD] if len(agreement) else agreement
    rows = max(len(agreement), len(faithful), 2)
    figure = Figure(figsize=(11, 0.5 * rows + 1.9), layout="constrained")
    panels = figure.subplots(1, 2)
    for axes, frame, tests, prefix_of, what in (
        (panels[0], agreement, NULLS, lambda name: f"{name}_", f"IoU − null's IoU (k = {summary.k})"),
        (panels[1], faithful, BASELINES, lambda name: f"vs_{name}_", "score − baseline's score"),
    ):
        if frame.empty:
            _empty(axes, "no claims tested")
            axes.set_xlabel(what)
            continue
        offsets = np.linspace(-0.22, 0.22, len(tests))
        for y, (_, row) in enumerate(frame.iterrows()):
            for offset, (name, _, marker, colour) in zip(offsets, tests, strict=True):
                prefix = prefix_of(name)
                values = {part: row.get(f"{prefix}{part}", math.nan) for part in ("diff", "diff_low", "diff_high")}
                shown = {"mean": values["diff"], "low": values["diff_low"], "high": values["diff_high"]}
                _interval(axes, y + offset, {f"d_{key}": value for key, value in shown.items()}, "d",
                          bool(row.get(f"{prefix}claim", False)), colour, marker)  # fmt: skip
        for _, label, marker, colour in tests:
            axes.plot([], [], marker=marker, color=colour, label=f"vs {label}")
        axes.axvline(0, color=CHANCE_COLOUR, linewidth=1)
        _rows_axes(axes, [title(str(m)) for m in frame["method"]])
        axes.set_xlabel(f"Mean paired difference, 95% CI: {what}")
        axes.legend(fontsize=7, frameon=False, loc="lower right", title="filled: claimed (Holm)", title_fontsize=7)
    panels[0].set_title("Agreement: does the CAM beat each null?", fontsize=10)
    panels[1].set_title("Faithfulness: does the map beat each baseline?", fontsize=10)
    save_figure(figure, Path(path))
    return (
        "Paired differences with 95% intervals: each CAM's IoU with LIME minus each null's (left) and each map's "
        "faithfulness minus each baseline's (right); filled markers are claims made after Holm's adjustment."
    )
