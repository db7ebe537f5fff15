"""Figures of the CLIP-Dissect stage: concept frequencies, score distributions, model overlap, categories and
per-neuron thumbnail strips of the top-activating probe images. They read artifacts; they compute nothing new.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from xai.cache import atomic_write_bytes
from xai.dissect.analysis import LayerSummary, ModelComparison, ModelSummary
from xai.dissect.result import DissectionResult
from xai.report.figures import save_figure

THUMBNAIL_PX = 64
STRIP_IMAGES = 5
STRIP_GAP_PX = 2


def _palette(count: int) -> list:
    colormap = colormaps["viridis"]
    return [colormap(value) for value in np.linspace(0.15, 0.85, max(count, 1))]


def concept_frequency_figure(summary: LayerSummary, model_name: str, path: Path) -> Path:
    """Horizontal bars: the layer's most frequent labels and how many neurons carry each (top 20)."""
    names = [name for name, _ in summary.top_concepts][::-1]
    counts = [count for _, count in summary.top_concepts][::-1]
    figure = Figure(figsize=(6, 0.28 * max(len(names), 4) + 1.2))
    axes = figure.subplots()
    axes.barh(range(len(names)), counts, color=_palette(1)[0])
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel(f"neurons labelled with the concept (of {summary.n_units})")
    axes.set_ylabel("concept")
    axes.set_title(f"{model_name} {summary.layer}: {summary.n_distinct} distinct concepts", fontsize=10)
    return save_figure(figure, path)


def score_distribution_figure(
    results: Sequence[DissectionResult], layer: str | Sequence[str], path: Path, *, title: str = ""
) -> Path:
    """Histograms of every neuron's best score, one per model, with each layer's interpretable threshold
    (95th percentile of the shuffled-probe null) as a dashed line. ``layer`` is one name for every model, or one
    per model (models with different layers, compared by position)."""
    layers = [layer] * len(results) if isinstance(layer, str) else list(layer)
    named = len(set(layers)) > 1  # say which layer each histogram is
    figure = Figure(figsize=(6, 3.4))
    axes = figure.subplots()
    colours = _palette(len(results))
    scores = [result.layer(name).best_scores for result, name in zip(results, layers, strict=True)]
    edges = np.histogram_bin_edges(np.concatenate(scores), bins=40)
    for result, name, values, colour in zip(results, layers, scores, colours, strict=True):
        label = f"{result.model_name} {name}" if named else result.model_name
        axes.hist(values, bins=edges, alpha=0.55, color=colour, label=label)
        null = result.layer(name).null_scores
        if null.size:
            axes.axvline(
                float(np.quantile(null, 0.95)),
                color=colour,
                linestyle="--",
                linewidth=1.2,
                label=f"{label} null 95th percentile",
            )
    axes.set_xlabel(f"best {results[0].similarity} score per neuron")
    axes.set_ylabel("neurons")
    axes.set_title(f"{title or layers[0]}: distribution of label scores", fontsize=10)
    axes.legend(fontsize=7)
    return save_figure(figure, path)


def overlap_figure(comparison: ModelComparison, path: Path) -> Path:
    """Per layer, stacked bars of concepts unique to each model and shared by both, Jaccard on top."""
    figure = Figure(figsize=(6, 3.6))
    axes = figure.subplots()
    names = [overlap.pair.replace(" ↔ ", "\n") for overlap in comparison.layers]
    only_a = np.array([overlap.n_unique_a for overlap in comparison.layers])
    shared = np.array([overlap.n_shared for overlap in comparison.layers])
    only_b = np.array([overlap.n_unique_b for overlap in comparison.layers])
    colours = _palette(3)
    x = np.arange(len(names))
    axes.bar(x, only_a, color=colours[0], label=f"only {comparison.model_a}")
    axes.bar(x, shared, bottom=only_a, color=colours[1], label="shared")
    axes.bar(x, only_b, bottom=only_a + shared, color=colours[2], label=f"only {comparison.model_b}")
    for position, overlap in enumerate(comparison.layers):
        total = overlap.n_unique_a + overlap.n_shared + overlap.n_unique_b
        axes.annotate(f"J={overlap.jaccard:.2f}", (position, total), ha="center", va="bottom", fontsize=8)
    axes.set_xticks(x, names)
    axes.set_xlabel("layer")
    axes.set_ylabel("distinct concepts used as labels")
    axes.set_title("Concepts shared by the two models (J = Jaccard index)", fontsize=10)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.margins(y=0.12)
    return save_figure(figure, path)


