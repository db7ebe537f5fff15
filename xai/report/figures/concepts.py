"""Figures of one prediction explained in concepts (:class:`xai.concepts.ConceptExplanation`). Each function reads
the artifact, writes one PNG through :func:`xai.report.figures.save_figure` and returns its path; none computes a
result (the maps are upsampled for display only, as the agreement check upsamples them).

Colours: signed bars and maps use the diverging ``PuOr`` (ColorBrewer, colour-blind safe) centred on 0, orange for
evidence for the class, purple against, as the LIME weight heatmap does; curves are told apart by line style and
marker as well as colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from xai.concepts import UNLABELLED, ConceptExplanation
from xai.concepts.bars import ConceptBar
from xai.concepts.maps import upsample
from xai.report.figures import save_figure

DIVERGING = "PuOr_r"
FOR, AGAINST = "#e66101", "#5e3c99"
"""PuOr's ends: orange supports the class, purple speaks against it."""
NEGATIVE_SHOWN = 3
"""Concepts with the most negative contributions drawn besides the shown positive ones."""


def _label(index: int, categories: Sequence[str] | None) -> str:
    return categories[index] if categories is not None and 0 <= index < len(categories) else f"class {index}"


def bar_rows(explanation: ConceptExplanation) -> list[tuple[str, float]]:
    """The bars drawn, top to bottom: the shown concepts (largest positive), the most negative ones, the other
    labelled concepts summed, the unlabelled units, and the offset (bias or baseline logit). They add up to
    ``z_t`` minus the completeness error."""
    bars = explanation.bars
    shown = bars.top(explanation.settings.shown)
    negative = [bar for bar in reversed(bars.bars) if bar.contribution < 0][:NEGATIVE_SHOWN]
    drawn: list[ConceptBar] = [*shown, *negative]  # disjoint: the shown bars are positive
    drawn_ids = {bar.concept_id for bar in drawn}
    others = [bar for bar in bars.bars if bar.concept_id not in drawn_ids]
    rows = [(f"{bar.concept} ({bar.n_units} unit{'s' if bar.n_units != 1 else ''})", bar.contribution) for bar in drawn]
    if others:
        rows.append((f"{len(others)} other labelled concepts", float(sum(bar.contribution for bar in others))))
    rows.append((f"{UNLABELLED} ({bars.unlabelled.n_units})", bars.unlabelled.contribution))
    rows.append((bars.offset_name, bars.offset))
    return rows


def plot_concept_bars(explanation: ConceptExplanation, path: Path, categories: Sequence[str] | None = None) -> Path:
    """Signed horizontal bars that add up to the explained logit (:func:`bar_rows`)."""
    rows = bar_rows(explanation)
    names = [name for name, _ in rows][::-1]
    values = np.array([value for _, value in rows][::-1])
    figure = Figure(figsize=(8, 0.42 * len(rows) + 1.6), layout="constrained")
    axes = figure.subplots()
    axes.barh(names, values, color=[FOR if value >= 0 else AGAINST for value in values])
    axes.axvline(0, color="black", linewidth=0.8)
    axes.tick_params(labelsize=8)
    axes.set_xlabel(f"contribution to the logit of '{_label(explanation.target_class, categories)}'")
    bars = explanation.bars
    axes.set_title(
        f"bars sum to {values.sum():.4g}; logit z = {bars.logit:.4g} "
        f"(completeness error {bars.completeness_error:.2g})",
        fontsize=9,
    )
    return save_figure(figure, path)


