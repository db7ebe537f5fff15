"""Figures of the LIME and CAM explanations. Each function reads artifacts, writes one image and returns its path.

Colour choices: CAM maps use ``viridis`` (perceptually uniform, colour-blind safe) over a faded greyscale copy of
the image; signed LIME weights use the diverging ``PuOr`` (ColorBrewer, colour-blind safe), centred on 0. The
green/red pros-and-cons view is the LIME tutorial's own convention and is kept as asked, with a legend and
superpixel outlines so it does not depend on telling the two colours apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch
from skimage.segmentation import mark_boundaries

from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, Prediction
from xai.explain.registry import METHODS
from xai.report.figures import save_figure

CAM_COLORMAP = "viridis"
WEIGHT_COLORMAP = "PuOr"
YELLOW = (1.0, 1.0, 0.0)


def _label(index: int, categories: Sequence[str] | None) -> str:
    return categories[index] if categories is not None and index < len(categories) else f"class {index}"


def _image_axes(axes: Axes, title: str) -> None:
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("x (pixels)", fontsize=7)
    axes.set_ylabel("y (pixels)", fontsize=7)
    axes.tick_params(labelsize=6)


def _faded_gray(image: np.ndarray) -> np.ndarray:
    return image.mean(axis=2) / 255.0


def plot_original(
    image: np.ndarray, prediction: Prediction, path: Path, categories: Sequence[str] | None = None
) -> Path:
    """The image with its predicted label, and a bar chart of the top-5 softmax probabilities."""
    # Constrained layout keeps long class names clear of the axis label.
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    left.imshow(image)
    _image_axes(left, f"predicted: {_label(prediction.top1, categories)} ({prediction.probabilities[0]:.1%})")
    names = [_label(int(i), categories) for i in prediction.labels][::-1]
    right.barh(names, prediction.probabilities[::-1], color="#3b528b")
    right.set_xlim(0, 1)
    right.set_xlabel("softmax probability")
    right.set_ylabel("class (top 5)")
    right.set_title("top-5 predictions", fontsize=9)
    return save_figure(figure, path)


def plot_lime_boundaries(
    image: np.ndarray, lime: LimeResult, path: Path, categories: Sequence[str] | None = None
) -> Path:
    """The tutorial's view: the top-k positive superpixels outlined in yellow, one panel per k."""
    figure = Figure(figsize=(3.6 * len(lime.ks), 3.8))
    axes = np.atleast_1d(figure.subplots(1, len(lime.ks)))
    for panel, k, mask in zip(axes, lime.ks, lime.positive_masks, strict=True):
        panel.imshow(mark_boundaries(image / 255.0, mask.astype(int), color=YELLOW))
        _image_axes(panel, f"LIME top {k} positive superpixels")
    figure.suptitle(f"LIME for {_label(lime.label, categories)}", fontsize=10)
    return save_figure(figure, path)


def plot_lime_pros_cons(
    image: np.ndarray, lime: LimeResult, path: Path, k: int = 10, categories: Sequence[str] | None = None
) -> Path:
    """The k superpixels of largest |weight|: green supports the class, red speaks against it (LIME's view)."""
    shown = image / 255.0
    painted = shown.copy()
    signed = np.zeros(lime.segments.shape, dtype=int)
    for segment, weight in lime.signed_superpixels(k):
        inside = lime.segments == segment
        painted[inside, 1 if weight > 0 else 0] = shown.max()
        signed[inside] = 1 if weight > 0 else -1
    figure = Figure(figsize=(4.6, 4.4))
    axes = figure.subplots()
    axes.imshow(mark_boundaries(painted, signed, color=YELLOW))
    _image_axes(axes, f"LIME top {k} superpixels by |weight| ({_label(lime.label, categories)})")
    axes.legend(
        handles=[Patch(color="green", label="supports the class"), Patch(color="red", label="against the class")],
        loc="lower right",
        fontsize=7,
    )
    return save_figure(figure, path)


def plot_lime_weights(image: np.ndarray, lime: LimeResult, path: Path, categories: Sequence[str] | None = None) -> Path:
    """Every superpixel's LIME weight as a diverging heatmap centred on 0, with the surrogate's fit quality."""
    weights = lime.pixel_weights()
    limit = float(np.abs(weights).max()) or 1.0
    figure = Figure(figsize=(5.2, 4.4))
    axes = figure.subplots()
    axes.imshow(_faded_gray(image), cmap="gray", vmin=0, vmax=1)
    shown = axes.imshow(weights, cmap=WEIGHT_COLORMAP, vmin=-limit, vmax=limit, alpha=0.85)
    axes.imshow(mark_boundaries(np.zeros_like(image, dtype=float), lime.segments, color=(0.2, 0.2, 0.2)), alpha=0.25)
    _image_axes(
        axes,
        f"LIME weights for {_label(lime.label, categories)}\n"
        f"R²={lime.score:.2f}, local pred {lime.local_pred:.2f} vs model {lime.model_probability:.2f}",
    )
    colorbar = figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label("weight (change in class probability)")
    return save_figure(figure, path)


def _draw_cam(axes: Axes, image: np.ndarray, cam: CamMap) -> AxesImage:
    axes.imshow(_faded_gray(image), cmap="gray", vmin=0, vmax=1)
    return axes.imshow(cam.map, cmap=CAM_COLORMAP, vmin=0, vmax=1, alpha=0.6)


