"""Task 1: CLIP-Dissect of both ResNet18s, cached piece by piece.

CLIP image embeddings of the probe set are computed once and shared by both models; text embeddings are keyed
by (CLIP weights, concept-list hash); each model's pooled activations by (model weights, layers, pooling, probe).
Scoring, the final-layer self-check and the analyses build on those.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai.cache import code_version
from xai.stages import NotCachedError, cached, weights_key

STAGE = "dissect"
SELF_CHECK_CONCEPTS = {"resnet18_imagenet": "imagenet_labels", "resnet18_places365": "places365"}


@dataclass(frozen=True)
class ArrayArtifact:
    """A named bundle of arrays (embeddings, activations) for the cache."""

    arrays: dict[str, np.ndarray]

    def to_parts(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return self.arrays, {}

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ArrayArtifact:
        return cls(dict(arrays))


@dataclass
class DissectArtifacts:
    probe_name: str
    probe_paths: list[Path]
    concept_set: str
    results: dict[str, Any] = field(default_factory=dict)
    """model name -> xai.dissect.result.DissectionResult"""
    summaries: dict[str, Any] = field(default_factory=dict)
    """model name -> xai.dissect.analysis.ModelSummary"""
    self_checks: dict[str, Any] = field(default_factory=dict)
    """model name -> xai.dissect.analysis.FcSelfCheck"""
    label_checks: dict[str, Any] = field(default_factory=dict)
    """model name -> FcSelfCheck of the main concept set's fc labels against the class names (string match)"""
    comparison: Any = None
    """xai.dissect.analysis.ModelComparison of the first two models"""


def probe_paths(config: Any) -> tuple[list[Path], list[str]]:
    """The probe images (after the stratified limit) and their ids."""
    from xai.data import cache_dir
    from xai.dissect import probes

    probe = config.dissect.probe
    root: Path | None = None
    if probe == "imagenet-samples":
        paths = probes.imagenet_sample_paths()
    elif probe == "broden":
        root = cache_dir() / "broden1_224" / "images"
        paths = probes.broden_paths(cache_dir())
    else:
        root = Path(probe)
        paths = probes.folder_images(root)
    paths = probes.stratified_limit(paths, config.dissect.probe_limit, seed=config.seed, root=root)
    return paths, probes.probe_ids(paths, root)


