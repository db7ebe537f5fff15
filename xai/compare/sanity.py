"""Cascading model-parameter randomisation check (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

Protocol:

* Work on a deep copy of the model (the caller's model is never modified). Compute every method's maps on it.
* Cascade from the output towards the input: at step ``i`` re-initialise every module of ``layer_groups[i]``
  (keeping the earlier steps' randomisation) and recompute the maps. The groups follow the architecture
  (:func:`xai.compare.layer_groups.layer_groups`: the classifier head, the trunk's stages last to first, the stem;
  for a ResNet ``fc, layer4, layer3, layer2, layer1, conv1+bn1``).
* Re-initialisation calls each submodule's own ``reset_parameters()`` (PyTorch's default init, as Quantus MPRT
  does; ``_reset_parameters`` for ``MultiheadAttention``) under ``torch.manual_seed(seed + i)`` inside
  ``torch.random.fork_rng()``, so it is seeded and the caller's global RNG is left as it was. Parameters no such
  method covers (ViT's class token and position embedding, ConvNeXt's layer scale, Swin's relative position bias
  table) get torchvision's own initialisation (:data:`xai.compare.layer_groups.PARAMETER_INITS`). Deviation: the
  paper draws from a truncated normal; BatchNorm layers reset to γ = 1, β = 0 and running statistics 0/1, which
  is a re-initialisation rather than random values.
* Similarity of each map to the original: Spearman ρ of the flattened maps, signed and absolute (the paper
  reports both), and SSIM (``skimage.metrics.structural_similarity``, data range 1, maps in [0, 1]).
  A map that is constant (the original or the randomised one) has no ranking and no structure to compare: its
  ρ, |ρ| and SSIM are NaN, left out of every mean, and counted per method and step in ``constant`` (the page
  gives the count and the reason).
* Warnings: ``explain_fn`` may return a ``SanityMaps`` whose ``warnings`` (e.g. AblationCAM's sign flip on a
  negative logit, frequent once the top layers are random) are kept per model state in ``warnings``.
* Several images: ``explain_fn`` may return ``(N, H, W)`` stacks; similarities are kept per image
  (``(methods, steps, images)`` arrays) and the table gives each mean with its 95% interval over images
  (``intervals.mean_interval``: t-based at the usual 3 images).
* No pass/fail cut-off: the numbers are reported beside two reference points. The model-independent control is
  an edge detector (Sobel magnitude of the image, the paper's control), whose similarity stays 1 at every step
  by construction; and Adebayo et al. (2018, Fig. 2, cascading randomisation of Inception v3) report
  that Guided Backprop's maps stay similar to the original while Gradient and Grad-CAM maps change.
* A method that is costly under randomisation may run with a cheaper budget than in the explanation stage;
  ``budgets`` records which and how (shown on the page).
* With random weights to begin with, the check is meaningless: ``sanity_check(..., weights_are_random=True)``
  computes nothing and returns a result that says so.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from skimage.metrics import structural_similarity

from xai.compare._parts import frozen_array
from xai.compare.layer_groups import layer_groups as derived_layer_groups
from xai.compare.layer_groups import reinitialise_parameter, reset_module
from xai.compare.stats import mean_interval

if TYPE_CHECKING:
    from torch import nn

    from xai.architectures import TargetLayer
    from xai.explain.lime_image import LimeParams

EDGE_METHOD = "edge detector (control)"

ExplainFn = Callable[[torch.nn.Module], Mapping[str, np.ndarray]]
CONSTANT_REASON = "the map is constant, so it has no ranking (ρ undefined) and no structure (SSIM not scored)"
ORIGINAL_STATE = "original"


class SanityMaps(dict):
    """``{method: maps}`` as ``explain_fn`` returns them, plus the warnings the methods raised on this model."""

    def __init__(self, maps: Mapping[str, np.ndarray], warnings: Sequence[str] = ()) -> None:
        super().__init__(maps)
        self.warnings = tuple(warnings)


LayerGroups = Sequence[str | Sequence[str]]


@dataclass(frozen=True, eq=False)
class SanityResult:
    """Similarity of each method's maps to the original after each cascading randomisation step.

    ``spearman``, ``spearman_abs`` and ``ssim`` are ``(methods, steps, images)``; ``steps`` names the groups
    randomised at each step (cumulative). Empty, with ``weights_are_random`` set, when the check was skipped.
    ``budgets`` maps a method to a note on the cheaper budget it ran with under randomisation.
    """

    weights_are_random: bool
    methods: tuple[str, ...]
    steps: tuple[str, ...]
    spearman: np.ndarray
    spearman_abs: np.ndarray
    ssim: np.ndarray
    seed: int
    budgets: tuple[tuple[str, str], ...] = ()
    skip_reason: str = ""
    constant: np.ndarray | None = None
    """``(methods, steps)`` count of images whose map (original or randomised) was constant: not scored."""
    warnings: tuple[tuple[str, str], ...] = ()
    """``(model state, warning)``: the state is ``"original"`` or a step name."""

    def __post_init__(self) -> None:
        for name in ("spearman", "spearman_abs", "ssim"):
            array = frozen_array(getattr(self, name), np.float64)
            object.__setattr__(
                self,
                name,
                array.reshape(len(self.methods), len(self.steps), -1)
                if array.size
                else array.reshape(len(self.methods), len(self.steps), 0),
            )
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "budgets", tuple((str(m), str(n)) for m, n in self.budgets))
        constant = np.zeros((len(self.methods), len(self.steps))) if self.constant is None else self.constant
        object.__setattr__(
            self, "constant", frozen_array(np.asarray(constant).reshape(len(self.methods), len(self.steps)), np.int64)
        )
        object.__setattr__(self, "warnings", tuple((str(state), str(text)) for state, text in self.warnings))

    @property
    def n_images(self) -> int:
        return int(self.spearman.shape[2])

    @classmethod
    def skipped(cls, methods: Sequence[str] = (), seed: int = 0, reason: str = "random weights") -> SanityResult:
        """Nothing computed; ``weights_are_random`` set when that is the reason."""
        empty = np.zeros((len(methods), 0, 0))
        return cls(reason == "random weights", tuple(methods), (), empty, empty, empty, seed, skip_reason=reason)


def sanity_table(result: SanityResult | None, *, seed: int = 0) -> pd.DataFrame:
    """One row per method x step: mean signed/absolute Spearman ρ and SSIM with 95% intervals (``intervals``)."""
    columns = [
        "method",
        "step_index",
        "step",
        "n_images",
        "n_constant",
        "spearman_mean",
        "spearman_low",
        "spearman_high",
        "spearman_abs_mean",
        "spearman_abs_low",
        "spearman_abs_high",
        "ssim_mean",
        "ssim_low",
        "ssim_high",
    ]
    if result is None or not result.steps:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("method", "step") else float) for c in columns})
    rows = []
    for row, method in enumerate(result.methods):
        for step, name in enumerate(result.steps):
            absolute = mean_interval(result.spearman_abs[row, step], seed=seed, bounds=(0.0, 1.0))
            ssim = mean_interval(result.ssim[row, step], seed=seed, bounds=(-1.0, 1.0))
            signed = mean_interval(result.spearman[row, step], seed=seed, bounds=(-1.0, 1.0))
            constant = int(result.constant[row, step])
            rows.append(
                {
                    "method": method,
                    "step_index": step,
                    "step": name,
                    "n_images": result.n_images - constant,
                    "n_constant": constant,
                    "spearman_mean": signed[0],
                    "spearman_low": signed[1],
                    "spearman_high": signed[2],
                    "spearman_abs_mean": absolute[0],
                    "spearman_abs_low": absolute[1],
                    "spearman_abs_high": absolute[2],
                    "ssim_mean": ssim[0],
                    "ssim_low": ssim[1],
                    "ssim_high": ssim[2],
                }
            )
    return pd.DataFrame(rows, columns=columns)


def edge_map(image: np.ndarray) -> np.ndarray:
    """The model-independent control: Sobel gradient magnitude of the grey image, min-max scaled to [0, 1]."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    edges = sobel(rgb2gray(np.asarray(image)))
    span = float(np.ptp(edges))
    return (edges - edges.min()) / span if span > 0 else np.zeros_like(edges)


