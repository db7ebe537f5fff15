"""Deletion and insertion curves and their AUC (RISE; Petsiuk, Das & Saenko, BMVC 2018).

Protocol (as the reference ``evaluation.py`` of eclique/RISE, except where noted):

* Perturbations are made in the model's input space (after ``to_input``), as the reference does.
* Pixels are ordered by decreasing map value; equal values by a seeded random permutation (deviation: the
  reference's unstable argsort leaves the tie order arbitrary; a row-major order would delete the top rows of
  every flat region first). Maps that are all zero, constant or non-finite are excluded, never scored.
* Step: ``step_pixels = ceil(H·W / steps)`` pixels change per step, so a curve has
  ``n_steps = ceil(H·W / step_pixels)`` steps and ``n_steps + 1`` points; the fraction axis is
  ``min(i·step_pixels, H·W) / (H·W)``, so a shorter last step is integrated with its true width.
  The reference uses 224 pixels per step at 224² (224 steps); the default step count is the coarsest such that
  it and every finer candidate keep the measured AUC error against the reference within 0.005, worst case over
  a synthetic planted-evidence model at several softmax sharpness levels (``bench/bench_step_error.py``, stored
  in ``xai/compare/step_error.json`` and shown on the methods page; ``step_error_measurement()`` reads it).
  It is measured on that synthetic model, not on the user's: a steeper model can have a larger error.
* Deletion: the top pixels are replaced by **zero in normalised input space** (``deletion_baseline="zero"``,
  the reference's substrate: the dataset mean colour), or by black pixels (``"black"``, ``to_input`` of 0).
* Insertion: start from a blurred copy and paste original pixels back in the same order. The blur is the
  reference's exactly: kernel ``gaussian_filter(delta_11x11, σ = 5)`` applied per channel with zero padding 5.
* Score: softmax probability of ``target``. AUC = trapezoid rule over the fraction axis 0..1.
  Lower deletion AUC and higher insertion AUC are more faithful; ``insertion − deletion`` summarises both.
* Cost, exactly: the unperturbed image, the fully deleted image and the fully blurred image are the same for
  every map, so they are evaluated once; each map adds ``n_steps − 1`` interior points per curve. Total
  forward passes (images through the model) = ``3 + 2·M·(n_steps − 1)`` for ``M`` maps, run in batches of
  ``batch_size`` (the reference's per-map loop needs ``2·M·(n_steps + 1)``).

A LIME explanation enters as its superpixel-weight map (``segment_weights[segments]``). Baselines:
``random_draws`` smooth random maps per image (uniform noise on the CAM's own grid: ``random_cells``, which the
compare stage reads off the target layer (7x7 for ResNet50's ``layer4[-1]`` at 224², 14x14 for ViT-B/16's
tokens), by default ``H/32 x W/32``; upsampled bilinearly and min-max scaled exactly as the CAMs are; seeded per
draw from the ``seed`` argument, which the compare stage derives per image with ``image_seed`` so each image gets
its own draws), whose spread is reported, and the centre prior (``nulls.centre_prior_map``).

Caveat: removal metrics put the model out of distribution (grey or blurred patches it never saw), so a drop
can reflect the shape of the removed region rather than the evidence it held (ROAD; Rong, Leemann et al.,
ICML 2022). The scores rank maps under one removal protocol; they are not absolute faithfulness.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from xai.compare._parts import frozen_array
from xai.compare.nulls import CENTRE_METHOD, centre_prior_map, degenerate_reason, random_tie_ranks

RANDOM_METHOD = "random"
"""Base name of the smooth random baselines; draw ``i`` is ``"random:i"`` in a ``FaithfulnessResult``."""
RANDOM_DRAWS = 3
BLUR_SIZE = 11
BLUR_SIGMA = 5.0
DELETION_BASELINES = ("zero", "black")

ToInput = Callable[[np.ndarray], torch.Tensor]


def lime_pixel_map(segments: np.ndarray, segment_weights: np.ndarray) -> np.ndarray:
    """LIME's explanation as a pixel map: every pixel carries its superpixel's weight."""
    return np.asarray(segment_weights, dtype=np.float64)[np.asarray(segments)].astype(np.float32)


def random_map(shape: tuple[int, int], seed: int, cells: tuple[int, int] | None = None) -> np.ndarray:
    """A smooth seeded random map: uniform noise on a ``cells`` grid (default ``H/32 x W/32``, the CAM grid of
    a ResNet), resized bilinearly to ``shape`` and min-max scaled, as grad-cam post-processes a CAM."""
    import cv2

    height, width = shape
    rows, columns = cells or (max(1, height // 32), max(1, width // 32))
    noise = np.random.default_rng(seed).random((rows, columns)).astype(np.float32)
    upsampled = cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR)
    upsampled -= upsampled.min()
    return (upsampled / max(float(upsampled.max()), 1e-7)).astype(np.float32)


def image_seed(seed: int, image_sha256: str) -> int:
    """A stable per-image seed: the first 4 bytes of ``sha256("{seed}:{image_sha256}")`` (same image and config
    seed, same value in every run and process; a different image, a different value)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{image_sha256}".encode()).digest()[:4], "big")


