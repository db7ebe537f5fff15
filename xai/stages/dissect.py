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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xai.context import NotCachedError, StageCache
from xai.dissect import analysis, clip_embed, fc_check, paper, probes
from xai.dissect.analysis import FcSelfCheck, ModelSummary
from xai.dissect.artifacts import (
    ArrayArtifact,
    DissectArtifacts,
    ProbeFeatures,
    ProbeInputs,
    common_rows,
    probe_artifact,
)
from xai.dissect.labelling import dissect_model
from xai.dissect.result import DissectionResult
from xai.estimate import StageWork
from xai.stages.dissect_keys import (
    _dissect,
    activation_parts,
    clip_image_parts,
    clip_text_parts,
    scoring_parts,
)
from xai.stages.probe_shards import probe_pass_in_shards

if TYPE_CHECKING:
    from xai.context import RunContext
    from xai.dissect.probe_pass import ProbeOutputs
    from xai.plan import DissectPlan, RunPlan

STAGE = "dissect"

TextEmbedder = Callable[[Sequence[str]], np.ndarray]
"""``embed(concepts) -> (M, D)`` CLIP text embeddings, from the cache or computed."""


def probe_inputs(planned: DissectPlan, seed: int, *, quiet: bool = False) -> ProbeInputs:
    """The probe images (after the stratified limit), their ids and their key; ``quiet`` hides the Broden download
    bar. File sizes stand in for content hashes in the key: hashing 63k Broden images on every run costs minutes."""
    paths, root = probes.probe_images(planned.probe, quiet=quiet)
    paths = probes.stratified_limit(paths, planned.probe_limit, seed=seed, root=root)
    ids = probes.probe_ids(paths, root)
    digest = hashlib.sha256()
    for probe_id, path in zip(ids, paths, strict=True):
        digest.update(f"{probe_id}\0{path.stat().st_size}\n".encode())
    return ProbeInputs(paths, ids, digest.hexdigest()[:24])


def _probe_files_missing(context: RunContext) -> bool:
    """Whether a probe image the stage reads is neither in the mirror nor downloaded (checked on disk only)."""
    from xai import downloads

    return downloads.broden_needed(context.plan, (STAGE,)) or STAGE in downloads.missing_files(context.plan, (STAGE,))


def describe(context: RunContext) -> str:
    planned = _dissect(context)
    layers = planned.layers_setting
    models = ", ".join(
        f"{entry.model_id} ({entry.facts.weights_member}: {entry.facts.preprocessing})" for entry in planned.models
    )
    line = (
        f"CLIP-Dissect of {models}, layers "
        f"{'auto' if layers == 'auto' else ', '.join(layers)}, concepts {planned.concepts!r}, {planned.similarity}"
    )
    if planned.probe == "broden" and _probe_files_missing(context):
        return f"{line}; probe 'broden' (63,305 images, a 1 GB download on first use): not cached"
    probe = probe_inputs(planned, context.plan.seed, quiet=context.quiet)
    concepts_key = clip_embed.concepts_hash(probes.load_concepts(planned.concepts))
    cache = StageCache(context, STAGE)
    cached = sum(
        cache.contains({**scoring_parts(context, entry, probe.key, concepts_key), "piece": "labels"})
        for entry in planned.models
    )
    passes = len(probe.paths) * (1 + len(planned.models))
    return (
        f"{line}; probe {planned.probe!r} with {len(probe.paths):,} images: {passes:,} forward passes "
        f"(CLIP and each model, one pass that decodes each image once); "
        f"{cached}/{len(planned.models)} models cached"
    )


@dataclass(frozen=True)
class DissectedModels:
    """What :func:`dissect_models` gives: the probe features, the concept set and its CLIP text embeddings, and each
    model's labels with the key parts they are cached under (``scoring``: what derived pieces extend)."""

    features: ProbeFeatures
    concepts: list[str]
    concept_embeddings: np.ndarray
    results: dict[str, DissectionResult]
    scoring: dict[str, dict[str, Any]]


