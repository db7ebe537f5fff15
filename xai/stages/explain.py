"""Tasks 2-3: LIME and every configured CAM on each input image, cached per image x method.

Each method of each image is its own cache entry, so changing one method's parameter, or one image, reruns only
that piece; an interrupted run resumes at the first missing entry.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from xai.cache import code_version
from xai.stages import NotCachedError, cached, weights_key

STAGE = "explain"


@dataclass
class ExplainedImage:
    name: str
    """The image id (``xai.data.image_ids``), safe in paths, anchors and Markdown."""
    pixels: np.ndarray
    explanation: Any
    """xai.explain.artifacts.ImageExplanation"""
    display: str = ""
    """The input file's name as given, for display only (escaped)."""


@dataclass
class ExplainArtifacts:
    model: str
    categories: list[str]
    target_layer: str
    methods: tuple[str, ...]
    images: list[ExplainedImage] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(image name, error) for images whose explanation raised; the others are kept."""
    costs: list[MethodCost] = field(default_factory=list)
    """Per method, what it cost next to its floor (:func:`method_costs`), for the report's cost table."""


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
        results = [found for item in images
                   if (found := item.explanation.lime if method == "lime" else
                       next((c for c in item.explanation.cams if c.method == method), None)) is not None]
        if not results:
            continue
        floors = [r.forward_passes * r.per_image_s if r.per_image_s else None for r in results]
        first = next((r for r in results if r.batch_size is not None), None)
        costs.append(MethodCost(
            method, sum(r.seconds for r in results) / len(results),
            round(sum(r.forward_passes for r in results) / len(results)),
            None if None in floors else sum(floors) / len(floors),
            first.batch_size if first else None, first.per_image_s if first else None))
    return costs


def resolve_layer(model: nn.Module, spec: str) -> nn.Module:
    """``layer4[-1]`` or ``layer4.2`` -> the module (torchvision-style attribute and index access)."""
    module: Any = model
    for token in re.findall(r"[A-Za-z_]\w*|-?\d+", spec):
        try:
            module = module[int(token)] if token.lstrip("-").isdigit() else getattr(module, token)
        except (AttributeError, IndexError, TypeError):
            raise ValueError(f"explain.target_layer: {spec!r} does not name a module of the model "
                             "(examples: layer4[-1], layer4.2, layer3)") from None
    return module


def _parts(context: Any, image: Any, piece: str, **params: Any) -> dict[str, Any]:
    config = context.config
    return {"image": image.sha256, "model": config.explain.model, "weights": weights_key(config, config.explain.model),
            "piece": piece, "seed": config.seed, "code": code_version("explain"), **params,
            **({"preprocess": config.explain.preprocess} if config.explain.preprocess != "weights" else {})}


def forward_passes_per_image(config: Any) -> int:
    """Image rows pushed through ResNet50 per image (the floor each method needs), for the plan.

    AblationCAM and ScoreCAM need one row per channel of ResNet50's layer4 (2048) plus the original.
    """
    from xai.explain.registry import METHODS

    lime = config.explain.lime
    total = 1
    for method in config.explain.methods:
        if method == "lime":
            total += lime.num_samples * lime.stability_seeds
        elif method in ("scorecam", "ablationcam"):
            total += 2049
        elif METHODS[method].needs_gradients:
            total += 2
        else:
            total += 1
    return total


def describe(context: Any) -> str:
    config = context.config
    pieces = [(image, method) for image in context.images for method in config.explain.methods]
    done = sum(context.cache.contains(STAGE, _method_parts(context, image, method)) for image, method in pieces)
    return (f"{config.explain.model} on {len(context.images)} image(s) x {len(config.explain.methods)} methods "
            f"({', '.join(config.explain.methods)}), about {forward_passes_per_image(config):,} forward passes "
            f"per image; {done}/{len(pieces)} cached")


def _method_parts(context: Any, image: Any, method: str) -> dict[str, Any]:
    config = context.config
    if method == "lime":
        settings = {k: v for k, v in lime_params(config).to_dict().items() if k != "stability_seeds"}
        return _parts(context, image, "lime", **settings)
    return _parts(context, image, f"cam:{method}", target_layer=config.explain.target_layer)


def _get(context: Any, parts: dict[str, Any], compute: Any, kind: type, load_only: bool) -> Any:
    return cached(context, STAGE, parts, compute, kind, load_only=load_only)


def lime_params(config: Any) -> Any:
    from xai.explain.lime_image import LimeParams

    lime = config.explain.lime
    return LimeParams(num_samples=lime.num_samples, top_labels=lime.top_labels, hide_color=lime.hide_color,
                      ks=tuple(lime.top_k), stability_seeds=lime.stability_seeds)


