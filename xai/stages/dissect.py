"""Task 1: CLIP-Dissect of both ResNet18s, cached piece by piece.

CLIP image embeddings of the probe set are computed once and shared by both models; text embeddings are keyed
by (CLIP weights, architecture, precision, concept-list hash); each model's pooled activations by (model weights,
layers, pooling, probe). Whatever of those is missing comes from one pass over the probe set that decodes each
image once (:mod:`xai.dissect.probe_pass`). Scoring, the final-layer self-check and the analyses build on those.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai import models
from xai.cache import code_version, probe_code_version
from xai.dissect.labelling import dissect_model
from xai.stages import NotCachedError, cached, weights_key

STAGE = "dissect"


@dataclass(frozen=True)
class ArrayArtifact:
    """A named bundle of arrays (embeddings, activations) for the cache, with JSON notes (skipped probe images,
    how the weights were read) that must reach the run record even when the arrays come from the cache."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_parts(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return self.arrays, self.meta

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ArrayArtifact:
        return cls(dict(arrays), dict(meta))


def _probe_artifact(arrays: dict[str, np.ndarray], outputs: Any, load_note: str = "") -> ArrayArtifact:
    """Probe-pass arrays with the rows they cover (``kept``) and the images left out."""
    meta: dict[str, Any] = {"skipped": [list(item) for item in outputs.skipped]}
    if load_note:
        meta["load_note"] = load_note
    return ArrayArtifact({**arrays, "kept": outputs.kept}, meta)


def _common_rows(pieces: list[ArrayArtifact], n_paths: int) -> tuple[np.ndarray, list[Any]]:
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


def probe_paths(config: Any, *, quiet: bool = False) -> tuple[list[Path], list[str]]:
    """The probe images (after the stratified limit) and their ids; ``quiet`` hides the Broden download bar."""
    from xai.data import cache_dir
    from xai.dissect import probes

    probe = config.dissect.probe
    root: Path | None = None
    if probe == "imagenet-samples":
        paths = probes.imagenet_sample_paths()
    elif probe == "broden":
        root = cache_dir() / "broden1_224" / "images"
        paths = probes.broden_paths(cache_dir(), quiet=quiet)
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


def clip_parts(config: Any, device: Any) -> dict[str, Any]:
    """What identifies CLIP embeddings besides their inputs: weights, architecture (QuickGELU) and precision."""
    return {"clip": weights_key(config, "clip"), "clip_arch": models.CLIP_ARCH,
            "clip_dtype": str(models.clip_dtype(device)).removeprefix("torch.")}


def _scoring_parts(config: Any, model_name: str, probe_key: str, concepts_key: str, device: Any) -> dict[str, Any]:
    settings = config.dissect
    return {"probe": probe_key, "seed": config.seed, "code": code_version("dissect"), "model": model_name,
            "weights": weights_key(config, model_name), "layers": list(settings.layers),
            "pool": "avg" if settings.pool == "mean" else "max", "concepts": concepts_key,
            **clip_parts(config, device), "similarity": settings.similarity,
            "top_images": settings.top_images, "scoring_device": _device_type(device)}


def activation_parts(config: Any, model_name: str, probe_key: str, device: Any) -> dict[str, Any]:
    """Key of one model's pooled probe activations: CPU and CUDA (TF32, other kernels) give different numbers."""
    return {"probe": probe_key, "seed": config.seed, "code": probe_code_version(), "model": model_name,
            "weights": weights_key(config, model_name), "layers": list(config.dissect.layers),
            "pool": "avg" if config.dissect.pool == "mean" else "max", "device": _device_type(device),
            "piece": "activations"}


def _device_type(device: Any) -> str:
    import torch

    return torch.device(device).type


def describe(context: Any) -> str:
    from xai.data import cache_dir
    from xai.dissect import clip_embed, probes

    config = context.config
    settings = config.dissect
    line = (f"CLIP-Dissect of {', '.join(settings.models)} layers {', '.join(settings.layers)}, concepts "
            f"{settings.concepts!r}, {settings.similarity}")
    if settings.probe == "broden" and not (cache_dir() / "broden1_224" / "images").is_dir():
        return f"{line}; probe 'broden' (63,305 images, a 1 GB download on first use): not cached"
    paths, ids = probe_paths(config, quiet=context.quiet)
    probe_key = _probe_key(ids, paths)
    concepts_key = clip_embed.concepts_hash(probes.load_concepts(settings.concepts))
    cached = sum(context.cache.contains(STAGE, {**_scoring_parts(config, m, probe_key, concepts_key, context.device),
                                                "piece": "labels"}) for m in settings.models)
    passes = len(paths) * (1 + len(settings.models))
    return (f"{line}; probe {settings.probe!r} with {len(paths):,} images: {passes:,} forward passes "
            f"(CLIP and each model, one pass that decodes each image once); "
            f"{cached}/{len(settings.models)} models cached")