def map_similarity(original: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """``(Spearman ρ of the flattened maps, SSIM)``; ρ is NaN if either map is constant."""
    a, b = np.asarray(original, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    rho = math.nan if np.ptp(a) == 0 or np.ptp(b) == 0 else float(stats.spearmanr(a.ravel(), b.ravel()).statistic)
    side = min(a.shape)
    window = min(7, side if side % 2 else side - 1)  # skimage needs an odd window no larger than the map
    return rho, float(structural_similarity(a, b, data_range=1.0, win_size=window))


def randomise_modules(model: torch.nn.Module, names: Sequence[str], seed: int) -> int:
    """Re-initialise (in place) every submodule of the named modules, or the named parameters; returns the count
    of modules reset and parameters re-drawn.

    Each submodule's ``reset_parameters`` (``_reset_parameters`` for ``MultiheadAttention``); a parameter none
    covers (or one named directly, e.g. ``class_token``) by :func:`xai.compare.layer_groups.reinitialise_parameter`,
    which raises for a parameter whose initialisation is unknown. Seeded through ``torch.manual_seed(seed)`` inside
    ``fork_rng`` so the global RNG is restored afterwards.
    """
    reset = 0
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for name in names:
            try:
                module = model.get_submodule(name)
            except AttributeError:
                reinitialise_parameter(name, model.get_parameter(name))  # raises AttributeError if neither
                reset += 1
                continue
            covered: set[int] = set()
            for submodule in module.modules():
                if reset_module(submodule):
                    covered.update(id(p) for p in submodule.parameters(recurse=False))
                    reset += 1
            for path, parameter in module.named_parameters():
                if id(parameter) not in covered:
                    reinitialise_parameter(f"{name}.{path}", parameter)
                    reset += 1
            # BatchNorm's reset_parameters also resets running stats; other buffers are left as they are.
    return reset


def sanity_check(
    model: torch.nn.Module,
    explain_fn: ExplainFn,
    layer_groups: LayerGroups | None = None,
    *,
    seed: int = 0,
    weights_are_random: bool = False,
    budgets: Mapping[str, str] | None = None,
) -> SanityResult:
    """Run the cascading randomisation check.

    Args:
        model: the trained model; never modified (a deep copy is randomised).
        explain_fn: ``explain_fn(model) -> {method: map}``, maps ``(H, W)`` or ``(N, H, W)`` in [0, 1] for
            fixed inputs and fixed target classes; called ``len(layer_groups) + 1`` times.
        layer_groups: module names (or tuples of names) to re-initialise, from the logits down, cumulatively;
            None derives them from the architecture (:func:`xai.compare.layer_groups.layer_groups`).
        seed: step ``i`` re-initialises under ``torch.manual_seed(seed + i)``.
        weights_are_random: the model has random weights: compute nothing and return ``SanityResult.skipped``.
        budgets: method -> note on a cheaper budget used under randomisation (recorded for the page).
    """
    if weights_are_random:
        return SanityResult.skipped(seed=seed)
    if layer_groups is None:
        layer_groups = derived_layer_groups(model)
    groups = [(group,) if isinstance(group, str) else tuple(group) for group in layer_groups]
    if not groups:
        raise ValueError("layer_groups is empty")
    working = copy.deepcopy(model)
    first = explain_fn(working)
    warnings = [(ORIGINAL_STATE, text) for text in getattr(first, "warnings", ())]
    original = {name: _as_stack(maps) for name, maps in first.items()}
    methods = tuple(original)
    n_images = {stack.shape[0] for stack in original.values()}
    if len(n_images) != 1:
        raise ValueError(f"methods returned different numbers of maps: {sorted(n_images)}")
    images = n_images.pop()
    spearman = np.full((len(methods), len(groups), images), np.nan)
    spearman_abs = np.full_like(spearman, np.nan)
    ssim = np.full_like(spearman, np.nan)
    constant = np.zeros((len(methods), len(groups)), dtype=np.int64)
    for step, group in enumerate(groups):
        randomise_modules(working, group, seed + step)
        maps = explain_fn(working)
        warnings.extend(("+".join(group), text) for text in getattr(maps, "warnings", ()))
        for row, method in enumerate(methods):
            for image, (a, b) in enumerate(zip(original[method], _as_stack(maps[method]), strict=True)):
                if np.ptp(a) == 0 or np.ptp(b) == 0:
                    constant[row, step] += 1
                    continue
                rho, value = map_similarity(a, b)
                spearman[row, step, image], spearman_abs[row, step, image] = rho, abs(rho)
                ssim[row, step, image] = value
    return SanityResult(
        weights_are_random=False,
        methods=methods,
        steps=tuple("+".join(group) for group in groups),
        spearman=spearman,
        spearman_abs=spearman_abs,
        ssim=ssim,
        seed=seed,
        budgets=tuple((budgets or {}).items()),
        constant=constant,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _as_stack(maps: np.ndarray) -> np.ndarray:
    stack = np.asarray(maps, dtype=np.float64)
    if stack.ndim == 2:
        return stack[None]
    if stack.ndim != 3:
        raise ValueError(f"explain_fn must return (H, W) or (N, H, W) maps, got shape {stack.shape}")
    return stack


def sanity_explain_fn(
    images: list[tuple[np.ndarray, np.ndarray, int]],
    methods: list[str],
    *,
    target: TargetLayer | str,
    to_input: Callable[[np.ndarray], torch.Tensor] | None = None,
    lime_params: LimeParams,
    seed: int,
    batch_size: int,
    device: torch.device | str = "cpu",
) -> Callable[[nn.Module], SanityMaps]:
    """``explain_fn(model) -> {method: (N, H, W) maps}`` for the sanity check, plus the edge-detector control.

    ``images`` are ``(pixels, LIME segments, target class)``: every model state explains the same class on the
    same segmentation. LIME runs with ``lime_params`` (a cheaper sample budget) and ``label=target``, and its
    pixel-weight map is min-max scaled to [0, 1]; CAMs come from ``compute_cam`` on the ``target`` layer (a
    :class:`xai.architectures.TargetLayer`, whose reshape they honour, or a module path of a map-output layer), at
    full cost for ScoreCAM and AblationCAM. ``to_input`` normalises pixels for the model (the weights' mean and
    std; ImageNet's when None). The maps come back as a ``SanityMaps`` carrying every CAM's warning (AblationCAM's
    sign flip on a negative logit), named by method and image position, so the check keeps them per model state.
    """
    from xai.architectures import TargetLayer, resolve_layer
    from xai.compare.per_image import LIME_METHOD
    from xai.explain.cams.base import compute_cam
    from xai.explain.lime_image import run_lime
    from xai.explain.registry import METHODS
    from xai.models import to_input as imagenet_input

    if isinstance(target, str):
        target = TargetLayer(target, "given")
    normalise = to_input or imagenet_input

    def explain_fn(model: Any) -> Any:
        layer = resolve_layer(model, target.path)
        maps: dict[str, list[np.ndarray]] = {method: [] for method in [*methods, EDGE_METHOD]}
        warnings: list[str] = []
        for index, (pixels, segments, label) in enumerate(images, start=1):
            tensor = normalise(pixels[None]).to(device)
            for method in methods:
                if method == LIME_METHOD:
                    result = run_lime(
                        model,
                        pixels,
                        to_input=normalise,
                        params=lime_params,
                        seed=seed,
                        batch_size=batch_size,
                        segments=segments,
                        label=label,
                    )
                    maps[method].append(unit_range(result.pixel_weights()))
                else:
                    cam_batch = batch_size if METHODS[method].batched else None
                    cam = compute_cam(model, tensor, method, layer, label, batch_size=cam_batch, reshape=target.reshape)
                    maps[method].append(cam.map)
                    if cam.warning:
                        warnings.append(f"sanity image {index}: {cam.warning}")
            maps[EDGE_METHOD].append(edge_map(pixels))
        return SanityMaps({method: np.stack(stack) for method, stack in maps.items()}, warnings)

    return explain_fn


def unit_range(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (SSIM's data range); a constant map becomes all zero."""
    values = np.asarray(values, dtype=np.float64)
    span = float(np.ptp(values))
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)
