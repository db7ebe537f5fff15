"""Task 4: LIME vs CAM, from the explain stage's cached masks and maps (never recomputed here).

Per image: agreement + complexity (no model calls) and deletion/insertion faithfulness (a known number of
forward passes); once: the cascading parameter-randomisation sanity check on the first images; then the
cross-image summary tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xai.cache import code_version
from xai.stages import NotCachedError, cached, weights_key
from xai.stages import explain as explain_stage

STAGE = "compare"


@dataclass
class CompareArtifacts:
    comparisons: list[Any] = field(default_factory=list)
    """xai.compare.ImageComparison per image"""
    faithfulness: list[Any] = field(default_factory=list)
    """xai.compare.FaithfulnessResult per image"""
    sanity: Any = None
    summary: Any = None
    """xai.compare.ComparisonSummary"""
    explain: Any = None
    """The explain stage's artifacts these were computed from (for the side-by-side panels)."""


def _base_parts(context: Any, image_sha: str) -> dict[str, Any]:
    config = context.config
    return {"image": image_sha, "weights": weights_key(config, config.explain.model), "seed": config.seed,
            "explain": {"methods": list(config.explain.methods), "lime": config.explain.lime.model_dump(),
                        "target_layer": config.explain.target_layer},
            "code": code_version("compare", "explain")}


def describe(context: Any) -> str:
    from xai.compare import forward_passes

    config = context.config
    maps = len(config.explain.methods) + 1
    per_image = forward_passes(maps, config.compare.faithfulness_steps)
    sanity = ("sanity check skipped (random weights)" if config.weights == "random" or not config.compare.sanity_check
              else f"sanity check on {config.compare.sanity_images} image(s) x {len(config.compare.sanity_methods)} "
                   f"methods x 7 model states")
    return (f"agreement of {len(config.explain.methods) - 1} CAMs with LIME, deletion/insertion over {maps} maps "
            f"({per_image:,} forward passes per image), {sanity}")


def _get(context: Any, parts: dict[str, Any], compute: Any, kind: type, load_only: bool) -> Any:
    return cached(context, STAGE, parts, compute, kind, load_only=load_only)


def _collect(context: Any, explained: Any, load_only: bool) -> CompareArtifacts:
    from xai import compare
    from xai.explain.cams.base import compute_cam
    from xai.models import to_input

    config = context.config
    settings = config.compare
    shas = {image.name: image.sha256 for image in context.images}
    artifacts = CompareArtifacts(explain=explained)
    for item in context.progress(explained.images, "compare", total=len(explained.images)):
        lime = item.explanation.lime
        cams = {cam.method: cam.map for cam in item.explanation.cams}
        base = _base_parts(context, shas[item.name])
        artifacts.comparisons.append(_get(context, {**base, "piece": "agreement", "ks": list(settings.top_k),
                                                    "thresholds": list(settings.thresholds)},
                                          lambda item=item, lime=lime, cams=cams: compare.compare_image(
            item.pixels, lime.segments, lime.weights, cams, image_id=item.name, ks=settings.top_k,
            thresholds=tuple(t / 100 for t in settings.thresholds)), compare.ImageComparison, load_only))
        artifacts.faithfulness.append(_get(context, {**base, "piece": "faithfulness",
                                                     "steps": settings.faithfulness_steps},
                                           lambda item=item, lime=lime, cams=cams: compare.faithfulness_image(
            context.classifier(config.explain.model).module, to_input, item.pixels,
            compare.explanation_maps(lime.segments, lime.weights, cams), item.explanation.prediction.top1,
            steps=settings.faithfulness_steps, seed=config.seed, image_id=item.name,
            batch_size=explain_stage.explain_batch_size(context, item.pixels.shape)), compare.FaithfulnessResult,
            load_only))
    chosen = explained.images[: settings.sanity_images]
    methods = [m for m in settings.sanity_methods if m in config.explain.methods]

    def explain_fn(model: Any) -> dict[str, np.ndarray]:
        layer = explain_stage.resolve_layer(model, config.explain.target_layer)
        maps: dict[str, list[np.ndarray]] = {method: [] for method in methods}
        for item in chosen:
            tensor = to_input(item.pixels[None]).to(context.device)
            for method in methods:
                maps[method].append(compute_cam(model, tensor, method, layer, item.explanation.prediction.top1,
                                                batch_size=explain_stage.explain_batch_size(
                                                    context, item.pixels.shape)).map)
        return {method: np.stack(stack) for method, stack in maps.items()}

    def sanity() -> Any:
        skip = config.weights == "random" or not settings.sanity_check or not methods or not chosen
        model = None if skip else context.classifier(config.explain.model).module
        return compare.sanity_check(model, explain_fn, compare.RESNET_LAYER_GROUPS, seed=config.seed,
                                    weights_are_random=skip)

    sanity_parts = {**_base_parts(context, ",".join(shas[item.name] for item in chosen)), "piece": "sanity",
                    "methods": methods, "enabled": settings.sanity_check}
    artifacts.sanity = _get(context, sanity_parts, sanity, compare.SanityResult, load_only)
    artifacts.summary = compare.summarise(artifacts.comparisons, artifacts.faithfulness, artifacts.sanity,
                                          k=settings.top_k[0])
    return artifacts


def run(context: Any) -> CompareArtifacts:
    explained = context.artifacts.get("explain") or explain_stage.run(context)
    return _collect(context, explained, load_only=False)


def load_cached(context: Any) -> CompareArtifacts | None:
    explained = context.artifacts.get("explain") or explain_stage.load_cached(context)
    if explained is None:
        return None
    try:
        return _collect(context, explained, load_only=True)
    except NotCachedError:
        return None
