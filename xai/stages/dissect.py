"""Task 1: CLIP-Dissect of every classifier in ``dissect.models`` (the paper's two ResNet18s by default, or any
torchvision model or checkpoint), cached piece by piece.

CLIP image embeddings of the probe set are computed once and shared by all models; text embeddings are keyed
by (CLIP weights, architecture, precision, concept-list hash); each model's pooled activations by (its spec,
weights, layers as resolved, pooling, probe). Whatever of those is missing comes from one pass over the probe set
that decodes each image once (:mod:`xai.dissect.probe_pass`), each model fed its own weights' preprocessing (the
presets CLIP-Dissect's ResNet18 one). Scoring, the final-layer self-check (the paper's models only) and the
analyses build on those.

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

from xai.dissect import analysis, clip_embed, fc_check, paper, probes
from xai.dissect.analysis import FcSelfCheck, ModelComparison, ModelSummary
from xai.dissect.labelling import dissect_model
from xai.dissect.layers import layer_plan
from xai.dissect.result import DissectionResult
from xai.stages import NotCachedError, StageCache
from xai.stages.dissect_keys import (
    DissectedModel,
    activation_parts,
    clip_image_parts,
    clip_parts,
    clip_text_parts,
    dissected_model,
    pool_mode,
    scoring_parts,
    target_transform,
)

__all__ = ["STAGE", "DissectArtifacts", "activation_parts", "clip_parts", "describe", "load_cached", "run"]

if TYPE_CHECKING:
    import torch

    from xai.classifiers import ClassifierSpec
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
    models: dict[str, DissectedModel] = field(default_factory=dict)
    """display name -> architecture, weights, layers and pooling"""
    results: dict[str, DissectionResult] = field(default_factory=dict)
    """model name -> its neuron labels"""
    summaries: dict[str, ModelSummary] = field(default_factory=dict)
    self_checks: dict[str, FcSelfCheck] = field(default_factory=dict)
    """model name -> the fc layer scored on its own the paper's way (:func:`xai.dissect.fc_check.paper_self_check`)"""
    label_checks: dict[str, FcSelfCheck] = field(default_factory=dict)
    """model name -> the main concept set's fc labels against the class names (string match)"""
    comparison: ModelComparison | None = None
    """the first two models compared"""
    pool: str = "mean"
    """``dissect.pool``"""


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


def describe(context: RunContext) -> str:
    from xai.data import cache_dir

    config = context.config
    settings = config.dissect
    specs = settings.specs()
    line = (
        f"CLIP-Dissect of {', '.join(spec.display_name for spec in specs)} layers "
        f"{'auto' if settings.layers == 'auto' else ', '.join(settings.layers)}, concepts "
        f"{settings.concepts!r}, {settings.similarity}"
    )
    if settings.probe == "broden" and not (cache_dir() / "broden1_224" / "images").is_dir():
        return f"{line}; probe 'broden' (63,305 images, a 1 GB download on first use): not cached"
    probe = _probe_inputs(config, quiet=context.quiet)
    concepts_key = clip_embed.concepts_hash(probes.load_concepts(settings.concepts))
    cache = StageCache(context, STAGE)
    cached = sum(
        cache.contains({**scoring_parts(config, m, probe.key, concepts_key, context.device), "piece": "labels"})
        for m in specs
    )
    passes = len(probe.paths) * (1 + len(specs))
    return (
        f"{line}; probe {settings.probe!r} with {len(probe.paths):,} images: {passes:,} forward passes "
        f"(CLIP and each model, one pass that decodes each image once); "
        f"{cached}/{len(specs)} models cached"
    )


def _collect(context: RunContext, load_only: bool) -> DissectArtifacts:
    config = context.config
    settings = config.dissect
    cache = StageCache(context, STAGE, load_only)
    features = _probe_features(context, cache, _probe_inputs(config, quiet=context.quiet))
    embed: TextEmbedder = functools.partial(_text_embeddings, context, cache)
    concepts = probes.load_concepts(settings.concepts)
    concept_embeddings = embed(concepts)
    artifacts = DissectArtifacts(settings.probe, features.probe.paths, settings.concepts, pool=settings.pool)
    specs = settings.specs()
    for spec in specs:
        name = spec.display_name
        artifacts.models[name] = model = dissected_model(config, spec)
        scoring = scoring_parts(config, spec, features.probe.key, clip_embed.concepts_hash(concepts), context.device)
        result = _labels(context, cache, scoring, name, features, concepts, concept_embeddings)
        artifacts.results[name] = result
        artifacts.summaries[name] = cache.get(
            ModelSummary, {**scoring, "piece": "summary"}, functools.partial(analysis.summarise_model, result)
        )
        if not model.no_self_check:  # a preset with its fc dissected: the paper's model and final layer
            self_check, label_check = _fc_checks(context, cache, scoring, result, features, embed, concept_embeddings)
            artifacts.self_checks[name] = self_check
            if label_check is not None:
                artifacts.label_checks[name] = label_check
    if len(specs) >= 2:
        first, second = (spec.display_name for spec in specs[:2])
        artifacts.comparison = analysis.compare_models(artifacts.results[first], artifacts.results[second])
    return artifacts


