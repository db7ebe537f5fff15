"""Task 4: LIME vs CAM, from the explain stage's cached masks and maps (never recomputed here).

Per image: agreement + complexity + the superpixel null (no model calls) and deletion/insertion faithfulness
(a known number of forward passes); once: the cascading parameter-randomisation sanity check on the first
images (LIME at a cheaper sample budget; ScoreCAM and AblationCAM at full cost) beside a model-independent edge
detector; then the cross-image null (needs every image's maps; arithmetic only, not cached) and the summary.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from xai import compare
from xai.cache import code_version
from xai.stages import NotCachedError, StageCache
from xai.stages import explain as explain_stage

if TYPE_CHECKING:
    import torch
    from torch import nn

    from xai.architectures import TargetLayer
    from xai.compare import ComparisonSummary, FaithfulnessResult, ImageComparison, SanityResult
    from xai.compare.per_image import CrossImageInput
    from xai.compare.sanity import SanityMaps
    from xai.config import Config
    from xai.explain.artifacts import ImageExplanation
    from xai.explain.lime_image import LimeParams
    from xai.pipeline import RunContext
    from xai.stages.explain import ExplainArtifacts, ExplainedImage

STAGE = "compare"


@dataclass
class CompareArtifacts:
    comparisons: list[ImageComparison] = field(default_factory=list)
    """agreement and complexity, per image"""
    faithfulness: list[FaithfulnessResult] = field(default_factory=list)
    """deletion/insertion, per image"""
    sanity: SanityResult | None = None
    summary: ComparisonSummary | None = None
    explain: ExplainArtifacts | None = None
    """The explain stage's artifacts these were computed from (for the side-by-side panels)."""
    cam_grid: tuple[int, int] | None = None
    """(h, w) of the CAM target layer's map at the images' size: the grid of the smooth random baselines."""
    cascade: tuple[str, ...] = ()
    """The sanity check's steps for this architecture (``fc``, ``layer4``, ..., ``conv1+bn1``), also when the
    check is skipped (for the pages)."""


def _base_parts(context: RunContext, image_sha: str) -> dict[str, Any]:
    config = context.config
    target = explain_stage.explain_target(config).target
    return {
        "image": image_sha,
        # the explained classifier: display name, architecture, weights member and file, class file, preprocessing
        **explain_stage.classifier_parts(config),
        "seed": config.seed,
        "explain": {
            "methods": list(config.explain.methods),
            "lime": config.explain.lime.model_dump(),
            "target_layer": target.path,
            "reshape": target.reshape,
            "preprocess": config.explain.preprocess,
        },
        "code": code_version("compare", "explain"),
    }


def sanity_groups(config: Config) -> tuple[tuple[str, ...], ...]:
    """The sanity check's cascade for the explained architecture (:func:`xai.compare.layer_groups`), found on the
    ``meta`` device: no weights, no compute (for the plan; the check derives the same from the loaded model)."""
    spec = config.explain.spec()
    return _architecture_groups(spec.name, spec.weights)


