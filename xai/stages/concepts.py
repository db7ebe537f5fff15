"""Why each prediction, in concepts (issue #21): the explained model's target layer dissected with Task 1's
settings, then each explained image's logit split over that layer's labelled units and checked both ways
(:mod:`xai.concepts`).

The plan this stage executes: the explained model dissected at its CAM target layer (:func:`xai.stages.dissect.
dissect_models`: Task 1's pieces and keys, so the probe set's and the concept set's CLIP embeddings are the same
cache entries as Task 1's when the settings match) -> the layer's labels with Task 1's interpretability threshold and
each unit's probe-set mean -> per explained image, from the explain stage's prediction, CAMs and LIME,
:func:`xai.concepts.explain_in_concepts`, cached per image -> the summary across images (arithmetic, not cached).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xai.cache import code_version
from xai.concepts import ConceptExplanation
from xai.context import NotCachedError, StageCache
from xai.estimate import StageWork
from xai.stages import dissect as dissect_stage

if TYPE_CHECKING:
    import numpy as np

    from xai.concepts import ClipFunctions, UnitLabels
    from xai.concepts.artifacts import ConceptArtifacts
    from xai.context import InputImage, RunContext
    from xai.explain.explained import ExplainArtifacts, ExplainedImage
    from xai.plan import ConceptsPlan, ExplainPlan, RunPlan

STAGE = "concepts"
CODE = ("concepts", "dissect", "explain", "compare/agreement", "compare/nulls", "compare/_parts")
"""The domain code that computes this stage's per-image artifacts: the concepts package and what it imports (the
dissection's analysis, the explain package's hooks, Task 3's area-matched agreement and tie-breaking), and the
explain package that made the CAMs and LIME it compares with. The dissection's own pieces keep Task 1's keys."""


def _plans(context: RunContext) -> tuple[ExplainPlan, ConceptsPlan]:
    explain, planned = context.plan.explain, context.plan.concepts
    if explain is None or planned is None:
        raise ValueError("the run plan has no concepts section")  # a bug: the plan makes one for this stage
    return explain, planned


def _probe_files_missing(context: RunContext) -> bool:
    """Whether a probe image the dissection reads is neither in the mirror nor downloaded (checked on disk)."""
    from xai import downloads

    return downloads.broden_needed(context.plan, (STAGE,)) or STAGE in downloads.missing_files(context.plan, (STAGE,))


def describe(context: RunContext) -> str:
    explain, planned = _plans(context)
    settings, dissect = planned.settings, planned.dissect
    line = (
        f"{explain.model_id} at {explain.target.path} ({explain.channels:,} units) labelled by CLIP-Dissect with "
        f"probe {dissect.probe!r}, concepts {dissect.concepts!r}, {dissect.similarity}; per image: contributions "
        f"({settings.method}), removal of K in {list(settings.ks)} units against {settings.random_sets} random sets "
        f"each, {settings.shown} concepts checked by CLIP on {1 + settings.random_crops} crops each"
    )
    if _probe_files_missing(context):
        return f"{line}; not cached"
    key = _dissection_key(context)
    done = sum(StageCache(context, STAGE).contains(image_parts(context, image, key)) for image in context.images)
    return f"{line}; {done}/{len(context.images)} images cached"


def units(context: RunContext) -> str:
    """The plan's count of this stage's units: its dissection's probe shards (per-image work runs on the driver)."""
    planned = _plans(context)[1]
    shards = dissect_stage.probe_units(context, planned.dissect, STAGE, files_missing=_probe_files_missing(context))
    return f"{shards}; each image's concepts on the driver"


def work(plan: RunPlan, *, n_images: int, image_shape: tuple[int, ...], n_probe: int | None) -> StageWork:
    """The plan's estimate of this stage (:mod:`xai.estimate`): the explained model's dissection at its target
    layer (CLIP's probe features are Task 1's when that runs), then per image and shown concept each K's removal
    with its random sets (the layers after the target only: counted as whole passes, an upper bound) and CLIP on
    the concept's crops."""
    from xai.estimate_work import CLIP, explain_network

    work = StageWork(STAGE)
    if plan.concepts is None or plan.explain is None:
        return work
    settings = plan.concepts.settings
    model = explain_network(plan.explain, image_shape)
    if n_probe is not None:
        work.add(model, n_probe)
        if "dissect" not in plan.run:
            work.add(CLIP, n_probe)
    work.add(model, n_images * settings.shown * len(settings.ks) * (1 + settings.random_sets))
    work.add(CLIP, n_images * settings.shown * (1 + settings.random_crops))
    return work


def _dissection_key(context: RunContext) -> dict[str, Any]:
    """The key of the explained layer's labels (Task 1's rule: probe, model, layer, concept set, CLIP, scoring)."""
    from xai.dissect import clip_embed, probes
    from xai.stages.dissect_keys import scoring_parts

    _, planned = _plans(context)
    probe = dissect_stage.probe_inputs(planned.dissect, context.plan.seed, quiet=context.quiet)
    concepts_key = clip_embed.concepts_hash(probes.load_concepts(planned.dissect.concepts))
    return {**scoring_parts(context, planned.entry, probe.key, concepts_key, planned.dissect), "piece": "labels"}


def _true_class(context: RunContext, image: InputImage) -> int:
    """The ImageNet class of a task image when the model's classes are ImageNet's, else -1."""
    from xai.concepts.truth import UNKNOWN, true_class

    _, planned = _plans(context)
    if context.plan.inputs.folder is not None:  # a user's folder: file names are not labels
        return UNKNOWN
    return true_class(image.path.name, planned.imagenet_classes)