def random_draw_names(draws: int) -> tuple[str, ...]:
    return tuple(f"{RANDOM_METHOD}:{i}" for i in range(draws))


STEP_ERROR_FILE = Path(__file__).with_name("step_error.json")


def step_error_measurement() -> dict[str, Any]:
    """The committed measurement of the AUC error of coarser step counts (see ``bench/bench_step_error.py``)."""
    return json.loads(STEP_ERROR_FILE.read_text())


def blur_kernel(size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The reference's ``gkern``: ``scipy.ndimage.gaussian_filter`` of a centred delta, size x size."""
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    return gaussian_filter(delta, sigma)


def blur_input(inputs: torch.Tensor) -> torch.Tensor:
    """Insertion start: each channel of ``(N, C, H, W)`` convolved with ``blur_kernel()``, zero padding."""
    channels = inputs.shape[1]
    kernel = torch.as_tensor(blur_kernel(), dtype=inputs.dtype, device=inputs.device)
    weight = kernel.expand(channels, 1, *kernel.shape).contiguous()
    return torch.nn.functional.conv2d(inputs, weight, padding=BLUR_SIZE // 2, groups=channels)


def pixel_ranks(saliency: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rank of each pixel (0 = most salient) in deletion order; ties by a seeded random permutation."""
    return random_tie_ranks(saliency, seed)


def auc(fractions: np.ndarray, scores: np.ndarray) -> float:
    """Trapezoid-rule area under ``scores`` over ``fractions`` (which run from 0 to 1)."""
    return float(np.trapezoid(np.asarray(scores, dtype=np.float64), np.asarray(fractions, dtype=np.float64)))


def forward_passes(n_maps: int, n_steps: int) -> int:  # n_maps counts every baseline map too
    """Images evaluated by ``faithfulness_image`` for ``n_maps`` maps with ``n_steps`` steps per curve."""
    return 3 + 2 * n_maps * (n_steps - 1)


def step_plan(n_pixels: int, steps: int) -> tuple[int, int, np.ndarray]:
    """``(step_pixels, n_steps, counts)``: pixels per step, actual steps and pixels changed at each point."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    step_pixels = math.ceil(n_pixels / steps)
    n_steps = math.ceil(n_pixels / step_pixels)
    counts = np.minimum(np.arange(n_steps + 1) * step_pixels, n_pixels)
    return step_pixels, n_steps, counts


@dataclass(frozen=True, eq=False)
class FaithfulnessResult:
    """Deletion/insertion curves of every map on one image; rows of the arrays follow ``methods``."""

    image_id: str
    target: int
    methods: tuple[str, ...]
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray
    step_pixels: int
    forward_passes: int
    deletion_baseline: str
    seed: int
    excluded: tuple[tuple[str, str], ...] = ()
    """``(method, reason)`` for maps that were not scored (all zero, constant, non-finite)."""

    _ARRAYS = ("fractions", "deletion", "insertion", "deletion_auc", "insertion_auc")

    def __post_init__(self) -> None:
        for name in self._ARRAYS:
            object.__setattr__(self, name, frozen_array(getattr(self, name), np.float64))
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "excluded", tuple((str(m), str(r)) for m, r in self.excluded))


def faithfulness_image(
    model: torch.nn.Module,
    to_input: ToInput,
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    target: int,
    *,
    steps: int = 112,
    batch_size: int = 16,
    seed: int = 0,
    image_id: str = "",
    include_random: bool = True,
    random_draws: int = RANDOM_DRAWS,
    include_centre: bool = True,
    deletion_baseline: str = "zero",
    random_cells: tuple[int, int] | None = None,
) -> FaithfulnessResult:
    """Deletion and insertion curves and AUCs of every map in ``maps`` (and a seeded random map), one image.

    Args:
        model: classifier in eval mode (raises if it is training; it is not modified).
        to_input: ``(N, H, W, 3)`` float array in 0..255 -> normalised ``(N, 3, H, W)`` tensor.
        image: uint8 ``(H, W, 3)``.
        maps: method -> ``(H, W)`` saliency (any scale; only the order matters). Pass LIME as
            ``lime_pixel_map(segments, weights)`` (``explanation_maps`` does).
        target: class index whose softmax probability is tracked.
        steps: requested number of steps per curve (see the module docstring for the exact plan).
        batch_size: images per forward call; the number of images is fixed by the plan, not by this.
        seed: seeds the random maps (draw ``i`` uses ``seed * 1000 + i``) and the tie-breaking permutations; pass
            ``image_seed(config_seed, image_sha256)`` so that different images get different random maps.
        include_random: add ``random_draws`` smooth random maps ``"random:0"``, ``"random:1"``, ...
        include_centre: add the centre-prior map ``"centre"``.
        deletion_baseline: ``"zero"`` (0 in normalised space, the reference) or ``"black"`` (black pixels).
        random_cells: the grid of the smooth random maps, the CAMs' own (target layer's) grid; None:
            ``H/32 x W/32``, a ResNet's.
    """
    if model.training:
        raise ValueError("faithfulness_image needs the model in eval mode")
    if deletion_baseline not in DELETION_BASELINES:
        raise ValueError(f"deletion_baseline must be one of {DELETION_BASELINES}, got {deletion_baseline!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    image = np.asarray(image)
    height, width = image.shape[:2]
    all_maps: dict[str, np.ndarray] = {}
    excluded = []
    reserved = {CENTRE_METHOD, RANDOM_METHOD, *random_draw_names(random_draws)}
    for name, saliency in maps.items():
        if name in reserved or name.startswith(f"{RANDOM_METHOD}:"):
            raise ValueError(f"method name {name!r} is reserved for a baseline map")
        if np.shape(saliency) != (height, width):
            raise ValueError(f"map {name!r} has shape {np.shape(saliency)}, image is {(height, width)}")
        reason = degenerate_reason(saliency)
        if reason:
            excluded.append((name, reason))
        else:
            all_maps[name] = np.asarray(saliency)
    if include_random:
        for index, name in enumerate(random_draw_names(random_draws)):
            all_maps[name] = random_map((height, width), seed * 1000 + index, random_cells)
    if include_centre:
        all_maps[CENTRE_METHOD] = centre_prior_map((height, width))
    device = next(model.parameters()).device
    original = to_input(image[None].astype(np.float32))[0].to(device)
    if deletion_baseline == "zero":
        substrate = torch.zeros_like(original)
    else:
        substrate = to_input(np.zeros((1, height, width, 3), np.float32))[0].to(device)
    start = blur_input(original[None])[0]
    n_pixels = height * width
    step_pixels, n_steps, counts = step_plan(n_pixels, steps)
    ranks = [
        torch.as_tensor(pixel_ranks(saliency, seed * 1000 + index), device=device)
        for index, saliency in enumerate(all_maps.values())
    ]

    def perturbed(job: tuple[int, str, int]) -> torch.Tensor:
        map_index, kind, count = job
        if map_index < 0:
            return {"original": original, "deleted": substrate, "blurred": start}[kind]
        changed = ranks[map_index] < count
        if kind == "deletion":
            return torch.where(changed, substrate, original)
        return torch.where(changed, original, start)

    shared = [(-1, "original", 0), (-1, "deleted", 0), (-1, "blurred", 0)]
    interior = [
        (m, kind, int(count)) for m in range(len(ranks)) for kind in ("deletion", "insertion") for count in counts[1:-1]
    ]
    jobs = shared + interior
    scores = _target_probabilities(model, (perturbed(job) for job in jobs), len(jobs), target, batch_size)
    p_original, p_deleted, p_blurred = scores[:3]
    n_maps = len(ranks)
    inner = scores[3:].reshape(n_maps, 2, n_steps - 1)
    ends = np.ones((n_maps, 1))
    deletion = np.concatenate([p_original * ends, inner[:, 0], p_deleted * ends], axis=1)
    insertion = np.concatenate([p_blurred * ends, inner[:, 1], p_original * ends], axis=1)
    fractions = counts / n_pixels
    return FaithfulnessResult(
        image_id=image_id,
        target=int(target),
        methods=tuple(all_maps),
        fractions=fractions,
        deletion=deletion,
        insertion=insertion,
        deletion_auc=np.array([auc(fractions, curve) for curve in deletion]),
        insertion_auc=np.array([auc(fractions, curve) for curve in insertion]),
        step_pixels=step_pixels,
        forward_passes=len(jobs),
        deletion_baseline=deletion_baseline,
        seed=seed,
        excluded=tuple(excluded),
    )


def _target_probabilities(
    model: torch.nn.Module, inputs: Iterator[torch.Tensor], total: int, target: int, batch_size: int
) -> np.ndarray:
    """Softmax probability of ``target`` for each input, ``batch_size`` inputs per forward call."""
    scores = np.empty(total)
    done = 0
    with torch.inference_mode():
        while done < total:
            batch = torch.stack([next(inputs) for _ in range(min(batch_size, total - done))])
            # channels_last input (as xai.explain.inference.fast_layout, for which the batch size was measured):
            # the same values, ~1.3-1.9x faster convolutions on CPU
            batch = batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
            probabilities = torch.softmax(model(batch).double(), dim=1)[:, target]
            scores[done : done + len(batch)] = probabilities.cpu().numpy()
            done += len(batch)
    return scores