def plot_cam(image: np.ndarray, cam: CamMap, path: Path, categories: Sequence[str] | None = None) -> Path:
    """One CAM overlaid on the (greyed) image, with a colorbar."""
    figure = Figure(figsize=(5.0, 4.4))
    axes = figure.subplots()
    shown = _draw_cam(axes, image, cam)
    title = METHODS[cam.method].title if cam.method in METHODS else cam.method
    _image_axes(axes, f"{title} for {_label(cam.target_class, categories)} ({cam.seconds:.2f} s)")
    colorbar = figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label("relevance (min-max scaled)")
    return save_figure(figure, path)


GRID_JPEG_QUALITY = 88
"""The gallery's panels are photographs under a heatmap: JPEG keeps each at ~10-20 kB where PNG takes ~100 kB."""


def _overlay(image: np.ndarray, values: np.ndarray, colormap: str, low: float, high: float, alpha: float) -> np.ndarray:
    """``values`` coloured by ``colormap`` (``low``..``high``) over the faded greyscale image, as uint8 RGB: the
    same composite :func:`plot_cam` and :func:`plot_lime_weights` draw with matplotlib, without axes."""
    from matplotlib import colormaps

    if values.shape != image.shape[:2]:  # a map at another resolution: nearest-neighbour, like imshow's extent
        rows = np.arange(image.shape[0]) * values.shape[0] // image.shape[0]
        columns = np.arange(image.shape[1]) * values.shape[1] // image.shape[1]
        values = values[np.ix_(rows, columns)]
    grey = _faded_gray(image)[..., None]
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    colours = colormaps[colormap](scaled)[..., :3]
    return np.round(255 * ((1 - alpha) * grey + alpha * colours)).astype(np.uint8)


def grid_panel(image: np.ndarray, path: Path, *, cam: CamMap | None = None, lime: LimeResult | None = None) -> Path:
    """One cell of the explanation gallery (images x methods) as a JPEG at the image's own resolution, no axes:
    the image itself, LIME's weights (``PuOr``, each image scaled by its largest |weight|, purple supports the
    class) or a CAM (``viridis`` on [0, 1]) over the faded greyscale image. The column header, the lightbox caption
    and :func:`grid_legend` say which is which."""
    import io

    from PIL import Image

    from xai.cache import atomic_write_bytes

    if cam is not None and lime is not None:
        raise ValueError("a gallery panel shows one map: a CAM or LIME's weights, not both")
    if cam is not None:
        pixels = _overlay(image, cam.map, CAM_COLORMAP, 0.0, 1.0, alpha=0.6)
    elif lime is not None:
        weights = lime.pixel_weights()
        limit = float(np.abs(weights).max()) or 1.0
        pixels = _overlay(image, weights / limit, WEIGHT_COLORMAP, -1.0, 1.0, alpha=0.85)
    else:
        pixels = np.asarray(image, dtype=np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="JPEG", quality=GRID_JPEG_QUALITY)
    atomic_write_bytes(path, encoded.getvalue())
    return path


def grid_legend(path: Path, *, lime: bool = True, cam: bool = True) -> Path:
    """The gallery's colour scales, one horizontal bar each: LIME's signed weight and the CAMs' relevance."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bars = []
    if lime:
        bars.append((WEIGHT_COLORMAP, -1.0, "LIME weight / max |weight| of the image (purple: supports the class)"))
    if cam:
        bars.append((CAM_COLORMAP, 0.0, "CAM relevance (min-max scaled per map)"))
    if not bars:
        raise ValueError("a legend needs LIME's scale, the CAMs' scale or both")
    figure = Figure(figsize=(4.2 * len(bars), 0.75), layout="constrained")
    for axes, (colormap, low, label) in zip(np.atleast_1d(figure.subplots(1, len(bars))), bars, strict=True):
        bar = figure.colorbar(ScalarMappable(Normalize(low, 1.0), colormap), cax=axes, orientation="horizontal")
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return save_figure(figure, path)


class FigureCall(NamedTuple):
    """One figure to draw: ``function(*args, path=path, **kwargs)`` writes ``path``."""

    function: Callable[..., Path]
    args: tuple
    path: Path
    kwargs: dict[str, Any]


def image_figure_calls(
    image: np.ndarray, explanation: ImageExplanation, directory: Path, *, categories: Sequence[str] | None = None
) -> dict[str, FigureCall]:
    """Every per-image figure of ``explanation``, not drawn yet: original, LIME views, one file per CAM.

    Name -> call; each call gets only what its figure shows (the figure cache keys on it)."""
    calls = {"original": FigureCall(plot_original, (image, explanation.prediction), directory / "original.png",
                                    {"categories": categories})}  # fmt: skip
    if explanation.lime is not None:
        lime = explanation.lime
        for name, function, extra in (
            ("lime_boundaries", plot_lime_boundaries, {}),
            ("lime_pros_cons", plot_lime_pros_cons, {"k": max(lime.ks)}),
            ("lime_weights", plot_lime_weights, {}),
        ):
            calls[name] = FigureCall(
                function, (image, lime), directory / f"{name}.png", {**extra, "categories": categories}
            )
    for cam in explanation.cams:
        calls[cam.method] = FigureCall(plot_cam, (image, cam), directory / f"cam_{cam.method}.png",
                                       {"categories": categories})  # fmt: skip
    return calls


def save_image_figures(
    image: np.ndarray, explanation: ImageExplanation, directory: Path, *, categories: Sequence[str] | None = None
) -> dict[str, Path]:
    """Every per-image figure into ``directory``: original, LIME views, one file per CAM. Returns name -> path."""
    return {
        name: call.function(*call.args, path=call.path, **call.kwargs)
        for name, call in image_figure_calls(image, explanation, directory, categories=categories).items()
    }
