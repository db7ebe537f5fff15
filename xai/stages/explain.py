"""Tasks 2-3: LIME and every configured CAM on each input image, cached per image x method.

Each method of each image is its own cache entry, so changing one method's parameter, or one image, reruns only
that piece; an interrupted run resumes at the first missing entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn

from xai.architectures import PlannedTarget, plan_target, resolve_layer
from xai.cache import code_version
from xai.classifiers import ModelChoiceError, Preprocessing, preprocessing, resolve_weights, spec_categories
from xai.config import ConfigError
from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, LimeStability, Prediction
from xai.explain.cams import base as cams
from xai.explain.inference import fast_layout, predict
from xai.explain.lime_image import LimeParams, run_lime, seed_stability
from xai.explain.registry import METHODS
from xai.models import file_sha256
from xai.stages import NotCachedError, StageCache, weights_key

if TYPE_CHECKING:
    from xai.classifiers import ClassifierSpec
    from xai.config import Config
    from xai.pipeline import InputImage, RunContext

STAGE = "explain"

Result = TypeVar("Result", CamMap, LimeResult)


@dataclass
class ExplainedImage:
    name: str
    """The image id (``xai.data.image_ids``), safe in paths, anchors and Markdown."""
    pixels: np.ndarray
    explanation: ImageExplanation
    display: str = ""
    """The input file's name as given, for display only (escaped)."""


@dataclass
class ExplainArtifacts:
    model: str
    """The explained classifier's display name (``resnet50``, ``resnet18_birds`` for a checkpoint)."""
    categories: list[str]
    target_layer: str
    """The resolved module path of the CAM target layer (``auto`` already replaced)."""
    methods: tuple[str, ...]
    images: list[ExplainedImage] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(image name, error) for images whose explanation raised; the others are kept."""
    costs: list[MethodCost] = field(default_factory=list)
    """Per method, what it cost next to its floor (:func:`method_costs`), for the report's cost table."""
    architecture: str = ""
    """The torchvision model name (``resnet50``, ``vit_b_16``)."""
    weights_name: str = ""
    """The weights enum member the architecture, categories and preprocessing follow (``IMAGENET1K_V2``)."""
    weights: str = ""
    """What the weights are: ``random(seed=N)``, a published file with its hash, or a checkpoint with its sha256."""
    target_reason: str = ""
    """Why this target layer (``auto``'s rule, or that the config set it)."""
    target_channels: int = 0
    reshape: str | None = None
    """The :data:`xai.architectures.RESHAPES` transform applied to the target layer's output (None: a map)."""
    preprocessing: Preprocessing | None = None
    """Resize, crop, interpolation, mean and std of the weights member (what the inputs went through)."""


@dataclass(frozen=True)
class MethodCost:
    """One method's mean cost per image and its floor, from the times and batch sizes recorded on its results."""

    method: str
    seconds: float
    """Mean wall seconds per image."""
    forward_passes: int
    """Mean image rows per image (rounded)."""
    floor_s: float | None
    """Mean over images of forward passes x the seconds per image measured at the batch size the result ran
    with; None when a result has none (a configured batch size, or a method whose rows are not whole images)."""
    batch_size: int | None
    per_image_s: float | None
    """The per-image time behind the floor (of the first result; a mixed cache may hold several)."""

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.floor_s if self.floor_s else None


def method_costs(images: list[ExplainedImage], methods: tuple[str, ...]) -> list[MethodCost]:
    """Each method's :class:`MethodCost` over ``images``: every result is held to its own recorded batch size, so
    pieces computed in different runs (or on different machines) are never divided by another run's time."""
    costs = []
    for method in methods:
        is_lime = METHODS[method].family == "lime"  # LIME has its own field; CAMs are found by method name
        results = [
            found
            for item in images
            if (
                found := item.explanation.lime
                if is_lime
                else next((c for c in item.explanation.cams if c.method == method), None)
            )
            is not None
        ]
        if not results:
            continue
        floors = [r.forward_passes * r.per_image_s if r.per_image_s else None for r in results]
        first = next((r for r in results if r.batch_size is not None), None)
        costs.append(
            MethodCost(
                method,
                sum(r.seconds for r in results) / len(results),
                round(sum(r.forward_passes for r in results) / len(results)),
                None if None in floors else sum(floors) / len(floors),
                first.batch_size if first else None,
                first.per_image_s if first else None,
            )
        )
    return costs