def explain_batch_size(context: Any, image_shape: tuple[int, ...], *, load_only: bool = False) -> int | None:
    """Images per ResNet50 forward for LIME, ScoreCAM, deletion/insertion and the sanity check: the config's
    number, or measured once per machine (see :mod:`xai.batching`); None only in ``load_only`` mode."""
    from xai.batching import stage_batch_size
    from xai.explain.inference import fast_layout

    config = context.config
    height, width = image_shape[:2]

    def forward() -> Any:
        model = context.classifier(config.explain.model).module
        return lambda batch: model(fast_layout(batch))

    return stage_batch_size(context, f"explain:{config.explain.model}", config.explain.batch_size,
                            model_id=f"{config.explain.model}:channels_last", forward=forward,
                            input_shape=(3, height, width), load_only=load_only)


def explain_one(context: Any, image: Any, *, load_only: bool = False) -> Any:
    """Prediction, LIME (+ stability) and each configured CAM of one image, each from the cache when present."""
    from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, LimeStability, Prediction
    from xai.explain.cams.base import compute_cam
    from xai.explain.lime_image import lime_stability, run_lime
    from xai.explain.registry import METHODS
    from xai.explain.stage import predict
    from xai.models import to_input

    config = context.config
    lazy: dict[str, Any] = {}

    def model() -> nn.Module:
        if "model" not in lazy:
            lazy["model"] = context.classifier(config.explain.model).module
        return lazy["model"]

    def batch() -> int:  # asked for on a cache miss only: a cached image needs no batch size
        return explain_batch_size(context, image.pixels.shape)

    def with_batch(result: Any) -> Any:
        """``result`` with the batch size it ran with and that size's measured seconds per image (cost table)."""
        choice = context.batch_sizes[f"explain:{config.explain.model}"]
        return dataclasses.replace(result, batch_size=choice.batch_size, per_image_s=choice.per_image_s)

    prediction = _get(context, _parts(context, image, "prediction"),
                      lambda: predict(model(), image.pixels, to_input=to_input), Prediction, load_only)
    lime = stability = None
    cams = []
    params = lime_params(config)
    for method in config.explain.methods:
        parts = _method_parts(context, image, method)
        if method == "lime":
            lime = _get(context, parts, lambda: with_batch(run_lime(model(), image.pixels, to_input=to_input,
                                                                    params=params, seed=config.seed,
                                                                    batch_size=batch())),
                        LimeResult, load_only)

            def stability_runs(first: LimeResult = lime) -> LimeStability:
                others = [run_lime(model(), image.pixels, to_input=to_input, params=params, seed=config.seed + i,
                                   batch_size=batch(), segments=first.segments)
                          for i in range(1, params.stability_seeds)]
                return lime_stability([first, *others])

            if params.stability_seeds > 1:
                stability = _get(context, {**parts, "piece": "lime-stability", "seeds": params.stability_seeds},
                                 stability_runs, LimeStability,
                                 load_only)
        else:
            # Only methods whose rows are whole images take the measured size (AblationCAM sizes its own chunks).
            def cam(method: str = method) -> CamMap:
                batched = METHODS[method].batched
                found = compute_cam(model(), to_input(image.pixels[None]).to(context.device), method,
                                    resolve_layer(model(), config.explain.target_layer), prediction.top1,
                                    batch_size=batch() if batched else None)
                return with_batch(found) if batched else found

            cams.append(_get(context, parts, cam, CamMap, load_only))
    return ImageExplanation(prediction=prediction, lime=lime, stability=stability, cams=tuple(cams))


def _collect(context: Any, load_only: bool) -> ExplainArtifacts:
    config = context.config
    model_name = config.explain.model
    from xai.models import imagenet_categories

    artifacts = ExplainArtifacts(model_name, imagenet_categories(), config.explain.target_layer,
                                 tuple(config.explain.methods))
    for image in context.progress(context.images, "explain", total=len(context.images)):
        try:
            explanation = explain_one(context, image, load_only=load_only)
        except NotCachedError:
            raise
        except (RuntimeError, ValueError) as error:  # one image's failure never loses the others
            artifacts.failed.append((image.name, f"{type(error).__name__}: {error}"))
            continue
        artifacts.images.append(ExplainedImage(image.name, image.pixels, explanation,
                                               getattr(image, "display", "") or image.name))
    artifacts.costs = method_costs(artifacts.images, artifacts.methods)
    return artifacts


def run(context: Any) -> ExplainArtifacts:
    from xai.config import ConfigError

    try:  # a typo in the target layer is a config error, not a failure of every image
        resolve_layer(context.classifier(context.config.explain.model).module, context.config.explain.target_layer)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return _collect(context, load_only=False)


def load_cached(context: Any) -> ExplainArtifacts | None:
    try:
        return _collect(context, load_only=True)
    except NotCachedError:
        return None
