"""Tasks 2-3: LIME and every configured CAM on each input image, cached per image x method.

Each method of each image is its own cache entry, so changing one method's parameter, or one image, reruns only
that piece; an interrupted run resumes at the first missing entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from xai.architectures import resolve_layer
from xai.cache import code_version
from xai.classifiers import ModelChoiceError
from xai.config import ConfigError
from xai.context import NotCachedError, StageCache
from xai.estimate import StageWork
from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, LimeStability, Prediction
from xai.explain.cams import base as cams
from xai.explain.explained import ExplainArtifacts, ExplainedImage, ExplanationError, method_costs
from xai.explain.inference import fast_layout, predict
from xai.explain.lime_image import prefetch_segments, run_lime, seed_stability
from xai.explain.registry import METHODS
from xai.units import Job, executor_of, fill_missing

if TYPE_CHECKING:
    from xai.context import InputImage, PieceStore, RunContext
    from xai.plan import ExplainPlan, RunPlan

STAGE = "explain"
CODE = ("explain",)
"""The domain packages whose code computes this stage's artifacts (their source is part of every key)."""

Result = TypeVar("Result", CamMap, LimeResult)


def _explain(context: RunContext) -> ExplainPlan:
    planned = context.plan.explain
    if planned is None:
        raise ValueError("the run plan has no explain section")  # a bug: the plan makes one for these stages
    return planned


def _parts(context: RunContext, image: InputImage, piece: str, **params: Any) -> dict[str, Any]:
    return {
        "image": image.sha256,
        **_explain(context).key(),
        "piece": piece,
        "seed": context.plan.seed,
        "code": code_version(*CODE),
        **params,
    }


def method_parts(context: RunContext, image: InputImage, method: str) -> dict[str, Any]:
    """The cache key of one method's result on one image."""
    planned = _explain(context)
    if METHODS[method].family == "lime":
        settings = {k: v for k, v in planned.lime.to_dict().items() if k != "stability_seeds"}
        return _parts(context, image, "lime", **settings)
    return _parts(context, image, f"cam:{method}", target_layer=planned.target.path, reshape=planned.target.reshape)


def describe(context: RunContext) -> str:
    planned = _explain(context)
    store = StageCache(context, STAGE)
    pieces = [(image, method) for image in context.images for method in planned.methods]
    done = sum(store.contains(method_parts(context, image, method)) for image, method in pieces)
    spec = planned.model.spec
    weights = spec.checkpoint.name if spec.checkpoint else planned.model.weights_member
    return (
        f"{planned.model_id} ({spec.architecture}, weights {weights}, target layer {planned.target.path}, "
        f"{planned.channels} channels) on {len(context.images)} image(s) x {len(planned.methods)} methods "
        f"({', '.join(planned.methods)}), about {planned.forward_passes_per_image:,} forward passes "
        f"per image; {done}/{len(pieces)} cached"
    )


def units(context: RunContext) -> str:
    """The plan's count of this stage's units: one per image with a piece missing."""
    store = StageCache(context, STAGE)
    sent = sum(
        not all(store.contains(parts) for _, parts in image_pieces(context, image).values()) for image in context.images
    )
    return f"explain {sent} (one per image with a piece missing)"


def work(plan: RunPlan, *, n_images: int, image_shape: tuple[int, ...], n_probe: int | None) -> StageWork:
    """The plan's estimate of this stage (:mod:`xai.estimate`): every image through the explained model for the
    prediction and each method's forward passes (the method registry's cost model)."""
    from xai.estimate_work import explain_network

    work = StageWork(STAGE)
    if plan.explain is not None:
        work.add(explain_network(plan.explain, image_shape), n_images * plan.explain.forward_passes_per_image)
    return work


def explain_batch_size(context: RunContext, image_shape: tuple[int, ...], *, load_only: bool = False) -> int | None:
    """Images per forward of the explained model for LIME, ScoreCAM, deletion/insertion and the sanity check: the
    config's number, or measured once per machine (see :mod:`xai.batching`); None only in ``load_only`` mode."""
    from xai.batching import stage_batch_size

    planned = _explain(context)
    height, width = image_shape[:2]

    def forward() -> Callable[[torch.Tensor], torch.Tensor]:
        model = context.classifier(planned.model).module

        def channels_last_forward(batch: torch.Tensor) -> torch.Tensor:
            return model(fast_layout(batch))

        return channels_last_forward

    return stage_batch_size(
        context,
        f"explain:{planned.model_id}",
        planned.batch_size,
        model_id=f"{planned.model_id}:channels_last",
        forward=forward,
        input_shape=(3, height, width),
        load_only=load_only,
    )


def image_pieces(context: RunContext, image: InputImage) -> dict[str, tuple[type, dict[str, Any]]]:
    """Every cached piece of one image's explanation, in the order they are computed: name -> (artifact class, cache
    key parts). The prediction, then each method: LIME (and its stability over seeds, with more than one seed) or
    a CAM."""
    planned = _explain(context)
    pieces: dict[str, tuple[type, dict[str, Any]]] = {"prediction": (Prediction, _parts(context, image, "prediction"))}
    for method in planned.methods:
        parts = method_parts(context, image, method)
        if METHODS[method].family != "lime":
            pieces[method] = (CamMap, parts)
            continue
        pieces[method] = (LimeResult, parts)
        if planned.lime.stability_seeds > 1:
            seeds = planned.lime.stability_seeds
            pieces["lime-stability"] = (LimeStability, {**parts, "piece": "lime-stability", "seeds": seeds})
    return pieces