def classifier_parts(config: Config) -> dict[str, Any]:
    """What identifies the explained classifier in cache keys, known without loading it: its display name,
    architecture, weights member, weights (:func:`xai.stages.weights_key`), class file and preprocessing."""
    spec = config.explain.spec()
    return {
        "model": spec.display_name,
        "architecture": spec.name,
        "weights_member": spec.weights,
        "weights": weights_key(config, spec),
        "classes": file_sha256(spec.classes) if spec.classes else None,
        "preprocess": config.explain.preprocess,
    }


def _parts(context: RunContext, image: InputImage, piece: str, **params: Any) -> dict[str, Any]:
    config = context.config
    return {
        "image": image.sha256,
        **classifier_parts(config),
        "piece": piece,
        "seed": config.seed,
        "code": code_version("explain"),
        **params,
    }


def explain_target(config: Config) -> PlannedTarget:
    """The CAM target layer (``auto`` resolved by :func:`xai.architectures.auto_target_layer`), its reshape and
    channel count (2048 for resnet50's ``layer4[-1]``, D for ViT tokens), known without weights; a target layer
    that names no module of the model is a config error."""
    explain = config.explain
    try:
        return plan_target(explain.model, explain.model_weights, explain.target_layer)
    except ModelChoiceError as error:
        raise ConfigError(str(error)) from None


def target_channels(config: Config) -> int:
    """Channels of the CAM target layer's output (after its reshape), known without weights."""
    return explain_target(config).channels


def explain_preprocessing(config: Config) -> Preprocessing:
    """The explained weights member's preprocessing; its ``to_input`` normalises images for the model."""
    return preprocessing(config.explain.spec())


def forward_passes_per_image(config: Config) -> int:
    """Image rows pushed through the model per image (the floor each method needs, from its registry entry), plus
    the prediction, for the plan."""
    lime = config.explain.lime
    channels = target_channels(config)
    return 1 + sum(
        METHODS[method].forward_passes(lime_samples=lime.num_samples * lime.stability_seeds, target_channels=channels)
        for method in config.explain.methods
    )


def describe(context: RunContext) -> str:
    config = context.config
    store = StageCache(context, STAGE)
    pieces = [(image, method) for image in context.images for method in config.explain.methods]
    done = sum(store.contains(_method_parts(context, image, method)) for image, method in pieces)
    spec = config.explain.spec()
    target = explain_target(config)
    weights = spec.checkpoint.name if spec.checkpoint else resolve_weights(spec.name, spec.weights).name
    return (
        f"{spec.display_name} ({spec.name}, weights {weights}, target layer {target.target.path}, "
        f"{target.channels} channels) on {len(context.images)} image(s) x {len(config.explain.methods)} methods "
        f"({', '.join(config.explain.methods)}), about {forward_passes_per_image(config):,} forward passes "
        f"per image; {done}/{len(pieces)} cached"
    )


def _method_parts(context: RunContext, image: InputImage, method: str) -> dict[str, Any]:
    config = context.config
    if METHODS[method].family == "lime":
        settings = {k: v for k, v in lime_params(config).to_dict().items() if k != "stability_seeds"}
        return _parts(context, image, "lime", **settings)
    target = explain_target(config).target
    return _parts(context, image, f"cam:{method}", target_layer=target.path, reshape=target.reshape)


def lime_params(config: Config) -> LimeParams:
    lime = config.explain.lime
    return LimeParams(
        num_samples=lime.num_samples,
        top_labels=lime.top_labels,
        hide_color=lime.hide_color,
        ks=tuple(lime.top_k),
        stability_seeds=lime.stability_seeds,
    )


def explain_batch_size(context: RunContext, image_shape: tuple[int, ...], *, load_only: bool = False) -> int | None:
    """Images per forward of the explained model for LIME, ScoreCAM, deletion/insertion and the sanity check: the
    config's number, or measured once per machine (see :mod:`xai.batching`); None only in ``load_only`` mode."""
    from xai.batching import stage_batch_size

    config = context.config
    height, width = image_shape[:2]
    name = config.explain.spec().display_name

    def forward() -> Callable[[torch.Tensor], torch.Tensor]:
        model = context.classifier(config.explain.spec()).module

        def channels_last_forward(batch: torch.Tensor) -> torch.Tensor:
            return model(fast_layout(batch))

        return channels_last_forward

    return stage_batch_size(
        context,
        f"explain:{name}",
        config.explain.batch_size,
        model_id=f"{name}:channels_last",
        forward=forward,
        input_shape=(3, height, width),
        load_only=load_only,
    )


