"""Task 4: LIME vs CAM, from the explain stage's cached masks and maps (never recomputed here).

Per image: agreement + complexity + the superpixel null (no model calls) and deletion/insertion faithfulness
(a known number of forward passes); once: the cascading parameter-randomisation sanity check on the first
images (LIME at a cheaper sample budget; ScoreCAM and AblationCAM at full cost) beside a model-independent edge
detector; then the cross-image null and the location baseline (need every image's maps; arithmetic only, not
cached) and the summary. With ``compare.sample``: the powered sample (:mod:`xai.stages.compare_sample`).

Units of work (:mod:`xai.units`): one per image (agreement and faithfulness), one for the sanity check, one per
powered-sample image.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from xai import compare
from xai.compare.results import CompareArtifacts, explanation_caveats, seed_weights
from xai.compare.sanity import sanity_explain_fn
from xai.context import NotCachedError, StageCache
from xai.estimate import StageWork
from xai.stages import compare_sample
from xai.stages.compare_keys import STAGE, base_parts, plans
from xai.stages.explain import explain_batch_size
from xai.units import Job, fill_missing

if TYPE_CHECKING:
    from xai.compare import FaithfulnessResult, ImageComparison, SanityResult
    from xai.compare.per_image import CrossImageInput
    from xai.context import PieceStore, RunContext
    from xai.explain.explained import ExplainArtifacts, ExplainedImage
    from xai.plan import RunPlan


def describe(context: RunContext) -> str:
    explain, planned = plans(context)
    settings = planned.settings
    maps = len(explain.methods) + settings.random_draws + 1  # LIME + CAMs, random draws, centre prior
    per_image = compare.forward_passes(maps, settings.faithfulness_steps)
    if context.plan.weights_mode == "random" or not settings.sanity_check:
        sanity = "sanity check skipped (random weights)" if settings.sanity_check else "sanity check disabled"
    else:
        groups = planned.cascade
        sanity = (
            f"sanity check on {settings.sanity_images} image(s) x {len(planned.sanity_methods)} "
            f"methods x {len(groups) + 1} model states ({explain.model_id} randomised from "
            f"{'+'.join(groups[0])} down to {'+'.join(groups[-1])})"
        )
    sample = planned.sample
    extra = (
        f"; powered sample: {len(sample.drawn)} more image(s) from {sample.source} (LIME x "
        f"{sample.settings.lime_seeds} seed(s), {', '.join(sample.settings.methods)}, deletion/insertion)"
        if sample is not None
        else ""
    )
    return (
        f"agreement of {len(explain.methods) - 1} CAMs with LIME, deletion/insertion over {maps} maps "
        f"({per_image:,} forward passes per image), {sanity}{extra}"
    )


def work(plan: RunPlan, *, n_images: int, image_shape: tuple[int, ...], n_probe: int | None) -> StageWork:
    """The plan's estimate of this stage (:mod:`xai.estimate`): the deletion/insertion curves of every map (LIME and
    the CAMs, the random draws, the centre prior) on each image, the sanity check's cascade (skipped under random
    weights) and the powered sample."""
    from xai.compare.faithfulness import forward_passes as curve_passes
    from xai.estimate_work import explain_network, method_passes

    work = StageWork(STAGE)
    explain, planned = plan.explain, plan.compare
    if explain is None or planned is None:
        return work
    settings = planned.settings
    model = explain_network(explain, image_shape)
    maps = len(explain.methods) + settings.random_draws + 1
    work.add(model, n_images * curve_passes(maps, settings.faithfulness_steps))
    if settings.sanity_check and plan.weights_mode != "random":
        per_state = method_passes(
            planned.sanity_methods, lime_samples=settings.sanity_lime_samples, channels=explain.channels
        )
        work.add(model, settings.sanity_images * (len(planned.cascade) + 1) * per_state)
    work.add(model, compare_sample.forward_passes(planned, explain))
    return work


def units(context: RunContext) -> str:
    """The plan's count of this stage's units (before the explain stage ran: an upper bound)."""
    sample = plans(context)[1].sample
    drawn = f" and {len(sample.drawn)} powered-sample image(s)" if sample is not None else ""
    return f"compare up to {len(context.images) + 1} (one per image and one for the sanity check){drawn}, unless cached"


def _collect(context: RunContext, explained: ExplainArtifacts, load_only: bool) -> CompareArtifacts:
    """The missing pieces computed by units through the run's executor (one per image, one for the sanity check)
    and written into the cache; then the artifacts assembled from the cache in image order, and the cross-image
    null and the summary (arithmetic on every image, on the driver)."""
    explain, planned = plans(context)
    settings = planned.settings
    shas = {image.name: image.sha256 for image in context.images}
    chosen = explained.images[: settings.sanity_images]
    fresh: dict[str, Any] = {}
    if not load_only:
        jobs = [
            Job(
                "xai.stages.compare:compare_image_unit",
                item.name,
                (item, shas[item.name]),
                _image_pieces(context, item, shas[item.name]),
            )
            for item in explained.images
        ]
        sanity_parts = _sanity_parts(context, chosen, shas)
        jobs.append(Job("xai.stages.compare:sanity_unit", "sanity", (chosen, shas), {"sanity": sanity_parts}))
        fresh = fill_missing(context, STAGE, jobs, "compare").fresh
    cache = StageCache(context, STAGE, load_only, fresh)
    artifacts = CompareArtifacts(explain=explained, cascade=tuple("+".join(group) for group in planned.cascade))
    if explained.images:
        artifacts.cam_grid = explain.cam_grid
    for item in explained.images:
        comparison, faithfulness = compare_image_unit(context, (item, shas[item.name]), cache)
        artifacts.comparisons.append(comparison)
        artifacts.faithfulness.append(faithfulness)
    artifacts.sanity = sanity_unit(context, (chosen, shas), cache)
    cross_image = compare.cross_image_table([_cross_image_input(item) for item in explained.images], settings.top_k)
    artifacts.sample = compare_sample.sample(context, load_only)
    artifacts.summary = compare.summarise(
        artifacts.comparisons,
        artifacts.faithfulness,
        artifacts.sanity,
        k=settings.top_k[0],
        seed=context.plan.seed,
        cross_image=cross_image,
        notes=explanation_caveats(explained),
    )
    return artifacts


def _image_base(context: RunContext, item: ExplainedImage, image_sha: str) -> dict[str, Any]:
    # The id is stored in these artifacts (CSV rows, figure titles), so it is part of their key.
    return {**base_parts(context, image_sha), "image_id": item.name}


def _image_pieces(context: RunContext, item: ExplainedImage, image_sha: str) -> dict[str, tuple[type, dict[str, Any]]]:
    """One image's cached pieces: name -> (artifact class, cache key parts)."""
    base = _image_base(context, item, image_sha)
    return {
        "agreement": (compare.ImageComparison, _agreement_parts(context, base, item)),
        "faithfulness": (compare.FaithfulnessResult, _faithfulness_parts(context, base)),
    }