def _probe_features(context: RunContext, cache: StageCache, probe: ProbeInputs) -> ProbeFeatures:
    """CLIP image embeddings and every model's pooled activations of the probe set, each from the cache or, for
    whatever is missing, from one joint pass; rows cut to the images every piece decoded. The images left out
    and how each checkpoint was read are recorded on the context (they may come from the cache)."""
    config = context.config
    specs = {spec.display_name: spec for spec in config.dissect.specs()}
    names = list(specs)
    image_parts = clip_image_parts(config, probe.key, context.device)
    activation_keys = {name: activation_parts(config, spec, probe.key, context.device) for name, spec in specs.items()}

    @functools.cache
    def joint_pass() -> ProbeOutputs:
        """One pass for every missing probe artifact (CLIP embeddings, each model's activations)."""
        return _probe_pass(
            context,
            probe.paths,
            pool_mode(config),
            clip_needed=not cache.contains(image_parts),
            models_needed=[specs[name] for name in names if not cache.contains(activation_keys[name])],
        )

    def clip_images() -> ArrayArtifact:
        return _probe_artifact({"embeddings": joint_pass().clip_embeddings}, joint_pass())

    def activations(name: str) -> ArrayArtifact:
        return _probe_artifact(joint_pass().activations[name], joint_pass(), context.classifier(specs[name]).load_note)

    image_piece = cache.get(ArrayArtifact, image_parts, clip_images)
    act_pieces = {
        name: cache.get(ArrayArtifact, activation_keys[name], functools.partial(activations, name)) for name in names
    }
    _record_probe_notes(context, [image_piece, *act_pieces.values()], act_pieces)
    kept, rows = _common_rows([image_piece, *act_pieces.values()], len(probe.paths))
    layers = {name: layer_plan(spec, config.dissect.layers).layers for name, spec in specs.items()}
    return ProbeFeatures(
        ProbeInputs([probe.paths[i] for i in kept], [probe.ids[i] for i in kept], probe.key),
        image_embeddings=image_piece.arrays["embeddings"][rows[0]],
        activations={
            name: {layer: piece.arrays[layer][piece_rows] for layer in layers[name]}
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


def _pass_batch_size(context: RunContext, clip: LoadedClip | None, models_needed: list[ClassifierSpec]) -> int:
    """Images per batch of the joint probe pass: measured on CLIP when it is in the pass (it costs most per
    image), else on the first model; every network of the pass takes the same decoded batch."""
    from xai.dissect.clip_embed import image_input_dtype

    if clip is not None:

        def clip_forward() -> Callable[..., Any]:
            dtype = image_input_dtype(clip.module)
            return lambda batch: clip.module.encode_image(batch.to(dtype))

        return _probe_batch_size(context, "dissect:clip", "clip:encode_image", clip_forward, clip.preprocess)
    first = models_needed[0]

    def model_forward() -> Callable[..., Any]:
        import torch

        model = context.classifier(first).module
        return lambda batch: model(batch.contiguous(memory_format=torch.channels_last))  # as the probe pass does

    return _probe_batch_size(
        context, f"dissect:{first.name}", f"{first.name}:channels_last", model_forward, target_transform(first)
    )


def _probe_pass(
    context: RunContext, paths: list[Path], pool: str, *, clip_needed: bool, models_needed: list[ClassifierSpec]
) -> ProbeOutputs:
    from xai.dissect.probe_pass import probe_pass

    settings = context.config.dissect
    clip = context.clip() if clip_needed else None
    names = (["CLIP"] if clip_needed else []) + [spec.display_name for spec in models_needed]
    bar = f"probe pass, {len(paths):,} images ({', '.join(names)})"
    plans = {spec.display_name: layer_plan(spec, settings.layers) for spec in models_needed}
    return probe_pass(
        paths,
        batch_size=_pass_batch_size(context, clip, models_needed),
        clip=clip.module if clip else None,
        clip_transform=clip.preprocess if clip else None,
        targets={spec.display_name: context.classifier(spec).module for spec in models_needed},
        target_transform={spec.display_name: target_transform(spec) for spec in models_needed},
        layers={name: plan.layers for name, plan in plans.items()},
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