def _image_seed(context: RunContext, image: InputImage) -> int:
    from xai.compare.faithfulness import image_seed

    return image_seed(context.plan.seed, image.sha256)


def image_parts(context: RunContext, image: InputImage, dissection_key: dict[str, Any]) -> dict[str, Any]:
    """The cache key of one image's concept explanation: the image, the explained model and its target layer, the
    explain stage's settings (its CAMs and LIME are compared with), the dissection's key (probe, concept set, CLIP),
    the settings, the true class, the seed and the code."""
    explain, planned = _plans(context)
    return {
        "image": image.sha256,
        "image_id": image.name,  # stored in the artifact
        **explain.key(),
        "explain": {
            "methods": list(explain.methods),
            "lime": context.plan.config.explain.lime.model_dump(),
            "target_layer": explain.target.path,
            "reshape": explain.target.reshape,
        },
        "dissection": dissection_key,
        "settings": dataclasses.asdict(planned.settings),
        "true_class": _true_class(context, image),
        "seed": _image_seed(context, image),
        "code": code_version(*CODE),
        "piece": "explanation",
    }


def _layer_inputs(context: RunContext, load_only: bool) -> tuple[UnitLabels, np.ndarray, dict[str, Any], Any]:
    """The explained layer's labels, each unit's probe-set mean, the dissection's key and the dissection itself."""
    from xai.concepts import unit_labels
    from xai.concepts.labels import probe_means

    _, planned = _plans(context)
    dissect = planned.dissect
    dissected = dissect_stage.dissect_models(context, dissect, load_only=load_only)
    name, layer = planned.entry.model_id, planned.layer
    labels = unit_labels(dissected.results[name].layer(layer), dissected.concepts)
    pooled = dissected.features.activations[name][layer]
    if dissect.pool != "mean":  # the baseline is a mean: the layer's mean-pooled probe activations, their own piece
        mean_plan = dataclasses.replace(dissect, pool="mean")
        cache = StageCache(context, dissect_stage.STAGE, load_only)
        probe = dissect_stage.probe_inputs(mean_plan, context.plan.seed, quiet=True)
        pooled = dissect_stage.probe_features(context, cache, probe, mean_plan).activations[name][layer]
    key = {**dissected.scoring[name], "piece": "labels"}
    return labels, probe_means(pooled), key, dissected


def _explain_image(
    context: RunContext,
    item: ExplainedImage,
    image: InputImage,
    labels: UnitLabels,
    probe_mean: np.ndarray,
    clip: Callable[[], ClipFunctions],
) -> ConceptExplanation:
    from xai.architectures import resolve_layer
    from xai.concepts import LimeWeights, explain_in_concepts

    explain, planned = _plans(context)
    model = context.classifier(explain.model).module
    lime = item.explanation.lime
    return explain_in_concepts(
        model,
        resolve_layer(model, explain.target.path),
        explain.preprocessing.to_input(item.pixels[None]).to(context.device),
        item.explanation.prediction.top1,
        labels,
        probe_mean,
        reshape=explain.target.reshape,
        image=item.pixels,
        clip=clip(),
        cam_maps={cam.method: cam.map for cam in item.explanation.cams},
        lime=LimeWeights(lime.segments, lime.weights) if lime is not None else None,
        image_id=item.name,
        true_class=_true_class(context, image),
        seed=_image_seed(context, image),
        settings=planned.settings,
    )


def _collect(context: RunContext, explained: ExplainArtifacts, load_only: bool) -> ConceptArtifacts:
    from xai.concepts import summarise
    from xai.concepts.artifacts import ConceptArtifacts, ConceptImage
    from xai.concepts.clip_crops import clip_functions
    from xai.concepts.suffix import NotRowwiseError

    explain, planned = _plans(context)
    labels, probe_mean, key, dissected = _layer_inputs(context, load_only)
    store = StageCache(context, STAGE, load_only)
    images = {image.name: image for image in context.images}

    @functools.cache
    def clip() -> ClipFunctions:  # loaded on the first cache miss only
        loaded = context.clip()
        return clip_functions(loaded.module, loaded.preprocess, dissected.concept_embeddings, device=context.device)

    artifacts = ConceptArtifacts(
        explain.model_id,
        list(explain.categories),
        explain.target.path,
        planned.layer,
        labels,
        planned.dissect.probe,
        len(dissected.features.probe.paths),
        planned.dissect.concepts,
        planned.dissect.similarity,
        planned.dissect.pool,
        context.plan.weights_mode == "random",
        planned.imagenet_classes and context.plan.inputs.folder is None,
        planned.settings,
    )
    for item in context.progress(explained.images, STAGE, total=len(explained.images)):
        image = images[item.name]
        compute = functools.partial(_explain_image, context, item, image, labels, probe_mean, clip)
        try:
            explanation = store.get(ConceptExplanation, image_parts(context, image, key), compute)
        except NotRowwiseError as error:  # the model's layers after the target cannot take replaced rows
            artifacts.failed.append((item.name, str(error)))
            continue
        artifacts.images.append(ConceptImage(item.name, item.pixels, explanation))
    artifacts.summary = summarise([item.explanation for item in artifacts.images])
    return artifacts


def run(context: RunContext) -> ConceptArtifacts:
    """The explained layer dissected, then every explained image (the explain stage ran first: ``needs``)."""
    return _collect(context, context.artifacts["explain"], load_only=False)


def load_cached(context: RunContext) -> ConceptArtifacts | None:
    """The cached artifacts, never downloading or computing."""
    explained = context.artifacts.get("explain")
    if explained is None or _probe_files_missing(context):
        return None
    try:
        return _collect(context, explained, load_only=True)
    except NotCachedError:
        return None