def _collect(context: Any, load_only: bool) -> DissectArtifacts:
    from xai.dissect import analysis, clip_embed, paper, probes
    from xai.dissect.analysis import FcSelfCheck, ModelSummary
    from xai.dissect.result import DissectionResult
    from xai.pipeline import SkippedImage

    config = context.config
    settings = config.dissect
    paths, ids = probe_paths(config, quiet=context.quiet)
    probe_key = _probe_key(ids, paths)
    # the probe artifacts carry the narrower code version of the modules that compute them
    base = {"probe": probe_key, "seed": config.seed, "code": probe_code_version()}
    pool = "avg" if settings.pool == "mean" else "max"
    device = context.device
    image_parts = {**base, "piece": "clip-images", **clip_parts(config, device)}
    concepts = probes.load_concepts(settings.concepts)
    concepts_key = clip_embed.concepts_hash(concepts)
    scorings = {m: _scoring_parts(config, m, probe_key, concepts_key, device) for m in settings.models}
    activations_key = {m: activation_parts(config, m, probe_key, device) for m in settings.models}
    joint: dict[str, Any] = {}

    def probe_outputs() -> Any:
        """One pass for every missing probe artifact (CLIP embeddings, each model's activations)."""
        if "outputs" not in joint:
            joint["outputs"] = _probe_pass(context, paths, pool,
                                           clip_needed=not context.cache.contains(STAGE, image_parts),
                                           models_needed=[m for m in settings.models
                                                          if not context.cache.contains(STAGE, activations_key[m])])
        return joint["outputs"]

    image_piece = _get(context, image_parts, lambda: _probe_artifact(
        {"embeddings": probe_outputs().clip_embeddings}, probe_outputs()), ArrayArtifact, load_only)
    act_pieces = {m: _get(context, activations_key[m], lambda name=m: _probe_artifact(
        probe_outputs().activations[name], probe_outputs(), context.classifier(name).load_note),
        ArrayArtifact, load_only) for m in settings.models}
    kept, rows = _common_rows([image_piece, *act_pieces.values()], len(paths))
    skipped = {path: reason for piece in (image_piece, *act_pieces.values())
               for path, reason in piece.meta.get("skipped", [])}
    known = {item.path for item in context.skipped}
    context.skipped.extend(SkippedImage(path, f"probe image {reason}") for path, reason in skipped.items()
                           if path not in known)
    for name, piece in act_pieces.items():
        if piece.meta.get("load_note"):
            context.load_notes[name] = piece.meta["load_note"]
    image_embeddings = image_piece.arrays["embeddings"][rows[0]]
    paths, ids = [paths[i] for i in kept], [ids[i] for i in kept]

    def text_embeddings(concept_list: list[str]) -> np.ndarray:
        def compute() -> ArrayArtifact:
            clip = context.clip()
            bar = f"CLIP text ({len(concept_list):,} concepts)"
            return ArrayArtifact({"embeddings": clip_embed.encode_texts(
                clip.module, clip.tokenizer, concept_list, device=device,
                progress=lambda items, total: context.progress(items, bar, total))})

        parts = {**base, "piece": "clip-texts", **clip_parts(config, device),
                 "concepts": clip_embed.concepts_hash(concept_list)}
        parts.pop("probe")
        return _get(context, parts, compute, ArrayArtifact, load_only).arrays["embeddings"]

    concept_embeddings = text_embeddings(concepts)
    artifacts = DissectArtifacts(settings.probe, paths, settings.concepts)
    for model_name in settings.models:
        scoring = scorings[model_name]
        piece_rows = rows[1 + list(act_pieces).index(model_name)]
        layer_acts = {layer: act_pieces[model_name].arrays[layer][piece_rows] for layer in settings.layers}
        bar = f"scoring {model_name} ({sum(a.shape[1] for a in layer_acts.values()):,} neurons, with null)"
        result = _get(context, {**scoring, "piece": "labels"}, lambda acts=layer_acts, name=model_name, bar=bar:
                      dissect_model(acts, image_embeddings, concept_embeddings, concepts, model_name=name,
                                    probe_ids=ids, similarity=settings.similarity,
                                    top_images=max(settings.top_images, 5), null_seed=config.seed, device=device,
                                    progress=lambda steps, total: context.progress(steps, bar, total)),
                      DissectionResult, load_only)
        artifacts.results[model_name] = result
        artifacts.summaries[model_name] = _get(
            context, {**scoring, "piece": "summary"}, lambda result=result: analysis.summarise_model(result),
            ModelSummary, load_only)
        if "fc" not in settings.layers:
            continue
        check = _fc_check_inputs(model_name, settings.probe, text_embeddings)
        artifacts.self_checks[model_name] = _get(
            context, {**scoring, "piece": "fc-self-check", "class_set": check["concept_set"],
                      "targets": check["targets_key"], "similarity": paper.PAPER_SIMILARITY},
            lambda acts=layer_acts["fc"], name=model_name, check=check: _fc_self_check(
                acts, image_embeddings, ids, name, check, device),
            FcSelfCheck, load_only)
        if settings.concepts != check["concept_set"]:
            # The paper's metric: labels from the main concept set against the class names, by CLIP similarity.
            artifacts.label_checks[model_name] = _get(
                context, {**scoring, "piece": "fc-label-check", "class_set": check["concept_set"]},
                lambda result=result, check=check: analysis.fc_self_check(
                    result, check["class_names"], match="string", concept_embeddings=concept_embeddings,
                    class_embeddings=check["class_embeddings"], concept_set=settings.concepts),
                FcSelfCheck, load_only)
    if len(settings.models) >= 2:
        first, second = settings.models[:2]
        artifacts.comparison = analysis.compare_models(artifacts.results[first], artifacts.results[second])
    return artifacts


