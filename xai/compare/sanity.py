"""Cascading model-parameter randomisation check (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

Protocol:

* Work on a deep copy of the model (the caller's model is never modified). Compute every method's maps on it.
* Cascade from the output towards the input: at step ``i`` re-initialise every module of ``layer_groups[i]``
  (keeping the earlier steps' randomisation) and recompute the maps.
* Re-initialisation calls each submodule's own ``reset_parameters()`` (PyTorch's default init, as Quantus MPRT
  does) under ``torch.manual_seed(seed + i)`` inside ``torch.random.fork_rng()``, so it is seeded and the
  caller's global RNG is left as it was. Deviation: the paper draws from a truncated normal; BatchNorm layers
  reset to γ = 1, β = 0 and running statistics 0/1, which is a re-initialisation rather than random values.
* Similarity of each map to the original: Spearman ρ of the flattened maps, signed and absolute (the paper
  reports both), and SSIM (``skimage.metrics.structural_similarity``, data range 1, maps in [0, 1]).
  A map that became constant has no ranking: its ρ is NaN (left out of the signed mean) and counts as |ρ| = 0.
* Several images: ``explain_fn`` may return ``(N, H, W)`` stacks; similarities are computed per image and
  averaged (``spearman``: mean signed ρ; ``spearman_abs``: mean |ρ|; ``ssim``: mean SSIM).
* Pass/fail: a method **passes** when its mean |ρ| at the last step (model randomised down to the last group)
  is below ``SANITY_MAX_SIMILARITY`` = 0.5; a method whose maps stay that similar after the weights they are
  supposed to explain are gone fails, as Guided Backprop does in the paper.
* With random weights to begin with, the check is meaningless: ``sanity_check(..., weights_are_random=True)``
  computes nothing and returns a result that says so.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats
from skimage.metrics import structural_similarity

from xai.compare._parts import Parts, from_json_float, frozen_array, json_float

SANITY_MAX_SIMILARITY = 0.5
RESNET_LAYER_GROUPS: tuple[tuple[str, ...], ...] = (
    ("fc",), ("layer4",), ("layer3",), ("layer2",), ("layer1",), ("conv1", "bn1"),
)  # fmt: skip
"""Cascade for a torchvision ResNet, top (logits) to bottom (input)."""

ExplainFn = Callable[[torch.nn.Module], Mapping[str, np.ndarray]]
LayerGroups = Sequence[str | Sequence[str]]


@dataclass(frozen=True, eq=False)
class SanityResult:
    """Similarity of each method's maps to the original after each cascading randomisation step.

    ``spearman``, ``spearman_abs`` and ``ssim`` are ``(methods, steps)`` means over ``n_images``; ``steps``
    names the groups randomised at each step (cumulative). Empty, with ``weights_are_random`` set, when the
    check was skipped as meaningless.
    """

    weights_are_random: bool
    methods: tuple[str, ...]
    steps: tuple[str, ...]
    spearman: np.ndarray
    ssim: np.ndarray
    passed: np.ndarray
    threshold: float
    seed: int
    spearman_abs: np.ndarray | None = None
    n_images: int = 1

    def __post_init__(self) -> None:
        shape = (len(self.methods), len(self.steps))
        object.__setattr__(self, "spearman", frozen_array(self.spearman, np.float64).reshape(shape))
        object.__setattr__(self, "ssim", frozen_array(self.ssim, np.float64).reshape(shape))
        absolute = np.abs(np.nan_to_num(self.spearman)) if self.spearman_abs is None else self.spearman_abs
        object.__setattr__(self, "spearman_abs", frozen_array(absolute, np.float64).reshape(shape))
        object.__setattr__(self, "passed", frozen_array(self.passed, bool).reshape(len(self.methods)))
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "steps", tuple(self.steps))

    def to_parts(self) -> Parts:
        arrays = {
            "spearman": np.array(self.spearman),
            "ssim": np.array(self.ssim),
            "passed": np.array(self.passed),
            "spearman_abs": np.array(self.spearman_abs),
        }
        meta: dict[str, Any] = {
            "weights_are_random": self.weights_are_random,
            "methods": list(self.methods),
            "steps": list(self.steps),
            "threshold": json_float(self.threshold),
            "seed": self.seed,
            "n_images": self.n_images,
        }
        return arrays, meta

    @classmethod
    def from_parts(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> SanityResult:
        return cls(
            weights_are_random=bool(meta["weights_are_random"]),
            methods=tuple(meta["methods"]),
            steps=tuple(meta["steps"]),
            spearman=arrays["spearman"],
            ssim=arrays["ssim"],
            passed=arrays["passed"],
            spearman_abs=arrays["spearman_abs"],
            n_images=int(meta["n_images"]),
            threshold=from_json_float(meta["threshold"]),
            seed=int(meta["seed"]),
        )

    @classmethod
    def skipped(cls, methods: Sequence[str] = (), seed: int = 0) -> SanityResult:
        """The result for a model with random weights: nothing computed, ``weights_are_random`` set."""
        return cls(True, tuple(methods), (), np.zeros((len(methods), 0)), np.zeros((len(methods), 0)),
                   np.zeros(len(methods), bool), SANITY_MAX_SIMILARITY, seed)  # fmt: skip


def map_similarity(original: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """``(Spearman ρ of the flattened maps, SSIM)``; ρ is NaN if either map is constant."""
    a, b = np.asarray(original, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    rho = (
        math.nan
        if np.ptp(a) == 0 or np.ptp(b) == 0
        else float(stats.spearmanr(a.ravel(), b.ravel()).statistic)
    )
    side = min(a.shape)
    window = min(7, side if side % 2 else side - 1)  # skimage needs an odd window no larger than the map
    return rho, float(structural_similarity(a, b, data_range=1.0, win_size=window))


def randomise_modules(model: torch.nn.Module, names: Sequence[str], seed: int) -> int:
    """Re-initialise (in place) every submodule of the named modules with ``reset_parameters``; returns count.

    Seeded through ``torch.manual_seed(seed)`` inside ``fork_rng`` so the global RNG is restored afterwards.
    Raises if a named module has parameters that no ``reset_parameters`` covers.
    """
    reset = 0
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for name in names:
            module = model.get_submodule(name)
            covered: set[int] = set()
            for submodule in module.modules():
                if hasattr(submodule, "reset_parameters"):
                    submodule.reset_parameters()
                    covered.update(id(p) for p in submodule.parameters(recurse=False))
                    reset += 1
            uncovered = [n for n, p in module.named_parameters() if id(p) not in covered]
            if uncovered:
                raise ValueError(f"module {name!r} has parameters without reset_parameters: {uncovered}")
            # BatchNorm's reset_parameters also resets running stats; other buffers are left as they are.
    return reset


def sanity_check(
    model: torch.nn.Module,
    explain_fn: ExplainFn,
    layer_groups: LayerGroups = RESNET_LAYER_GROUPS,
    *,
    seed: int = 0,
    weights_are_random: bool = False,
    threshold: float = SANITY_MAX_SIMILARITY,
) -> SanityResult:
    """Run the cascading randomisation check.

    Args:
        model: the trained model; never modified (a deep copy is randomised).
        explain_fn: ``explain_fn(model) -> {method: map}``, maps ``(H, W)`` or ``(N, H, W)`` in [0, 1] for
            fixed inputs and fixed target classes; called ``len(layer_groups) + 1`` times.
        layer_groups: module names (or tuples of names) to re-initialise, from the logits down, cumulatively.
        seed: step ``i`` re-initialises under ``torch.manual_seed(seed + i)``.
        weights_are_random: the model has random weights: compute nothing and return ``SanityResult.skipped``.
        threshold: largest mean |ρ| at the last step that still passes.
    """
    if weights_are_random:
        return SanityResult.skipped(seed=seed)
    groups = [(group,) if isinstance(group, str) else tuple(group) for group in layer_groups]
    if not groups:
        raise ValueError("layer_groups is empty")
    working = copy.deepcopy(model)
    original = {name: _as_stack(maps) for name, maps in explain_fn(working).items()}
    methods = tuple(original)
    n_images = {stack.shape[0] for stack in original.values()}
    if len(n_images) != 1:
        raise ValueError(f"methods returned different numbers of maps: {sorted(n_images)}")
    spearman = np.full((len(methods), len(groups)), np.nan)
    spearman_abs = np.full_like(spearman, np.nan)
    ssim = np.full_like(spearman, np.nan)
    for step, group in enumerate(groups):
        randomise_modules(working, group, seed + step)
        maps = explain_fn(working)
        for row, method in enumerate(methods):
            pairs = [
                map_similarity(a, b) for a, b in zip(original[method], _as_stack(maps[method]), strict=True)
            ]
            rhos = np.array([rho for rho, _ in pairs])
            spearman[row, step] = np.nan if np.all(np.isnan(rhos)) else float(np.nanmean(rhos))
            spearman_abs[row, step] = float(np.mean(np.abs(np.nan_to_num(rhos, nan=0.0))))
            ssim[row, step] = float(np.mean([value for _, value in pairs]))
    return SanityResult(
        weights_are_random=False,
        methods=methods,
        steps=tuple("+".join(group) for group in groups),
        spearman=spearman,
        ssim=ssim,
        passed=spearman_abs[:, -1] < threshold,
        threshold=threshold,
        seed=seed,
        spearman_abs=spearman_abs,
        n_images=n_images.pop(),
    )


def _as_stack(maps: np.ndarray) -> np.ndarray:
    stack = np.asarray(maps, dtype=np.float64)
    if stack.ndim == 2:
        return stack[None]
    if stack.ndim != 3:
        raise ValueError(f"explain_fn must return (H, W) or (N, H, W) maps, got shape {stack.shape}")
    return stack
