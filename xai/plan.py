"""The run plan: the config resolved once, up front, into typed, frozen facts.

Data flows one way: ``config -> plan -> stages -> artifacts -> pages``. :func:`make_plan` resolves everything a run
needs to know before it reads an image or a weight: each model's spec, resolved weights member, weights key (what
identifies the weights in cache keys) and description (what the pages say), preprocessing, the CAM target layer with
its reshape and channel count, the dissected layers and their pooling, the sanity check's cascade, the CAM grid, the
inputs and the batch-size settings. Preflight, ``--plan``, the download list, the stages and the report all read this
plan; none of them goes back to the config's raw values to resolve them again.

Making a plan reads no weights and downloads nothing (``--plan`` works offline): architectures are built on the
``meta`` device, a user's checkpoint is hashed, CLIP's weights are identified by :func:`xai.clip.clip_weights_id`.
A mistake found here (a target layer or dissected layer the model lacks) is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xai.classifiers import (
    ClassifierSpec,
    ModelChoiceError,
    Preprocessing,
    preprocessing,
    resolve_weights,
    spec_categories,
    weight_file,
)
from xai.clip import clip_weights_id
from xai.config import Config, ConfigError
from xai.dissect.artifacts import DissectedModel
from xai.explain.lime_image import LimeParams
from xai.models import WEIGHT_FILES, file_sha256
from xai.plan_types import (
    ComparePlan,
    ConceptsPlan,
    DissectedModelPlan,
    DissectPlan,
    ExplainPlan,
    ImageLoading,
    InputsPlan,
    ModelPlan,
    RunPlan,
)
from xai.stages import STAGES, run_order

if TYPE_CHECKING:
    from xai.compare.sample import SamplePlan


def make_plan(config: Config, only: list[str] | None = None) -> RunPlan:
    """Resolve ``config`` once. ``only`` (``--only``) limits the stages computed now; the config's other stages are
    loaded from the cache for the report.

    Raises:
        ConfigError: one line, for a target layer or dissected layer the model lacks.
    """
    wanted = [stage for stage in config.stages if only is None or stage in only]
    run = run_order(wanted)
    load = tuple(stage for stage in STAGES if stage in config.stages and stage not in run)
    used = set(run) | set(load)
    try:
        explain = _explain_plan(config) if {"explain", "compare", "concepts"} & used else None
        dissect = _dissect_plan(config) if "dissect" in used else None
        concepts = _concepts_plan(config, explain) if "concepts" in used and explain is not None else None
    except ModelChoiceError as error:
        raise ConfigError(str(error)) from None
    compare = _compare_plan(config, explain) if "compare" in used and explain is not None else None
    folder = None if config.images == "task" else Path(config.images)
    loading = explain.image_loading if explain else _image_loading(config, preprocessing(config.explain.spec()))
    return RunPlan(
        config,
        config.weights,
        config.seed,
        config.weights_dir,
        run,
        load,
        InputsPlan(folder, config.max_images, loading),
        explain,
        dissect,
        compare,
        Path(config.output_dir),
        Path(config.cache_dir),
        concepts,
    )


def _model_plan(config: Config, spec: ClassifierSpec) -> ModelPlan:
    member = resolve_weights(spec.architecture, spec.weights_member)
    if config.weights == "random":
        return ModelPlan(spec, member.name, f"random(seed={config.seed})", None)
    if spec.checkpoint is not None:
        return ModelPlan(spec, member.name, f"{spec.checkpoint.name}:sha256:{file_sha256(spec.checkpoint)}", None)
    published = spec.published or weight_file(spec.architecture, member)
    return ModelPlan(spec, member.name, f"{published.filename}:{published.known_hash}", published)


def _image_loading(config: Config, found: Preprocessing) -> ImageLoading:
    if config.explain.preprocess == "weights":
        return ImageLoading(found.resize, found.crop, False, found.interpolation)
    from xai.data import PREPROCESSING

    tutorial = PREPROCESSING[config.explain.preprocess]
    return ImageLoading(tutorial["resize"], tutorial["crop"], tutorial["squash"])


def _explain_plan(config: Config) -> ExplainPlan:
    from xai.shapes import cam_grid, plan_target

    settings = config.explain
    spec = settings.spec()
    model = _model_plan(config, spec)
    planned = plan_target(spec.architecture, spec.weights_member, settings.target_layer)
    if config.weights == "random":
        description = f"random(seed={config.seed}), the architecture {model.weights_member} loads into"
    elif spec.checkpoint is not None:
        description = f"{spec.checkpoint.name} (sha256:{file_sha256(spec.checkpoint)})"
    else:
        description = model.weights_key
    found = preprocessing(spec)
    loading = _image_loading(config, found)
    lime = settings.lime
    return ExplainPlan(
        model,
        description,
        found,
        settings.preprocess,
        loading,
        planned.target,
        planned.channels,
        tuple(settings.methods),
        LimeParams(
            num_samples=lime.num_samples,
            top_labels=lime.top_labels,
            hide_color=lime.hide_color,
            ks=tuple(lime.top_k),
            stability_seeds=lime.stability_seeds,
        ),
        settings.batch_size,
        tuple(spec_categories(spec)),
        cam_grid(
            spec.architecture,
            spec.weights_member,
            planned.target.path,
            planned.target.reshape,
            loading.crop,
            loading.crop,
        ),
    )


def _dissect_plan(
    config: Config, specs: tuple[ClassifierSpec, ...] | None = None, layers: tuple[str, ...] | None = None
) -> DissectPlan:
    """Task 1's plan; ``specs`` and ``layers`` replace the config's models and layers (the concepts stage)."""
    from xai.dissect.layers import is_preset, layer_plan, probe_transform, transform_words

    settings = config.dissect
    chosen_layers = settings.layers if layers is None else layers
    models = []
    for spec in settings.specs() if specs is None else specs:
        model = _model_plan(config, spec)
        if spec.checkpoint is not None:
            description = (
                f"{spec.checkpoint.name} (sha256 {file_sha256(spec.checkpoint)}), architecture of "
                f"{model.weights_member}"
            )
        elif spec.published is not None:
            description = spec.published.filename
        else:
            description = model.weights_member
        planned_layers = layer_plan(spec, chosen_layers)
        preset = is_preset(spec)
        if not preset:
            why = (
                "not one of the paper's models (resnet18_imagenet, resnet18_places365); the self-check's concept "
                "sets, matching rules and published rows are theirs"
            )
        elif planned_layers.final_layer != "fc":
            why = "its final layer fc is not among the dissected layers"
        else:
            why = ""
        facts = DissectedModel(
            model.model_id,
            spec.architecture,
            description,
            planned_layers,
            preset,
            why,
            model.weights_member,
            transform_words(probe_transform(spec)),
        )
        models.append(DissectedModelPlan(model, facts))
    random = config.weights == "random"
    unverified = config.clip_unverified
    return DissectPlan(
        tuple(models),
        settings.probe,
        settings.probe_limit,
        settings.concepts,
        settings.similarity,
        settings.pool,
        settings.top_images,
        settings.batch_size,
        f"random(seed={config.seed})" if random else clip_weights_id(config.weights_dir, unverified=unverified),
        None if random else WEIGHT_FILES["clip"],
        unverified,
        chosen_layers if chosen_layers == "auto" else tuple(chosen_layers),
    )


def _concepts_plan(config: Config, explain: ExplainPlan) -> ConceptsPlan:
    from xai.concepts.truth import is_imagenet

    dissect = _dissect_plan(config, (explain.model.spec,), (explain.target.path,))
    return ConceptsPlan(config.concepts.settings(), dissect, is_imagenet(explain.categories))


def _compare_plan(config: Config, explain: ExplainPlan) -> ComparePlan:
    from xai.compare.layer_groups import planned_groups

    settings = config.compare
    methods = tuple(method for method in settings.sanity_methods if method in explain.methods)
    spec = explain.model.spec
    return ComparePlan(
        settings, methods, planned_groups(spec.architecture, spec.weights_member), _sample_plan(config, explain)
    )


def _sample_plan(config: Config, explain: ExplainPlan) -> SamplePlan | None:
    """``compare.sample`` with its images drawn now (the ImageNet sample from the manifest: nothing is read)."""
    from dataclasses import replace

    from xai.compare.sample import SamplePlan, SampleSettings, draw_sample
    from xai.data import TASK_IMAGES

    compare, sample = config.compare, config.compare.sample
    if sample.images == 0:
        return None
    settings = SampleSettings(
        methods=sample.methods,
        lime=replace(explain.lime, num_samples=sample.lime_samples or explain.lime.num_samples, stability_seeds=1),
        lime_seeds=sample.lime_seeds,
        ks=tuple(compare.top_k),
        thresholds=tuple(t / 100 for t in compare.thresholds),
        null_draws=compare.null_draws,
        steps=sample.faithfulness_steps or compare.faithfulness_steps,
        random_draws=compare.random_draws,
        random_cells=explain.cam_grid,
        target_layer=explain.target.path,
        reshape=explain.target.reshape,
    )
    drawn = draw_sample(sample.source, sample.images, sample.seed, exclude=TASK_IMAGES)
    return SamplePlan(settings, drawn, sample.source, sample.images, sample.seed, sample.cross_image_others)