def explain_one(context: RunContext, image: InputImage, *, load_only: bool = False) -> ImageExplanation:
    """Prediction, LIME (+ stability) and each configured CAM of one image, each from the cache when present."""
    config = context.config
    store = StageCache(context, STAGE, load_only)
    params = lime_params(config)
    spec = config.explain.spec()
    to_input = explain_preprocessing(config).to_input
    target = explain_target(config).target

    @cache
    def model() -> nn.Module:  # loaded on the first cache miss only
        return context.classifier(spec).module

    def batch() -> int | None:  # asked for on a cache miss only: a cached image needs no batch size
        return explain_batch_size(context, image.pixels.shape)

    def with_batch(result: Result) -> Result:
        """``result`` with the batch size it ran with and that size's measured seconds per image (cost table)."""
        choice = context.batch_sizes[f"explain:{spec.display_name}"]
        return dataclasses.replace(result, batch_size=choice.batch_size, per_image_s=choice.per_image_s)

    def prediction_of_image() -> Prediction:
        return predict(model(), image.pixels, to_input=to_input)

    def lime_of_image() -> LimeResult:
        return with_batch(
            run_lime(model(), image.pixels, to_input=to_input, params=params, seed=config.seed, batch_size=batch())
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

    prediction = store.get(Prediction, _parts(context, image, "prediction"), prediction_of_image)
    lime: LimeResult | None = None
    stability: LimeStability | None = None
    cam_maps: list[CamMap] = []
    for method in config.explain.methods:
        parts = _method_parts(context, image, method)
        if METHODS[method].family == "lime":
            lime = store.get(LimeResult, parts, lime_of_image)
            if params.stability_seeds > 1:
                stability = store.get(
                    LimeStability,
                    {**parts, "piece": "lime-stability", "seeds": params.stability_seeds},
                    stability_of(lime),
                )
        else:
            cam_maps.append(store.get(CamMap, parts, cam_of_image(method, prediction.top1)))
    return ImageExplanation(prediction=prediction, lime=lime, stability=stability, cams=tuple(cam_maps))


def _artifacts(config: Config) -> ExplainArtifacts:
    """The stage's artifacts before any image: what was explained, with which weights, layer and preprocessing."""
    spec: ClassifierSpec = config.explain.spec()
    planned = explain_target(config)
    member = resolve_weights(spec.name, spec.weights).name
    if config.weights == "random":
        weights = f"random(seed={config.seed}), the architecture {member} loads into"
    elif spec.checkpoint is not None:
        weights = f"{spec.checkpoint.name} (sha256:{file_sha256(spec.checkpoint)})"
    else:
        weights = weights_key(config, spec)
    return ExplainArtifacts(
        spec.display_name,
        spec_categories(spec),
        planned.target.path,
        tuple(config.explain.methods),
        architecture=spec.name,
        weights_name=member,
        weights=weights,
        target_reason=planned.target.reason,
        target_channels=planned.channels,
        reshape=planned.target.reshape,
        preprocessing=explain_preprocessing(config),
    )


def _collect(context: RunContext, load_only: bool) -> ExplainArtifacts:
    config = context.config
    artifacts = _artifacts(config)
    for image in context.progress(context.images, "explain", total=len(context.images)):
        try:
            explanation = explain_one(context, image, load_only=load_only)
        except NotCachedError:
            raise
        except (RuntimeError, ValueError) as error:  # one image's failure never loses the others
            artifacts.failed.append((image.name, f"{type(error).__name__}: {error}"))
            continue
        artifacts.images.append(ExplainedImage(image.name, image.pixels, explanation, image.display or image.name))
    artifacts.costs = method_costs(artifacts.images, artifacts.methods)
    return artifacts


def run(context: RunContext) -> ExplainArtifacts:
    """Every piece of every image; the classifier is loaded first, so a checkpoint that does not fit, or a target
    layer the built model lacks, stops the run with one line before any image."""
    target = explain_target(context.config).target
    model = context.classifier(context.config.explain.spec()).module
    try:
        resolve_layer(model, target.path)
    except ModelChoiceError as error:
        raise ConfigError(str(error)) from None
    return _collect(context, load_only=False)


def load_cached(context: RunContext) -> ExplainArtifacts | None:
    try:
        return _collect(context, load_only=True)
    except NotCachedError:
        return None
