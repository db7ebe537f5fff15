"""Task 1: CLIP-Dissect of both ResNet18s, cached piece by piece.

CLIP image embeddings of the probe set are computed once and shared by both models; text embeddings are keyed
by (CLIP weights, architecture, precision, concept-list hash); each model's pooled activations by (model weights,
layers, pooling, probe). Whatever of those is missing comes from one pass over the probe set that decodes each
image once (:mod:`xai.dissect.probe_pass`). Scoring, the final-layer self-check and the analyses build on those.

The plan :func:`_collect` executes: probe inputs -> probe features (CLIP image embeddings and every model's
activations, one joint pass for what is missing) -> concept text embeddings -> per model: labels, summary, fc
self-check, fc label check -> model comparison.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai import models
from xai.cache import Parts, code_version, probe_code_version
from xai.dissect import analysis, clip_embed, fc_check, paper, probes
from xai.dissect.analysis import FcSelfCheck, ModelComparison, ModelSummary
from xai.dissect.labelling import dissect_model
from xai.dissect.result import DissectionResult
from xai.stages import NotCachedError, StageCache, weights_key

if TYPE_CHECKING:
    import torch

    from xai.config import Config
    from xai.dissect.probe_pass import ProbeOutputs
    from xai.models import LoadedClip
    from xai.pipeline import RunContext

    Device = torch.device | str

STAGE = "dissect"

TextEmbedder = Callable[[Sequence[str]], np.ndarray]
"""``embed(concepts) -> (M, D)`` CLIP text embeddings, from the cache or computed."""


@dataclass(frozen=True)
class ArrayArtifact:
    """A named bundle of arrays (embeddings, activations) for the cache, with JSON notes (skipped probe images,
    how the weights were read) that must reach the run record even when the arrays come from the cache."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_parts(self) -> Parts:
        return self.arrays, self.meta

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ArrayArtifact:
        return cls(dict(arrays), dict(meta))


def _probe_artifact(arrays: dict[str, np.ndarray], outputs: ProbeOutputs, load_note: str = "") -> ArrayArtifact:
    """Probe-pass arrays with the rows they cover (``kept``) and the images left out."""
    meta: dict[str, Any] = {"skipped": [list(item) for item in outputs.skipped]}
    if load_note:
        meta["load_note"] = load_note
    return ArrayArtifact({**arrays, "kept": outputs.kept}, meta)


def _common_rows(pieces: list[ArrayArtifact], n_paths: int) -> tuple[np.ndarray, list[slice | np.ndarray]]:
    """Probe indices every piece covers, and for each piece the rows that hold them (an image one pass could not
    decode is left out of all)."""
    kept = [piece.arrays.get("kept", np.arange(n_paths)) for piece in pieces]
    common = kept[0]
    for other in kept[1:]:
        common = np.intersect1d(common, other)
    return common, [slice(None) if len(k) == len(common) else np.searchsorted(k, common) for k in kept]


@dataclass
class DissectArtifacts:
    probe_name: str
    probe_paths: list[Path]
    concept_set: str
    results: dict[str, DissectionResult] = field(default_factory=dict)
    """model name -> its neuron labels"""
    summaries: dict[str, ModelSummary] = field(default_factory=dict)
    self_checks: dict[str, FcSelfCheck] = field(default_factory=dict)
    """model name -> the fc layer scored on its own the paper's way (:func:`xai.dissect.fc_check.paper_self_check`)"""
    label_checks: dict[str, FcSelfCheck] = field(default_factory=dict)
    """model name -> the main concept set's fc labels against the class names (string match)"""
    comparison: ModelComparison | None = None
    """the first two models compared"""


@dataclass(frozen=True)
class ProbeInputs:
    """The probe images of a run, their ids, and the key that identifies them in cache keys."""

    paths: list[Path]
    ids: list[str]
    key: str


@dataclass(frozen=True)
class ProbeFeatures:
    """What every model's scoring reads, on the probe images every piece could decode: CLIP image embeddings
    ``(N, D)`` and each model's pooled activations ``{model: {layer: (N, K)}}``."""

    probe: ProbeInputs
    image_embeddings: np.ndarray
    activations: dict[str, dict[str, np.ndarray]]


def probe_paths(config: Config, *, quiet: bool = False) -> tuple[list[Path], list[str]]:
    """The probe images (after the stratified limit) and their ids; ``quiet`` hides the Broden download bar."""
    paths, root = probes.probe_images(config.dissect.probe, quiet=quiet)
    paths = probes.stratified_limit(paths, config.dissect.probe_limit, seed=config.seed, root=root)
    return paths, probes.probe_ids(paths, root)