def _pass_batch_size(context: Any, clip: Any, models_needed: list[str]) -> int:
    """Images per batch of the joint probe pass: measured on CLIP when it is in the pass (it costs most per
    image), else on ResNet18; every network of the pass takes the same decoded batch."""
    from torchvision.models import ResNet18_Weights

    from xai.dissect.clip_embed import image_input_dtype

    if clip is not None:
        def clip_forward() -> Any:
            dtype = image_input_dtype(clip.module)
            return lambda batch: clip.module.encode_image(batch.to(dtype))

        return _probe_batch_size(context, "dissect:clip", "clip:encode_image", clip_forward, clip.preprocess)
    def resnet_forward() -> Any:
        import torch

        model = context.classifier(models_needed[0]).module
        return lambda batch: model(batch.contiguous(memory_format=torch.channels_last))  # as the probe pass does

    return _probe_batch_size(context, "dissect:resnet18", "resnet18:channels_last", resnet_forward,
                             ResNet18_Weights.IMAGENET1K_V1.transforms())


def _probe_pass(context: Any, paths: list[Path], pool: str, *, clip_needed: bool, models_needed: list[str]) -> Any:
    from torchvision.models import ResNet18_Weights

    from xai.dissect.probe_pass import probe_pass

    settings = context.config.dissect
    clip = context.clip() if clip_needed else None
    names = (["CLIP"] if clip_needed else []) + models_needed
    bar = f"probe pass, {len(paths):,} images ({', '.join(names)})"
    return probe_pass(
        paths, batch_size=_pass_batch_size(context, clip, models_needed), clip=clip.module if clip else None,
        clip_transform=clip.preprocess if clip else None,
        targets={name: context.classifier(name).module for name in models_needed},
        # torchvision's IMAGENET1K_V1 transform = CLIP-Dissect's Resize(256), CenterCrop(224), ImageNet mean/std,
        # which it uses for both the ImageNet and the Places365 ResNet18.
        target_transform=ResNet18_Weights.IMAGENET1K_V1.transforms(), layers=settings.layers, pool=pool,
        device=context.device, progress=lambda batches, total: context.progress(batches, bar, total))


def _fc_check_inputs(model_name: str, probe: str, text_embeddings: Any) -> dict[str, Any]:
    """Concept set, class names, paper targets and embeddings of one model's fc self-check (paper rows 3.2/3.4)."""
    from xai.data import cache_dir
    from xai.dissect import paper, probes

    concept_set = paper.FC_CONCEPT_SETS[model_name]
    fc_concepts = probes.load_concepts(concept_set)
    check: dict[str, Any] = {"concept_set": concept_set, "concepts": fc_concepts, "match": paper.FC_MATCH[model_name],
                             "concept_embeddings": text_embeddings(fc_concepts), "targets": None, "rule": "index"}
    if check["match"] == "index":
        check["class_names"], check["class_embeddings"] = fc_concepts, check["concept_embeddings"]
    else:
        class_names = probes.places365_class_names()
        scenes_csv = cache_dir() / "broden1_224" / "c_scene.csv"
        scenes = paper.read_scene_names(scenes_csv) if probe == "broden" and scenes_csv.is_file() else None
        check.update(class_names=class_names, class_embeddings=text_embeddings(class_names),
                     targets=paper.places_targets(class_names, scenes, fc_concepts),
                     rule=paper.PLACES_SCORABLE_RULE if scenes is not None else "class name in the concept set")
    check["targets_key"] = hashlib.sha256(repr((check["rule"], check["targets"])).encode()).hexdigest()[:16]
    return check


def _fc_self_check(acts: np.ndarray, image_embeddings: np.ndarray, ids: list[str], model_name: str,
                   check: dict[str, Any], device: Any) -> Any:
    """The fc layer scored on its own the paper's way: SoftWPMI at the repository's defaults (whatever the main
    similarity), the paper's concept set, the paper's matching rule."""
    from xai.dissect import analysis, paper

    fc_result = dissect_model({"fc": acts}, image_embeddings, check["concept_embeddings"], check["concepts"],
                              model_name=model_name, probe_ids=ids, similarity=paper.PAPER_SIMILARITY,
                              null_seed=None, device=device)
    return analysis.fc_self_check(fc_result, check["class_names"], match=check["match"], targets=check["targets"],
                                  concept_embeddings=check["concept_embeddings"],
                                  class_embeddings=check["class_embeddings"], concept_set=check["concept_set"],
                                  scorable_rule=check["rule"])


def run(context: Any) -> DissectArtifacts:
    return _collect(context, load_only=False)


def load_cached(context: Any) -> DissectArtifacts | None:
    try:
        return _collect(context, load_only=True)
    except NotCachedError:
        return None