def dissect_models(context: RunContext, planned: DissectPlan, *, load_only: bool = False) -> DissectedModels:
    """CLIP-Dissect of ``planned.models``: probe inputs -> probe features (one joint pass for whatever is missing)
    -> concept text embeddings -> each model's labels with the shuffled-probe null. Every piece is an entry of
    this stage's cache under the keys of :mod:`xai.stages.dissect_keys`, so a plan with Task 1's probe, concept set
    and CLIP (the concepts stage's dissection of the explained model) shares Task 1's CLIP embeddings.

    Raises:
        NotCachedError: ``load_only`` and a piece is not cached.
    """
    cache = StageCache(context, STAGE, load_only)
    features = probe_features(context, cache, probe_inputs(planned, context.plan.seed, quiet=context.quiet), planned)
    concepts = probes.load_concepts(planned.concepts)
    concept_embeddings = _text_embeddings(context, cache, concepts, planned)
    results, scoring = {}, {}
    for entry in planned.models:
        name = entry.model_id
        scoring[name] = scoring_parts(context, entry, features.probe.key, clip_embed.concepts_hash(concepts), planned)
        results[name] = _labels(context, cache, scoring[name], name, features, concepts, concept_embeddings, planned)
    return DissectedModels(features, concepts, concept_embeddings, results, scoring)


def work(plan: RunPlan, *, n_images: int, image_shape: tuple[int, ...], n_probe: int | None) -> StageWork:
    """The plan's estimate of this stage (:mod:`xai.estimate`): every probe image once through CLIP and each
    dissected model (one joint pass)."""
    from xai.estimate_work import probe_networks

    work = StageWork(STAGE)
    if plan.dissect is not None and n_probe is not None:
        for network in probe_networks(plan.dissect):
            work.add(network, n_probe)
    return work


def units(context: RunContext) -> str:
    """The plan's count of this stage's units: the probe pass's shards, when a probe piece is missing."""
    return probe_units(context, _dissect(context), STAGE, files_missing=_probe_files_missing(context))


def probe_units(context: RunContext, planned: DissectPlan, name: str, *, files_missing: bool) -> str:
    """The plan's count of the probe shards the dissection ``planned`` sends (Task 1's, or the concepts stage's),
    for the stage ``name``: none when every probe piece is cached."""
    from xai.stages.probe_shards import shard_quantum, shard_ranges
    from xai.units import executor_of

    if planned.probe == "broden" and files_missing:
        return f"{name}: probe shards once Broden is downloaded"
    probe = probe_inputs(planned, context.plan.seed, quiet=True)
    keys = [
        clip_image_parts(context, probe.key, planned),
        *(activation_parts(context, entry, probe.key, planned) for entry in planned.models),
    ]
    if all(StageCache(context, STAGE).contains(parts) for parts in keys):
        return f"{name} 0 (the probe pass is cached)"
    shards = shard_ranges(len(probe.paths), shard_quantum(planned.batch_size), executor_of(context).parallelism)
    return f"{name} {len(shards)} probe shard(s) of up to {max(b - a for a, b in shards):,} images"


def _collect(context: RunContext, load_only: bool) -> DissectArtifacts:
    planned = _dissect(context)
    cache = StageCache(context, STAGE, load_only)
    dissected = dissect_models(context, planned, load_only=load_only)
    features, concept_embeddings = dissected.features, dissected.concept_embeddings
    embed: TextEmbedder = functools.partial(_text_embeddings, context, cache)
    artifacts = DissectArtifacts(planned.probe, features.probe.paths, planned.concepts, pool=planned.pool)
    for entry in planned.models:
        name = entry.model_id
        artifacts.models[name] = entry.facts
        scoring = dissected.scoring[name]
        result = dissected.results[name]
        artifacts.results[name] = result
        artifacts.summaries[name] = cache.get(
            ModelSummary, {**scoring, "piece": "summary"}, functools.partial(analysis.summarise_model, result)
        )
        if not entry.facts.no_self_check:  # a preset with its fc dissected: the paper's model and final layer
            self_check, label_check = _fc_checks(context, cache, scoring, result, features, embed, concept_embeddings)
            artifacts.self_checks[name] = self_check
            if label_check is not None:
                artifacts.label_checks[name] = label_check
    if len(planned.models) >= 2:
        first, second = (entry.model_id for entry in planned.models[:2])
        artifacts.comparison = analysis.compare_models(artifacts.results[first], artifacts.results[second])
    return artifacts