def compare_image_unit(
    context: RunContext, inputs: tuple[ExplainedImage, str], store: PieceStore
) -> tuple[ImageComparison, FaithfulnessResult]:
    """The unit of one image (:mod:`xai.executor`): agreement with its nulls, and deletion/insertion."""
    item, image_sha = inputs
    base = _image_base(context, item, image_sha)
    return _agreement(context, store, base, item), _faithfulness(context, store, base, item, image_sha)


def sanity_unit(
    context: RunContext, inputs: tuple[list[ExplainedImage], dict[str, str]], store: PieceStore
) -> SanityResult:
    """The unit of the sanity check on the chosen images."""
    chosen, shas = inputs
    return _sanity(context, store, chosen, shas)


def _cam_maps(item: ExplainedImage) -> dict[str, np.ndarray]:
    return {cam.method: cam.map for cam in item.explanation.cams}


def _agreement_parts(context: RunContext, base: dict[str, Any], item: ExplainedImage) -> dict[str, Any]:
    settings = plans(context)[1].settings
    _, seeds = seed_weights(item.explanation)
    return {
        **base,
        "piece": "agreement",
        "ks": list(settings.top_k),
        "thresholds": list(settings.thresholds),
        "seeds": list(seeds),
        "null_draws": settings.null_draws,
    }


def _agreement(context: RunContext, cache: PieceStore, base: dict[str, Any], item: ExplainedImage) -> ImageComparison:
    """LIME against every CAM and the centre prior on one image, with the superpixel null (no model calls)."""
    settings = plans(context)[1].settings
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
            null_seed=context.plan.seed,
        )

    return cache.get(compare.ImageComparison, _agreement_parts(context, base, item), agreement)