def category_figure(summaries: Sequence[ModelSummary], path: Path) -> Path:
    """Fraction of neurons per concept category, one stacked bar per (model, layer)."""
    bars = [(f"{summary.model_name}\n{layer.layer}", layer) for summary in summaries for layer in summary.layers]
    categories = [name for name, _ in bars[0][1].category_counts]
    colours = _palette(len(categories))
    figure = Figure(figsize=(max(6, 1.1 * len(bars)), 3.8))
    axes = figure.subplots()
    bottom = np.zeros(len(bars))
    for index, category in enumerate(categories):
        values = np.array([dict(layer.category_counts)[category] / layer.n_units for _, layer in bars])
        axes.bar(range(len(bars)), values, bottom=bottom, color=colours[index], label=category)
        bottom += values
    axes.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=7)
    axes.set_xlabel("model and layer")
    axes.set_ylabel("fraction of neurons")
    axes.set_title("Concept categories of the labels (keyword map)", fontsize=10)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(figure, path)


def load_thumbnail(path: Path, size: int = THUMBNAIL_PX) -> np.ndarray:
    """Centre-square crop resized to ``size`` px, (size, size, 3) uint8. JPEG ``draft`` mode decodes at a
    reduced scale, which makes thousands of thumbnails cheap."""
    with Image.open(path) as image:
        image.draft("RGB", (size * 2, size * 2))
        image = image.convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.uint8)


def strip_name(layer: str, unit: int) -> str:
    """File name of a neuron's strip, matching the page anchor ``#unit-{unit}``."""
    return f"{layer}-unit-{unit:04d}.jpg"


def strip_inputs(
    result: DissectionResult, layer: str, probe_paths: Sequence[Path], count: int = STRIP_IMAGES
) -> tuple[np.ndarray, list[Path]]:
    """What the strips of ``layer`` are drawn from, and nothing more (the figure cache keys on it): each neuron's
    ``count`` top probe images as (units, count) positions into the few probe paths they use, and those paths."""
    dissection = result.layer(layer)
    if len(probe_paths) != len(result.probe_ids):
        raise ValueError(f"{len(probe_paths)} probe paths for {len(result.probe_ids)} probe images")
    top = dissection.top_images[:, :count]
    used, positions = np.unique(top, return_inverse=True)
    return positions.reshape(top.shape), [Path(probe_paths[int(index)]) for index in used]


def thumbnail_strips(
    result: DissectionResult,
    layer: str,
    probe_paths: Sequence[Path],
    out_dir: Path,
    *,
    count: int = STRIP_IMAGES,
    size: int = THUMBNAIL_PX,
    loader: Callable[[Path, int], np.ndarray] = load_thumbnail,
) -> list[Path]:
    """One JPEG strip per neuron of ``layer``: its ``count`` top-activating probe images, best first
    (:func:`write_strips` of :func:`strip_inputs`). Returns the strip paths in unit order."""
    top, paths = strip_inputs(result, layer, probe_paths, count)
    return write_strips(top, paths, layer, out_dir, size=size, loader=loader)


def write_strips(
    top: np.ndarray,
    paths: Sequence[Path],
    layer: str,
    out_dir: Path,
    *,
    size: int = THUMBNAIL_PX,
    loader: Callable[[Path, int], np.ndarray] = load_thumbnail,
) -> list[Path]:
    """One JPEG strip per row of ``top`` (a neuron's images as positions into ``paths``, best first).

    Each probe image is decoded once however many neurons use it; strips are assembled with numpy and written
    with PIL (no matplotlib), atomically, as ``out_dir / strip_name(layer, unit)``. Returns them in unit order.
    """
    thumbnails = {int(index): loader(Path(paths[index]), size) for index in np.unique(top)}
    gap = np.full((size, STRIP_GAP_PX, 3), 255, np.uint8)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for unit in range(top.shape[0]):
        tiles = []
        for index in top[unit]:
            tiles += [thumbnails[int(index)], gap]
        strip = np.concatenate(tiles[:-1], axis=1)
        path = out_dir / strip_name(layer, unit)
        encoded = io.BytesIO()
        Image.fromarray(strip).save(encoded, format="JPEG", quality=85)
        atomic_write_bytes(path, encoded.getvalue())
        written.append(path)
    return written