def explain_one(
    context: RunContext, image: InputImage, *, load_only: bool = False, store: PieceStore | None = None
) -> ImageExplanation:
    """Prediction, LIME (+ stability) and each configured CAM of one image, each piece from ``store`` (default: the
    cache, computing a missing piece; a unit's :class:`xai.units.Workspace` on a worker)."""
    planned = _explain(context)
    store = store or StageCache(context, STAGE, load_only)
    pieces = image_pieces(context, image)
    params = planned.lime
    to_input = planned.preprocessing.to_input
    target = planned.target

    @cache
    def model() -> nn.Module:  # loaded on the first cache miss only
        return context.classifier(planned.model).module

    def batch() -> int | None:  # asked for on a cache miss only: a cached image needs no batch size
        return explain_batch_size(context, image.pixels.shape)

    def with_batch(result: Result) -> Result:
        """``result`` with the batch size it ran with and that size's measured seconds per image (cost table)."""
        choice = context.batch_sizes[f"explain:{planned.model_id}"]
        return dataclasses.replace(result, batch_size=choice.batch_size, per_image_s=choice.per_image_s)

    def prediction_of_image() -> Prediction:
        return predict(model(), image.pixels, to_input=to_input)

    def lime_of_image() -> LimeResult:
        return with_batch(
            run_lime(
                model(), image.pixels, to_input=to_input, params=params, seed=context.plan.seed, batch_size=batch()
            )
        )

    def stability_of(first: LimeResult) -> Callable[[], LimeStability]:
        def compute() -> LimeStability:
            return seed_stability(model(), image.pixels, first, to_input=to_input, params=params, batch_size=batch())

        return compute

    def cam_of_image(method: str, target_class: int) -> Callable[[], CamMap]:
        # Only methods whose rows are whole images take the measured size (AblationCAM sizes its own chunks).
        batched = METHODS[method].batched

        def compute() -> CamMap:
            found = cams.compute_cam(
                model(),
                to_input(image.pixels[None]).to(context.device),
                method,
                resolve_layer(model(), target.path),
                target_class,
                batch_size=batch() if batched else None,
                reshape=target.reshape,
            )
            return with_batch(found) if batched else found

        return compute

    prediction = store.get(Prediction, pieces["prediction"][1], prediction_of_image)
    lime: LimeResult | None = None
    stability: LimeStability | None = None
    cam_maps: list[CamMap] = []
    for method in planned.methods:
        parts = pieces[method][1]
        if METHODS[method].family == "lime":
            lime = store.get(LimeResult, parts, lime_of_image)
            if "lime-stability" in pieces:
                stability = store.get(LimeStability, pieces["lime-stability"][1], stability_of(lime))
        else:
            cam_maps.append(store.get(CamMap, parts, cam_of_image(method, prediction.top1)))
    return ImageExplanation(prediction=prediction, lime=lime, stability=stability, cams=tuple(cam_maps))


def explain_unit(context: RunContext, image: InputImage, workspace: PieceStore) -> str | None:
    """The unit of one image (:mod:`xai.executor`): its missing pieces into ``workspace``; the reason when the image
    cannot be explained (:class:`ExplanationError`: reported once, with the pieces computed before it)."""
    try:
        explain_one(context, image, store=workspace)
    except ExplanationError as error:
        return str(error)
    return None


def _artifacts(planned: ExplainPlan) -> ExplainArtifacts:
    """The stage's artifacts before any image: what was explained, with which weights, layer and preprocessing."""
    return ExplainArtifacts(
        planned.model_id,
        list(planned.categories),
        planned.target.path,
        planned.methods,
        architecture=planned.model.spec.architecture,
        weights_member=planned.model.weights_member,
        weights_description=planned.weights_description,
        target_reason=planned.target.reason,
        target_channels=planned.channels,
        reshape=planned.target.reshape,
        preprocessing=planned.preprocessing,
    )


def _collect(context: RunContext, load_only: bool) -> ExplainArtifacts:
    """Every image's explanation: the missing pieces computed by units through the run's executor and written into
    the cache, then each image assembled from the cache (with the fresh pieces at hand) in image order."""
    planned = _explain(context)
    artifacts = _artifacts(planned)
    failed: dict[str, str] = {}
    fresh: dict[str, Any] = {}
    if not load_only:
        jobs = [
            Job("xai.stages.explain:explain_unit", image.name, image, image_pieces(context, image))
            for image in context.images
        ]
        if "lime" in planned.methods and executor_of(context).kind == "local":
            # in this process, quickshift of the next images overlaps this image's model work
            cached = StageCache(context, STAGE)
            missing = [image for image in context.images if not cached.contains(method_parts(context, image, "lime"))]
            prefetch_segments([image.pixels for image in missing], planned.lime)
        filled = fill_missing(context, STAGE, jobs, "explain")
        failed = {name: reason for name, reason in filled.values.items() if reason is not None}
        fresh = filled.fresh
    store = StageCache(context, STAGE, load_only, fresh)
    for image in context.images:
        if image.name in failed:  # one image's failure never loses the others; a bug still stops the run
            artifacts.failed.append((image.name, failed[image.name]))
            continue
        explanation = explain_one(context, image, store=store)
        artifacts.images.append(ExplainedImage(image.name, image.pixels, explanation, image.display or image.name))
    artifacts.costs = method_costs(artifacts.images, artifacts.methods)
    return artifacts


def run(context: RunContext) -> ExplainArtifacts:
    """Every piece of every image; the classifier is loaded first, so a checkpoint that does not fit, or a target
    layer the built model lacks, stops the run with one line before any image."""
    planned = _explain(context)
    model = context.classifier(planned.model).module
    try:
        resolve_layer(model, planned.target.path)
    except ModelChoiceError as error:
        raise ConfigError(str(error)) from None
    return _collect(context, load_only=False)


def load_cached(context: RunContext) -> ExplainArtifacts | None:
    try:
        return _collect(context, load_only=True)
    except NotCachedError:
        return None