def _faithfulness_parts(context: RunContext, base: dict[str, Any]) -> dict[str, Any]:
    explain, planned = plans(context)
    settings = planned.settings
    return {
        **base,
        "piece": "faithfulness",
        "steps": settings.faithfulness_steps,
        "random_draws": settings.random_draws,
        "random_cells": list(explain.cam_grid),
    }


def _faithfulness(
    context: RunContext, cache: PieceStore, base: dict[str, Any], item: ExplainedImage, image_sha: str
) -> FaithfulnessResult:
    """Deletion/insertion curves of LIME, every CAM and the random baseline on one image (model forward passes)."""
    explain, planned = plans(context)
    settings = planned.settings
    lime = item.explanation.lime

    def faithfulness() -> FaithfulnessResult:
        return compare.faithfulness_image(
            context.classifier(explain.model).module,
            explain.preprocessing.to_input,
            item.pixels,
            compare.explanation_maps(lime.segments, lime.weights, _cam_maps(item)),
            item.explanation.prediction.top1,
            steps=settings.faithfulness_steps,
            seed=compare.image_seed(context.plan.seed, image_sha),
            image_id=item.name,
            random_draws=settings.random_draws,
            batch_size=explain_batch_size(context, item.pixels.shape),
            random_cells=explain.cam_grid,
        )

    return cache.get(compare.FaithfulnessResult, _faithfulness_parts(context, base), faithfulness)


def _sanity_parts(
    context: RunContext, chosen: list[ExplainedImage], shas: dict[str, str]
) -> tuple[type, dict[str, Any]]:
    settings = plans(context)[1].settings
    parts = {
        **base_parts(context, ",".join(shas[item.name] for item in chosen)),
        "piece": "sanity",
        "methods": list(plans(context)[1].sanity_methods),
        "enabled": settings.sanity_check,
        "lime_samples": settings.sanity_lime_samples,
    }
    return compare.SanityResult, parts


def _sanity(context: RunContext, cache: PieceStore, chosen: list[ExplainedImage], shas: dict[str, str]) -> SanityResult:
    """The cascading parameter-randomisation check on the ``chosen`` images (skipped under random weights)."""
    explain, planned = plans(context)
    settings = planned.settings
    methods = list(planned.sanity_methods)
    random_weights = context.plan.weights_mode == "random"
    lime_sanity = replace(explain.lime, num_samples=settings.sanity_lime_samples)

    def sanity() -> SanityResult:
        skip = random_weights or not settings.sanity_check or not methods or not chosen
        model = None if skip else context.classifier(explain.model).module
        budgets = (
            {
                compare.LIME_METHOD: f"{settings.sanity_lime_samples} perturbation samples per model state "
                f"(explanations: {explain.lime.num_samples})"
            }
            if compare.LIME_METHOD in methods
            else {}
        )
        if skip and not random_weights:
            return compare.SanityResult.skipped(
                methods,
                context.plan.seed,
                reason="disabled in the config" if not settings.sanity_check else "no sanity methods or images",
            )
        explain_fn = sanity_explain_fn(
            [(item.pixels, item.explanation.lime.segments, item.explanation.prediction.top1) for item in chosen],
            methods,
            target=explain.target,
            to_input=explain.preprocessing.to_input,
            lime_params=lime_sanity,
            seed=context.plan.seed,
            # resolved (perhaps measured) only when the check runs: skipped under random weights
            batch_size=explain_batch_size(context, chosen[0].pixels.shape) if not skip else 1,
            device=context.device,
        )
        return compare.sanity_check(  # the cascade follows the architecture: compare.layer_groups(model)
            model, explain_fn, seed=context.plan.seed, weights_are_random=skip, budgets=budgets
        )

    return cache.get(compare.SanityResult, _sanity_parts(context, chosen, shas)[1], sanity)


def _cross_image_input(item: ExplainedImage) -> CrossImageInput:
    """What the cross-image null needs of one image: its id, LIME segments and every seed's weights, its CAMs."""
    weights, _ = seed_weights(item.explanation)
    return item.name, item.explanation.lime.segments, weights, _cam_maps(item)


def run(context: RunContext) -> CompareArtifacts:
    """Comparisons of the explain stage's artifacts (the runner ran that stage first: ``needs``)."""
    return _collect(context, context.artifacts["explain"], load_only=False)


def load_cached(context: RunContext) -> CompareArtifacts | None:
    explained = context.artifacts.get("explain")
    if explained is None:
        return None
    try:
        return _collect(context, explained, load_only=True)
    except NotCachedError:
        return None