def probe_features(context: RunContext, cache: StageCache, probe: ProbeInputs, planned: DissectPlan) -> ProbeFeatures:
    """CLIP image embeddings and every model's pooled activations of the probe set, each from the cache or, for
    whatever is missing, from one joint pass; rows cut to the images every piece decoded. The images left out
    and how each checkpoint was read are recorded on the context (they may come from the cache)."""
    entries = {entry.model_id: entry for entry in planned.models}
    image_parts = clip_image_parts(context, probe.key, planned)
    activation_keys = {name: activation_parts(context, entry, probe.key, planned) for name, entry in entries.items()}

    @functools.cache
    def joint_pass() -> ProbeOutputs:
        """One pass for every missing probe artifact (CLIP embeddings, each model's activations)."""
        return probe_pass_in_shards(
            context,
            probe.paths,
            planned,
            clip_needed=not cache.contains(image_parts),
            models_needed=[entry for name, entry in entries.items() if not cache.contains(activation_keys[name])],
        )

    def clip_images() -> ArrayArtifact:
        return probe_artifact({"embeddings": joint_pass().clip_embeddings}, joint_pass())

    def activations(name: str) -> ArrayArtifact:
        outputs = joint_pass()  # the worker that built the model recorded how it read the checkpoint
        return probe_artifact(outputs.activations[name], outputs, context.load_notes.get(name, ""))

    image_piece = cache.get(ArrayArtifact, image_parts, clip_images)
    act_pieces = {
        name: cache.get(ArrayArtifact, activation_keys[name], functools.partial(activations, name)) for name in entries
    }
    _record_probe_notes(context, [image_piece, *act_pieces.values()], act_pieces)
    kept, rows = common_rows([image_piece, *act_pieces.values()], len(probe.paths))
    return ProbeFeatures(
        ProbeInputs([probe.paths[i] for i in kept], [probe.ids[i] for i in kept], probe.key),
        image_embeddings=image_piece.arrays["embeddings"][rows[0]],
        activations={
            name: {layer: piece.arrays[layer][piece_rows] for layer in entries[name].layers.layers}
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


def _text_embeddings(
    context: RunContext, cache: StageCache, concepts: Sequence[str], planned: DissectPlan | None = None
) -> np.ndarray:
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

    parts = clip_text_parts(context, concepts, planned)
    return cache.get(ArrayArtifact, parts, encode).arrays["embeddings"]


def _labels(
    context: RunContext,
    cache: StageCache,
    scoring: dict[str, Any],
    name: str,
    features: ProbeFeatures,
    concepts: list[str],
    concept_embeddings: np.ndarray,
    planned: DissectPlan,
) -> DissectionResult:
    """One model's neuron labels (:func:`xai.dissect.labelling.dissect_model`), with the shuffled-probe null."""
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
            similarity=planned.similarity,
            top_images=max(planned.top_images, 5),
            null_seed=context.plan.seed,
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
    planned = _dissect(context)
    name = result.model_name
    check = fc_check.fc_check_inputs(name, planned.probe, embed)
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
    if planned.concepts == check.concept_set:
        return self_check, None
    label_check = cache.get(
        FcSelfCheck,
        {**scoring, "piece": "fc-label-check", "class_set": check.concept_set},
        functools.partial(fc_check.label_check, result, check, concept_embeddings, planned.concepts),
    )
    return self_check, label_check


def run(context: RunContext) -> DissectArtifacts:
    return _collect(context, load_only=False)


def load_cached(context: RunContext) -> DissectArtifacts | None:
    """The cached artifacts, never downloading: a probe set not on disk means nothing is cached to show."""
    if _probe_files_missing(context):
        return None
    try:
        return _collect(context, load_only=True)
    except NotCachedError:
        return None