def _probe_key(ids: list[str], paths: list[Path]) -> str:
    # File sizes stand in for content hashes: hashing 63k Broden images on every run would cost minutes.
    digest = hashlib.sha256()
    for probe_id, path in zip(ids, paths, strict=True):
        digest.update(f"{probe_id}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:24]


def _probe_inputs(config: Config, *, quiet: bool) -> ProbeInputs:
    paths, ids = probe_paths(config, quiet=quiet)
    return ProbeInputs(paths, ids, _probe_key(ids, paths))


def _probe_batch_size(
    context: RunContext,
    label: str,
    model_id: str,
    forward: Callable[[], Callable[..., Any]],
    transform: Callable[..., Any],
) -> int:
    """Images per probe-pass forward: the config's number, or measured for ``model_id`` (the architecture, so
    both ResNet18s share one measurement) at its transform's input size."""
    from PIL import Image

    from xai.batching import stage_batch_size

    shape = tuple(transform(Image.new("RGB", (256, 256))).shape)
    return stage_batch_size(
        context, label, context.config.dissect.batch_size, model_id=model_id, forward=forward, input_shape=shape
    )


def _pool(config: Config) -> str:
    return "avg" if config.dissect.pool == "mean" else "max"


def clip_parts(config: Config, device: Device) -> dict[str, Any]:
    """What identifies CLIP embeddings besides their inputs: weights, architecture (QuickGELU) and precision."""
    return {
        "clip": weights_key(config, "clip"),
        "clip_arch": models.CLIP_ARCH,
        "clip_dtype": str(models.clip_dtype(device)).removeprefix("torch."),
    }


def _probe_artifact_parts(config: Config) -> dict[str, Any]:
    # the probe artifacts carry the narrower code version of the modules that compute them
    return {"seed": config.seed, "code": probe_code_version()}


def clip_image_parts(config: Config, probe_key: str, device: Device) -> dict[str, Any]:
    """Key of the probe set's CLIP image embeddings."""
    return {"probe": probe_key, **_probe_artifact_parts(config), "piece": "clip-images", **clip_parts(config, device)}


def clip_text_parts(config: Config, concepts: Sequence[str], device: Device) -> dict[str, Any]:
    """Key of a concept list's CLIP text embeddings (independent of the probe set)."""
    return {
        **_probe_artifact_parts(config),
        "piece": "clip-texts",
        **clip_parts(config, device),
        "concepts": clip_embed.concepts_hash(concepts),
    }


def activation_parts(config: Config, model_name: str, probe_key: str, device: Device) -> dict[str, Any]:
    """Key of one model's pooled probe activations: CPU and CUDA (TF32, other kernels) give different numbers."""
    return {
        "probe": probe_key,
        "seed": config.seed,
        "code": probe_code_version(),
        "model": model_name,
        "weights": weights_key(config, model_name),
        "layers": list(config.dissect.layers),
        "pool": _pool(config),
        "device": _device_type(device),
        "piece": "activations",
    }


def _scoring_parts(
    config: Config, model_name: str, probe_key: str, concepts_key: str, device: Device
) -> dict[str, Any]:
    settings = config.dissect
    return {
        "probe": probe_key,
        "seed": config.seed,
        "code": code_version("dissect"),
        "model": model_name,
        "weights": weights_key(config, model_name),
        "layers": list(settings.layers),
        "pool": _pool(config),
        "concepts": concepts_key,
        **clip_parts(config, device),
        "similarity": settings.similarity,
        "top_images": settings.top_images,
        "scoring_device": _device_type(device),
    }


def _device_type(device: Device) -> str:
    import torch

    return torch.device(device).type


def describe(context: RunContext) -> str:
    from xai.data import cache_dir

    config = context.config
    settings = config.dissect
    line = (
        f"CLIP-Dissect of {', '.join(settings.models)} layers {', '.join(settings.layers)}, concepts "
        f"{settings.concepts!r}, {settings.similarity}"
    )
    if settings.probe == "broden" and not (cache_dir() / "broden1_224" / "images").is_dir():
        return f"{line}; probe 'broden' (63,305 images, a 1 GB download on first use): not cached"
    probe = _probe_inputs(config, quiet=context.quiet)
    concepts_key = clip_embed.concepts_hash(probes.load_concepts(settings.concepts))
    cache = StageCache(context, STAGE)
    cached = sum(
        cache.contains({**_scoring_parts(config, m, probe.key, concepts_key, context.device), "piece": "labels"})
        for m in settings.models
    )
    passes = len(probe.paths) * (1 + len(settings.models))
    return (
        f"{line}; probe {settings.probe!r} with {len(probe.paths):,} images: {passes:,} forward passes "
        f"(CLIP and each model, one pass that decodes each image once); "
        f"{cached}/{len(settings.models)} models cached"
    )


def _collect(context: RunContext, load_only: bool) -> DissectArtifacts:
    config = context.config
    settings = config.dissect
    cache = StageCache(context, STAGE, load_only)
    features = _probe_features(context, cache, _probe_inputs(config, quiet=context.quiet))
    embed: TextEmbedder = functools.partial(_text_embeddings, context, cache)
    concepts = probes.load_concepts(settings.concepts)
    concept_embeddings = embed(concepts)
    artifacts = DissectArtifacts(settings.probe, features.probe.paths, settings.concepts)
    for name in settings.models:
        scoring = _scoring_parts(config, name, features.probe.key, clip_embed.concepts_hash(concepts), context.device)
        result = _labels(context, cache, scoring, name, features, concepts, concept_embeddings)
        artifacts.results[name] = result
        artifacts.summaries[name] = cache.get(
            ModelSummary, {**scoring, "piece": "summary"}, functools.partial(analysis.summarise_model, result)
        )
        if "fc" in settings.layers:
            self_check, label_check = _fc_checks(context, cache, scoring, result, features, embed, concept_embeddings)
            artifacts.self_checks[name] = self_check
            if label_check is not None:
                artifacts.label_checks[name] = label_check
    if len(settings.models) >= 2:
        first, second = settings.models[:2]
        artifacts.comparison = analysis.compare_models(artifacts.results[first], artifacts.results[second])
    return artifacts


def _probe_features(context: RunContext, cache: StageCache, probe: ProbeInputs) -> ProbeFeatures:
    """CLIP image embeddings and every model's pooled activations of the probe set, each from the cache or, for
    whatever is missing, from one joint pass; rows cut to the images every piece decoded. The images left out
    and how each checkpoint was read are recorded on the context (they may come from the cache)."""
    config = context.config
    names = config.dissect.models
    image_parts = clip_image_parts(config, probe.key, context.device)
    activation_keys = {name: activation_parts(config, name, probe.key, context.device) for name in names}

    @functools.cache
    def joint_pass() -> ProbeOutputs:
        """One pass for every missing probe artifact (CLIP embeddings, each model's activations)."""
        return _probe_pass(
            context,
            probe.paths,
            _pool(config),
            clip_needed=not cache.contains(image_parts),
            models_needed=[name for name in names if not cache.contains(activation_keys[name])],
        )

    def clip_images() -> ArrayArtifact:
        return _probe_artifact({"embeddings": joint_pass().clip_embeddings}, joint_pass())

    def activations(name: str) -> ArrayArtifact:
        return _probe_artifact(joint_pass().activations[name], joint_pass(), context.classifier(name).load_note)

    image_piece = cache.get(ArrayArtifact, image_parts, clip_images)
    act_pieces = {
        name: cache.get(ArrayArtifact, activation_keys[name], functools.partial(activations, name)) for name in names
    }
    _record_probe_notes(context, [image_piece, *act_pieces.values()], act_pieces)
    kept, rows = _common_rows([image_piece, *act_pieces.values()], len(probe.paths))
    layers = config.dissect.layers
    return ProbeFeatures(
        ProbeInputs([probe.paths[i] for i in kept], [probe.ids[i] for i in kept], probe.key),
        image_embeddings=image_piece.arrays["embeddings"][rows[0]],
        activations={
            name: {layer: piece.arrays[layer][piece_rows] for layer in layers}
            for (name, piece), piece_rows in zip(act_pieces.items(), rows[1:], strict=True)
        },
    )


def _record_probe_notes(context: RunContext, pieces: list[ArrayArtifact], act_pieces: dict[str, ArrayArtifact]) -> None:
    """Probe images some piece could not decode (as skipped inputs), and each model's checkpoint note."""
    for piece in pieces:
        for path, reason in piece.meta.get("skipped", []):
            context.note_skipped(path, f"probe image {reason}")
    for name, piece in act_pieces.items():
        if piece.meta.get("load_note"):
            context.load_notes[name] = piece.meta["load_note"]


def _text_embeddings(context: RunContext, cache: StageCache, concepts: Sequence[str]) -> np.ndarray:
    """CLIP text embeddings ``(M, D)`` of ``concepts``, shared by every model and probe set."""

    def encode() -> ArrayArtifact:
        clip = context.clip()
        bar = f"CLIP text ({len(concepts):,} concepts)"
        return ArrayArtifact(
            {
                "embeddings": clip_embed.encode_texts(
                    clip.module,
                    clip.tokenizer,
                    list(concepts),
                    device=context.device,
                    progress=lambda items, total: context.progress(items, bar, total),
                )
            }
        )

    parts = clip_text_parts(context.config, concepts, context.device)
    return cache.get(ArrayArtifact, parts, encode).arrays["embeddings"]


def _labels(
    context: RunContext,
    cache: StageCache,
    scoring: dict[str, Any],
    name: str,
    features: ProbeFeatures,
    concepts: list[str],
    concept_embeddings: np.ndarray,
) -> DissectionResult:
    """One model's neuron labels (:func:`xai.dissect.labelling.dissect_model`), with the shuffled-probe null."""
    settings = context.config.dissect
    activations = features.activations[name]
    bar = f"scoring {name} ({sum(a.shape[1] for a in activations.values()):,} neurons, with null)"

    def label() -> DissectionResult:
        return dissect_model(
            activations,
            features.image_embeddings,
            concept_embeddings,
            concepts,
            model_name=name,
            probe_ids=features.probe.ids,
            similarity=settings.similarity,
            top_images=max(settings.top_images, 5),
            null_seed=context.config.seed,
            device=context.device,
            progress=lambda steps, total: context.progress(steps, bar, total),
        )

    return cache.get(DissectionResult, {**scoring, "piece": "labels"}, label)


def _fc_checks(
    context: RunContext,
    cache: StageCache,
    scoring: dict[str, Any],
    result: DissectionResult,
    features: ProbeFeatures,
    embed: TextEmbedder,
    concept_embeddings: np.ndarray,
) -> tuple[FcSelfCheck, FcSelfCheck | None]:
    """One model's fc layer checked against its classes: scored on its own the paper's way, and (when the main
    concept set is not the paper's) its main labels against the class names."""
    settings = context.config.dissect
    name = result.model_name
    check = fc_check.fc_check_inputs(name, settings.probe, embed)
    self_check = cache.get(
        FcSelfCheck,
        {
            **scoring,
            "piece": "fc-self-check",
            "class_set": check.concept_set,
            "targets": check.targets_key,
            "similarity": paper.PAPER_SIMILARITY,
        },
        functools.partial(
            fc_check.paper_self_check,
            features.activations[name]["fc"],
            features.image_embeddings,
            features.probe.ids,
            name,
            check,
            context.device,
        ),
    )
    if settings.concepts == check.concept_set:
        return self_check, None
    label_check = cache.get(
        FcSelfCheck,
        {**scoring, "piece": "fc-label-check", "class_set": check.concept_set},
        functools.partial(fc_check.label_check, result, check, concept_embeddings, settings.concepts),
    )
    return self_check, label_check


def _pass_batch_size(context: RunContext, clip: LoadedClip | None, models_needed: list[str]) -> int:
    """Images per batch of the joint probe pass: measured on CLIP when it is in the pass (it costs most per
    image), else on ResNet18; every network of the pass takes the same decoded batch."""
    from torchvision.models import ResNet18_Weights

    from xai.dissect.clip_embed import image_input_dtype

    if clip is not None:

        def clip_forward() -> Callable[..., Any]:
            dtype = image_input_dtype(clip.module)
            return lambda batch: clip.module.encode_image(batch.to(dtype))

        return _probe_batch_size(context, "dissect:clip", "clip:encode_image", clip_forward, clip.preprocess)

    def resnet_forward() -> Callable[..., Any]:
        import torch

        model = context.classifier(models_needed[0]).module
        return lambda batch: model(batch.contiguous(memory_format=torch.channels_last))  # as the probe pass does

    return _probe_batch_size(
        context,
        "dissect:resnet18",
        "resnet18:channels_last",
        resnet_forward,
        ResNet18_Weights.IMAGENET1K_V1.transforms(),
    )


def _probe_pass(
    context: RunContext, paths: list[Path], pool: str, *, clip_needed: bool, models_needed: list[str]
) -> ProbeOutputs:
    from torchvision.models import ResNet18_Weights

    from xai.dissect.probe_pass import probe_pass

    settings = context.config.dissect
    clip = context.clip() if clip_needed else None
    names = (["CLIP"] if clip_needed else []) + models_needed
    bar = f"probe pass, {len(paths):,} images ({', '.join(names)})"
    return probe_pass(
        paths,
        batch_size=_pass_batch_size(context, clip, models_needed),
        clip=clip.module if clip else None,
        clip_transform=clip.preprocess if clip else None,
        targets={name: context.classifier(name).module for name in models_needed},
        # torchvision's IMAGENET1K_V1 transform = CLIP-Dissect's Resize(256), CenterCrop(224), ImageNet mean/std,
        # which it uses for both the ImageNet and the Places365 ResNet18.
        target_transform=ResNet18_Weights.IMAGENET1K_V1.transforms(),
        layers=settings.layers,
        pool=pool,
        device=context.device,
        progress=lambda batches, total: context.progress(batches, bar, total),
    )


def run(context: RunContext) -> DissectArtifacts:
    return _collect(context, load_only=False)


def load_cached(context: RunContext) -> DissectArtifacts | None:
    try:
        return _collect(context, load_only=True)
    except NotCachedError:
        return None