def _probe_key(ids: list[str], paths: list[Path]) -> str:
    # File sizes stand in for content hashes: hashing 63k Broden images on every run would cost minutes.
    digest = hashlib.sha256()
    for probe_id, path in zip(ids, paths, strict=True):
        digest.update(f"{probe_id}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:24]


def _probe_batch_size(context: Any, label: str, model_id: str, forward: Any, transform: Any) -> int:
    """Images per probe-pass forward: the config's number, or measured for ``model_id`` (the architecture, so
    both ResNet18s share one measurement) at its transform's input size."""
    from PIL import Image

    from xai.batching import stage_batch_size

    shape = tuple(transform(Image.new("RGB", (256, 256))).shape)
    return stage_batch_size(context, label, context.config.dissect.batch_size, model_id=model_id, forward=forward,
                            input_shape=shape)


def _get(context: Any, parts: dict[str, Any], compute: Any, kind: type, load_only: bool) -> Any:
    return cached(context, STAGE, parts, compute, kind, load_only=load_only)


def _scoring_parts(config: Any, model_name: str, probe_key: str, concepts_key: str) -> dict[str, Any]:
    settings = config.dissect
    return {"probe": probe_key, "seed": config.seed, "code": code_version("dissect"), "model": model_name,
            "weights": weights_key(config, model_name), "layers": list(settings.layers),
            "pool": "avg" if settings.pool == "mean" else "max", "concepts": concepts_key,
            "clip": weights_key(config, "clip"), "similarity": settings.similarity,
            "top_images": settings.top_images}


def describe(context: Any) -> str:
    from xai.data import cache_dir
    from xai.dissect import clip_embed, probes

    config = context.config
    settings = config.dissect
    line = (f"CLIP-Dissect of {', '.join(settings.models)} layers {', '.join(settings.layers)}, concepts "
            f"{settings.concepts!r}, {settings.similarity}")
    if settings.probe == "broden" and not (cache_dir() / "broden1_224" / "images").is_dir():
        return f"{line}; probe 'broden' (63,305 images, a 1 GB download on first use): not cached"
    paths, ids = probe_paths(config)
    probe_key = _probe_key(ids, paths)
    concepts_key = clip_embed.concepts_hash(probes.load_concepts(settings.concepts))
    cached = sum(context.cache.contains(STAGE, {**_scoring_parts(config, m, probe_key, concepts_key),
                                                "piece": "labels"}) for m in settings.models)
    passes = len(paths) * (1 + len(settings.models))
    return (f"{line}; probe {settings.probe!r} with {len(paths):,} images: {passes:,} forward passes "
            f"(CLIP once, then each model); {cached}/{len(settings.models)} models cached")


def _collect(context: Any, load_only: bool) -> DissectArtifacts:
    from torchvision.models import ResNet18_Weights

    from xai.dissect import analysis, clip_embed, probes
    from xai.dissect.activations import image_batches, layer_activations
    from xai.dissect.stage import dissect_model

    config = context.config
    settings = config.dissect
    paths, ids = probe_paths(config)
    probe_key = _probe_key(ids, paths)
    clip_key = weights_key(config, "clip")
    code = code_version("dissect")
    base = {"probe": probe_key, "seed": config.seed, "code": code}

    def clip_images() -> ArrayArtifact:
        clip = context.clip()
        batch_size = _probe_batch_size(context, "dissect:clip", "clip:encode_image", lambda: clip.module.encode_image,
                                       clip.preprocess)
        batches = image_batches(paths, clip.preprocess, batch_size)
        embeddings = clip_embed.encode_images(clip.module, context.progress(batches, "CLIP images"),
                                              device=context.device)
        return ArrayArtifact({"embeddings": embeddings})

    image_embeddings = _get(context, {**base, "piece": "clip-images", "clip": clip_key}, clip_images,
                            ArrayArtifact, load_only).arrays["embeddings"]

    def text_embeddings(concepts: list[str]) -> np.ndarray:
        def compute() -> ArrayArtifact:
            clip = context.clip()
            return ArrayArtifact({"embeddings": clip_embed.encode_texts(clip.module, clip.tokenizer, concepts,
                                                                        device=context.device)})

        parts = {"piece": "clip-texts", "clip": clip_key, "concepts": clip_embed.concepts_hash(concepts),
                 "code": code}
        return _get(context, parts, compute, ArrayArtifact, load_only).arrays["embeddings"]

    from xai.dissect.analysis import FcSelfCheck, ModelSummary
    from xai.dissect.result import DissectionResult

    concepts = probes.load_concepts(settings.concepts)
    concept_embeddings = text_embeddings(concepts)
    artifacts = DissectArtifacts(settings.probe, paths, settings.concepts)
    pool = "avg" if settings.pool == "mean" else "max"
    for model_name in settings.models:
        scoring = _scoring_parts(config, model_name, probe_key, clip_embed.concepts_hash(concepts))
        model_parts = {key: scoring[key] for key in ("probe", "seed", "code", "model", "weights", "layers", "pool")}

        def activations(model_name: str = model_name) -> ArrayArtifact:
            model = context.classifier(model_name).module
            transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
            batch_size = _probe_batch_size(context, f"dissect:{model_name}", "resnet18", lambda: model, transform)
            batches = context.progress(image_batches(paths, transform, batch_size), model_name)
            return ArrayArtifact(layer_activations(model, batches, settings.layers, pool=pool,
                                                   device=context.device))

        layer_acts = _get(context, {**model_parts, "piece": "activations"}, activations, ArrayArtifact,
                          load_only).arrays
        layer_acts = {layer: layer_acts[layer] for layer in settings.layers}
        result = _get(context, {**scoring, "piece": "labels"}, lambda acts=layer_acts, name=model_name: dissect_model(
            acts, image_embeddings, concept_embeddings, concepts, model_name=name, probe_ids=ids,
            similarity=settings.similarity, top_images=max(settings.top_images, 5), null_seed=config.seed),
            DissectionResult, load_only)
        artifacts.results[model_name] = result
        artifacts.summaries[model_name] = _get(
            context, {**scoring, "piece": "summary"}, lambda result=result: analysis.summarise_model(result),
            ModelSummary, load_only)
        if "fc" in settings.layers:
            class_set = SELF_CHECK_CONCEPTS[model_name]
            class_names = probes.load_concepts(class_set)
            class_embeddings = text_embeddings(class_names)

            def self_check(acts: np.ndarray = layer_acts["fc"], name: str = model_name,
                           class_names: list[str] = class_names,
                           class_embeddings: np.ndarray = class_embeddings) -> FcSelfCheck:
                fc_result = dissect_model({"fc": acts}, image_embeddings, class_embeddings, class_names,
                                          model_name=name, probe_ids=ids, similarity=settings.similarity,
                                          null_seed=None)
                return analysis.fc_self_check(fc_result, class_names, concept_embeddings=class_embeddings,
                                              class_embeddings=class_embeddings)

            artifacts.self_checks[model_name] = _get(
                context, {**scoring, "piece": "fc-self-check", "class_set": class_set}, self_check, FcSelfCheck,
                load_only)
            if settings.concepts != class_set:
                # The paper's metric: labels from the main concept set against the class names, by CLIP similarity.
                artifacts.label_checks[model_name] = _get(
                    context, {**scoring, "piece": "fc-label-check", "class_set": class_set},
                    lambda result=result, class_names=class_names, class_embeddings=class_embeddings:
                    analysis.fc_self_check(result, class_names, match="string", concept_embeddings=concept_embeddings,
                                           class_embeddings=class_embeddings), FcSelfCheck, load_only)
    if len(settings.models) >= 2:
        first, second = settings.models[:2]
        artifacts.comparison = analysis.compare_models(artifacts.results[first], artifacts.results[second])
    return artifacts


def run(context: Any) -> DissectArtifacts:
    return _collect(context, load_only=False)


def load_cached(context: Any) -> DissectArtifacts | None:
    try:
        return _collect(context, load_only=True)
    except NotCachedError:
        return None