def plot_concept_maps(
    image: np.ndarray, explanation: ConceptExplanation, path: Path, categories: Sequence[str] | None = None
) -> Path:
    """Each shown concept's map over the faded image (one colour scale, centred on 0, shared by all panels), its
    presence-check region outlined when CLIP checked it; last, the sum of every bar's map (for a linear head the
    layer's Grad-CAM map before its ReLU)."""
    maps = explanation.maps
    shown = explanation.bars.top(explanation.settings.shown)
    size = (int(image.shape[0]), int(image.shape[1]))
    panels = [(bar.concept, upsample(maps.map_of(bar.concept), size)) for bar in shown]
    panels.append(("sum of all bars' maps", upsample(maps.total, size)))
    limit = max(float(np.abs(panel).max()) for _, panel in panels) or 1.0
    boxes = {presence.concept: presence.box for presence in explanation.presence if not presence.excluded}
    figure = Figure(figsize=(2.9 * len(panels) + 0.8, 3.4), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(panels)))
    shown_image = None
    for panel, (name, values) in zip(axes, panels, strict=True):
        panel.imshow(image.mean(axis=2) / 255.0, cmap="gray", vmin=0, vmax=1)
        shown_image = panel.imshow(values, cmap=DIVERGING, vmin=-limit, vmax=limit, alpha=0.6)
        if name in boxes:
            top, left, bottom, right = (int(value) for value in boxes[name])
            panel.add_patch(
                Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, edgecolor="black", lw=1.5)
            )
        panel.set_title(name, fontsize=9)
        panel.set_xticks([])
        panel.set_yticks([])
    figure.colorbar(shown_image, ax=list(axes), shrink=0.8, label="contribution per position")
    figure.suptitle(f"where each concept adds to '{_label(explanation.target_class, categories)}'", fontsize=10)
    return save_figure(figure, path)


def plot_faithfulness(explanation: ConceptExplanation, path: Path) -> Path:
    """Change of the class's margin when the top-K units are removed (by contribution, by activation, by weight)
    and when only the top-K are kept, each against the band of random K-unit sets (2.5-97.5 percentiles)."""
    faith = explanation.faithfulness
    ks = faith.ks
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    removal, keep = figure.subplots(1, 2)
    band = faith.random_removal
    removal.fill_between(ks, band.margin_low, band.margin_high, color="0.8", label=f"{band.draws} random sets (95%)")
    removal.plot(ks, band.margin_median, color="0.45", linestyle=":", label="random sets (median)")
    for curve, style, marker in (
        (faith.by_contribution, "-", "o"),
        (faith.by_activation, "--", "s"),
        (faith.by_weight, "-.", "^"),
    ):
        removal.plot(ks, curve.delta_margin, linestyle=style, marker=marker, label=f"top-K by {curve.ranking}")
    removal.set_title("remove the top-K units (set to their probe mean)", fontsize=9)
    keep_band = faith.random_keep_only
    keep.fill_between(ks, keep_band.margin_low, keep_band.margin_high, color="0.8", label="K random units kept (95%)")
    keep.plot(ks, keep_band.margin_median, color="0.45", linestyle=":", label="random units kept (median)")
    keep.plot(ks, faith.keep_only.delta_margin, marker="o", label="top-K by contribution kept")
    keep.set_title("keep only the top-K units (the others at their probe mean)", fontsize=9)
    for axes in (removal, keep):
        axes.set_xscale("log", base=2)
        axes.set_xticks(ks, [str(int(k)) for k in ks])
        axes.axhline(0, color="black", linewidth=0.8)
        axes.set_xlabel("K units")
        axes.set_ylabel("change of the margin z_t - max other z")
        axes.legend(fontsize=7)
    return save_figure(figure, path)


def save_concept_figures(
    image: np.ndarray, explanation: ConceptExplanation, directory: Path, categories: Sequence[str] | None = None
) -> dict[str, Path]:
    """The tab's three figures of one image in ``directory``: ``concept_bars``, ``concept_maps``,
    ``concept_faithfulness``."""
    return {
        "concept_bars": plot_concept_bars(explanation, directory / "concept_bars.png", categories),
        "concept_maps": plot_concept_maps(image, explanation, directory / "concept_maps.png", categories),
        "concept_faithfulness": plot_faithfulness(explanation, directory / "concept_faithfulness.png"),
    }