def cam_grid(config: Config, image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(h, w) of the CAM target layer's map (after its reshape) for images of ``image_shape``: the CAMs' own grid,
    on which the smooth random baselines are drawn (7x7 for resnet50's ``layer4[-1]`` at 224², 14x14 for ViT-B/16's
    tokens, 24x24 for its SWAG weights at 384 px). Found on the ``meta`` device: no weights, no compute."""
    spec = config.explain.spec()
    target = explain_stage.explain_target(config).target
    return _cam_grid(spec.name, spec.weights, target.path, target.reshape, int(image_shape[0]), int(image_shape[1]))


@functools.cache
def _cam_grid(name: str, weights: str, path: str, reshape: str | None, height: int, width: int) -> tuple[int, int]:
    import torch

    from xai.architectures import device_of, reshape_transform, resolve_layer, shape_model

    shapes: list[tuple[int, ...]] = []
    transform = reshape_transform(reshape) or (lambda tensor: tensor)
    model = shape_model(name, weights)
    with torch.device(device_of(model)), torch.no_grad():
        handle = resolve_layer(model, path).register_forward_hook(
            lambda _module, _inputs, output: shapes.append(tuple(transform(output).shape))
        )
        try:
            model(torch.empty(1, 3, height, width))
        finally:
            handle.remove()
    return int(shapes[0][2]), int(shapes[0][3])


@functools.cache
def _architecture_groups(name: str, weights: str) -> tuple[tuple[str, ...], ...]:
    import torch

    from xai.architectures import device_of, shape_model

    model = shape_model(name, weights)
    with torch.device(device_of(model)), torch.no_grad():
        return compare.layer_groups(model)


def describe(context: RunContext) -> str:
    from xai.compare import forward_passes

    config = context.config
    settings = config.compare
    maps = len(config.explain.methods) + settings.random_draws + 1  # LIME + CAMs, random draws, centre prior
    per_image = forward_passes(maps, settings.faithfulness_steps)
    if config.weights == "random" or not settings.sanity_check:
        sanity = "sanity check skipped (random weights)" if settings.sanity_check else "sanity check disabled"
    else:
        groups = sanity_groups(config)
        sanity = (
            f"sanity check on {settings.sanity_images} image(s) x {len(sanity_methods(config))} "
            f"methods x {len(groups) + 1} model states ({config.explain.spec().display_name} randomised from "
            f"{'+'.join(groups[0])} down to {'+'.join(groups[-1])})"
        )
    return (
        f"agreement of {len(config.explain.methods) - 1} CAMs with LIME, deletion/insertion over {maps} maps "
        f"({per_image:,} forward passes per image), {sanity}"
    )


def sanity_methods(config: Config) -> list[str]:
    return [m for m in config.compare.sanity_methods if m in config.explain.methods]


def seed_weights(explanation: ImageExplanation) -> tuple[np.ndarray, tuple[int, ...]]:
    """Every LIME seed's superpixel weights ``(n_seeds, S)`` and the seeds; seed 0's alone without stability."""
    lime, stability = explanation.lime, explanation.stability
    if stability is not None and stability.weights is not None and stability.weights.shape[1] == lime.weights.size:
        return np.asarray(stability.weights), tuple(stability.seeds)
    return lime.weights[None], (lime.seed,)


def notes(explained: ExplainArtifacts) -> list[str]:
    """Caveats recorded by the explain stage: LIME label != top-1, AblationCAM with a negative logit."""
    found = []
    for item in explained.images:
        explanation = item.explanation
        top1 = explanation.prediction.top1
        if explanation.lime is not None and explanation.lime.label != top1:
            found.append(
                f"{item.name}: LIME explained class {explanation.lime.label}, not the model's top-1 class "
                f"{top1} (LIME's top label comes from its own classifier call on the unperturbed image)"
            )
        found.extend(f"{item.name}: {cam.warning}" for cam in explanation.cams if cam.warning)
    return found


def _collect(context: RunContext, explained: ExplainArtifacts, load_only: bool) -> CompareArtifacts:
    config = context.config
    settings = config.compare
    cache = StageCache(context, STAGE, load_only)
    shas = {image.name: image.sha256 for image in context.images}
    artifacts = CompareArtifacts(explain=explained, cascade=tuple("+".join(group) for group in sanity_groups(config)))
    if explained.images:
        artifacts.cam_grid = cam_grid(config, explained.images[0].pixels.shape)
    for item in context.progress(explained.images, "compare", total=len(explained.images)):
        # The id is stored in these artifacts (CSV rows, figure titles), so it is part of their key.
        base = {**_base_parts(context, shas[item.name]), "image_id": item.name}
        artifacts.comparisons.append(_agreement(context, cache, base, item))
        artifacts.faithfulness.append(_faithfulness(context, cache, base, item, shas[item.name]))
    artifacts.sanity = _sanity(context, cache, explained.images[: settings.sanity_images], shas)
    cross_image = compare.cross_image_table([_cross_image_input(item) for item in explained.images], settings.top_k)
    artifacts.summary = compare.summarise(
        artifacts.comparisons,
        artifacts.faithfulness,
        artifacts.sanity,
        k=settings.top_k[0],
        seed=config.seed,
        cross_image=cross_image,
        notes=notes(explained),
    )
    return artifacts


def _cam_maps(item: ExplainedImage) -> dict[str, np.ndarray]:
    return {cam.method: cam.map for cam in item.explanation.cams}


def _agreement(context: RunContext, cache: StageCache, base: dict[str, Any], item: ExplainedImage) -> ImageComparison:
    """LIME against every CAM and the centre prior on one image, with the superpixel null (no model calls)."""
    config = context.config
    settings = config.compare
    lime = item.explanation.lime
    weights, seeds = seed_weights(item.explanation)

    def agreement() -> ImageComparison:
        return compare.compare_image(
            item.pixels,
            lime.segments,
            weights,
            _cam_maps(item),
            image_id=item.name,
            ks=settings.top_k,
            thresholds=tuple(t / 100 for t in settings.thresholds),
            seeds=seeds,
            null_draws=settings.null_draws,
            null_seed=config.seed,
        )

    parts = {
        **base,
        "piece": "agreement",
        "ks": list(settings.top_k),
        "thresholds": list(settings.thresholds),
        "seeds": list(seeds),
        "null_draws": settings.null_draws,
    }
    return cache.get(compare.ImageComparison, parts, agreement)


def _faithfulness(
    context: RunContext, cache: StageCache, base: dict[str, Any], item: ExplainedImage, image_sha: str
) -> FaithfulnessResult:
    """Deletion/insertion curves of LIME, every CAM and the random baseline on one image (model forward passes)."""
    config = context.config
    settings = config.compare
    lime = item.explanation.lime

    def faithfulness() -> FaithfulnessResult:
        return compare.faithfulness_image(
            context.classifier(config.explain.spec()).module,
            explain_stage.explain_preprocessing(config).to_input,
            item.pixels,
            compare.explanation_maps(lime.segments, lime.weights, _cam_maps(item)),
            item.explanation.prediction.top1,
            steps=settings.faithfulness_steps,
            seed=compare.image_seed(config.seed, image_sha),
            image_id=item.name,
            random_draws=settings.random_draws,
            batch_size=explain_stage.explain_batch_size(context, item.pixels.shape),
            random_cells=cam_grid(config, item.pixels.shape),
        )

    parts = {
        **base,
        "piece": "faithfulness",
        "steps": settings.faithfulness_steps,
        "random_draws": settings.random_draws,
        "random_cells": list(cam_grid(config, item.pixels.shape)),
    }
    return cache.get(compare.FaithfulnessResult, parts, faithfulness)


def _sanity(context: RunContext, cache: StageCache, chosen: list[ExplainedImage], shas: dict[str, str]) -> SanityResult:
    """The cascading parameter-randomisation check on the ``chosen`` images (skipped under random weights)."""
    config = context.config
    settings = config.compare
    methods = sanity_methods(config)
    lime_sanity = replace(explain_stage.lime_params(config), num_samples=settings.sanity_lime_samples)

    def sanity() -> SanityResult:
        skip = config.weights == "random" or not settings.sanity_check or not methods or not chosen
        model = None if skip else context.classifier(config.explain.spec()).module
        budgets = (
            {
                compare.LIME_METHOD: f"{settings.sanity_lime_samples} perturbation samples per model state "
                f"(explanations: {config.explain.lime.num_samples})"
            }
            if compare.LIME_METHOD in methods
            else {}
        )
        if skip and config.weights != "random":
            return compare.SanityResult.skipped(
                methods,
                config.seed,
                reason="disabled in the config" if not settings.sanity_check else "no sanity methods or images",
            )
        explain_fn = sanity_explain_fn(
            [(item.pixels, item.explanation.lime.segments, item.explanation.prediction.top1) for item in chosen],
            methods,
            target=explain_stage.explain_target(config).target,
            to_input=explain_stage.explain_preprocessing(config).to_input,
            lime_params=lime_sanity,
            seed=config.seed,
            # resolved (perhaps measured) only when the check runs: skipped under random weights
            batch_size=explain_stage.explain_batch_size(context, chosen[0].pixels.shape) if not skip else 1,
            device=context.device,
        )
        return compare.sanity_check(  # the cascade follows the architecture: compare.layer_groups(model)
            model, explain_fn, seed=config.seed, weights_are_random=skip, budgets=budgets
        )

    parts = {
        **_base_parts(context, ",".join(shas[item.name] for item in chosen)),
        "piece": "sanity",
        "methods": methods,
        "enabled": settings.sanity_check,
        "lime_samples": settings.sanity_lime_samples,
    }
    return cache.get(compare.SanityResult, parts, sanity)


def _cross_image_input(item: ExplainedImage) -> CrossImageInput:
    """What the cross-image null needs of one image: its id, LIME segments and every seed's weights, its CAMs."""
    weights, _ = seed_weights(item.explanation)
    return item.name, item.explanation.lime.segments, weights, _cam_maps(item)


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
    from xai import compare
    from xai.architectures import TargetLayer, resolve_layer
    from xai.compare.sanity import SanityMaps
    from xai.explain.cams.base import compute_cam
    from xai.explain.lime_image import run_lime
    from xai.explain.registry import METHODS
    from xai.models import to_input as imagenet_input

    if isinstance(target, str):
        target = TargetLayer(target, "given")
    normalise = to_input or imagenet_input

    def explain_fn(model: Any) -> Any:
        layer = resolve_layer(model, target.path)
        maps: dict[str, list[np.ndarray]] = {method: [] for method in [*methods, compare.EDGE_METHOD]}
        warnings: list[str] = []
        for index, (pixels, segments, label) in enumerate(images, start=1):
            tensor = normalise(pixels[None]).to(device)
            for method in methods:
                if method == compare.LIME_METHOD:
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
            maps[compare.EDGE_METHOD].append(compare.edge_map(pixels))
        return SanityMaps({method: np.stack(stack) for method, stack in maps.items()}, warnings)

    return explain_fn


def unit_range(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (SSIM's data range); a constant map becomes all zero."""
    values = np.asarray(values, dtype=np.float64)
    span = float(np.ptp(values))
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def run(context: RunContext) -> CompareArtifacts:
    explained = context.artifacts.get("explain") or explain_stage.run(context)
    return _collect(context, explained, load_only=False)


def load_cached(context: RunContext) -> CompareArtifacts | None:
    explained = context.artifacts.get("explain") or explain_stage.load_cached(context)
    if explained is None:
        return None
    try:
        return _collect(context, explained, load_only=True)
    except NotCachedError:
        return None
