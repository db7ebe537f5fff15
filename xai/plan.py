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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
from xai.config import BatchSize, Config, ConfigError
from xai.config_compare import CompareConfig
from xai.dissect.artifacts import DissectedModel
from xai.explain.lime_image import LimeParams
from xai.explain.registry import METHODS
from xai.models import WEIGHT_FILES, WeightFile, WeightsMode, file_sha256
from xai.stages import STAGES, run_order

if TYPE_CHECKING:
    from xai.architectures import TargetLayer
    from xai.compare.sample import SamplePlan
    from xai.concepts import ConceptSettings
    from xai.dissect.layers import LayerPlan


@dataclass(frozen=True)
class ModelPlan:
    """One classifier as the run will build it, known without loading it."""

    spec: ClassifierSpec
    weights_member: str
    """The resolved weights enum member (``IMAGENET1K_V2`` for resnet50's ``DEFAULT``): architecture, categories and
    preprocessing follow it."""
    weights_key: str
    """What identifies the weights in cache keys: ``random(seed=N)``, a published file's ``filename:known_hash``
    (``resnet50-11ad3fa6.pth:sha256-prefix:11ad3fa6``) or a user checkpoint's ``name:sha256:<hex>``."""
    published: WeightFile | None
    """The checkpoint a pretrained run fetches (None: random weights or the user's own checkpoint)."""

    @property
    def model_id(self) -> str:
        return self.spec.model_id


@dataclass(frozen=True)
class ImageLoading:
    """How input images are decoded for the explained model (:func:`xai.data.load_image` arguments)."""

    resize: int
    crop: int
    squash: bool
    interpolation: str = "bilinear"

    def arguments(self) -> dict[str, Any]:
        return {"resize": self.resize, "crop": self.crop, "squash": self.squash, "interpolation": self.interpolation}


@dataclass(frozen=True)
class ExplainPlan:
    """Tasks 2-3 as planned: the explained model, its target layer and preprocessing, the methods and their budgets."""

    model: ModelPlan
    weights_description: str
    """What the pages say the weights are."""
    preprocessing: Preprocessing
    """The weights member's transform values; ``preprocessing.to_input`` normalises images for the model."""
    preprocess: Literal["weights", "lime_tutorial"]
    """``explain.preprocess``: how images are resized and cropped (:attr:`image_loading`)."""
    image_loading: ImageLoading
    target: TargetLayer
    channels: int
    """Channels of the target layer's output after its reshape (2048 for resnet50's ``layer4[-1]``)."""
    methods: tuple[str, ...]
    lime: LimeParams
    batch_size: BatchSize
    categories: tuple[str, ...]
    cam_grid: tuple[int, int]
    """(h, w) of the target layer's map at the input size: the grid of the smooth random baselines."""

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def forward_passes_per_image(self) -> int:
        """Image rows through the model per image: each method's floor (its registry entry) plus the prediction."""
        samples = self.lime.num_samples * self.lime.stability_seeds
        return 1 + sum(
            METHODS[method].forward_passes(lime_samples=samples, target_channels=self.channels)
            for method in self.methods
        )

    def key(self) -> dict[str, Any]:
        """What identifies the explained classifier in cache keys: model id, architecture, the resolved weights
        member (``DEFAULT`` and the member it aliases are one), weights key, class file and preprocessing."""
        spec = self.model.spec
        return {
            "model": spec.model_id,
            "architecture": spec.architecture,
            "weights_member": self.model.weights_member,
            "weights": self.model.weights_key,
            "classes": file_sha256(spec.classes) if spec.classes else None,
            "preprocess": self.preprocess,
        }


@dataclass(frozen=True)
class DissectedModelPlan:
    """One model of Task 1: how it is built, and what the report says of it (layers, pooling, the paper's checks)."""

    model: ModelPlan
    facts: DissectedModel

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def layers(self) -> LayerPlan:
        return self.facts.layers


@dataclass(frozen=True)
class DissectPlan:
    """Task 1 as planned: the models, the probe and concept sets, the scoring and pooling."""

    models: tuple[DissectedModelPlan, ...]
    probe: str
    probe_limit: int | None
    concepts: str
    similarity: str
    pool: Literal["mean", "max"]
    top_images: int
    batch_size: BatchSize
    clip_weights_key: str
    clip_published: WeightFile | None
    clip_unverified: bool
    """``clip_unverified``: open_clip's unpinned CLIP file may be used (it is refused otherwise)."""
    layers_setting: str | tuple[str, ...]
    """``dissect.layers`` as configured (``auto`` or module paths), for the plan line."""


@dataclass(frozen=True)
class ComparePlan:
    """Task 4 as planned."""

    settings: CompareConfig
    sanity_methods: tuple[str, ...]
    """The configured sanity methods that are also explained."""
    cascade: tuple[tuple[str, ...], ...]
    """The sanity check's randomisation steps for the explained architecture, head first."""
    sample: SamplePlan | None = None
    """``compare.sample`` resolved (settings and the drawn images); None without a sample."""


@dataclass(frozen=True)
class ConceptsPlan:
    """Why each prediction, in concepts (issue #21), as planned: the explained model dissected at its CAM target
    layer with Task 1's settings, and the per-image settings."""

    settings: ConceptSettings
    dissect: DissectPlan
    """Task 1's probe, concept set, similarity, pooling, top images, batch size and CLIP, with one model: the explained
    one, hooked at its target layer only."""
    imagenet_classes: bool
    """The explained model's categories are ImageNet-1k's: a task image's synset is then its true class."""

    @property
    def entry(self) -> DissectedModelPlan:
        return self.dissect.models[0]

    @property
    def layer(self) -> str:
        """The target layer's ``named_modules`` path (``layer4.2`` for ``layer4[-1]``), as its dissection names it."""
        return self.entry.layers.layers[0]


@dataclass(frozen=True)
class InputsPlan:
    folder: Path | None
    """None for the assignment's ten task images."""
    max_images: int | None
    loading: ImageLoading


@dataclass(frozen=True)
class RunPlan:
    """Everything resolved about a run before any heavy work."""

    config: Config
    weights_mode: WeightsMode
    seed: int
    weights_dir: Path | None
    run: tuple[str, ...]
    """Stages computed now (plus the stages they need, in order)."""
    load: tuple[str, ...]
    """The config's other stages: their artifacts are shown when the cache holds them complete."""
    inputs: InputsPlan
    explain: ExplainPlan | None
    dissect: DissectPlan | None
    compare: ComparePlan | None
    output_dir: Path
    cache_dir: Path
    concepts: ConceptsPlan | None = None

    def models(self) -> list[ModelPlan]:
        """The classifiers of the planned stages (the explained one first), each once."""
        found = [self.explain.model] if self.explain else []
        found += [entry.model for entry in self.dissect.models] if self.dissect else []
        return list({model.model_id: model for model in found}.values())

    def weights_keys(self) -> dict[str, str]:
        """Model id -> weights key of every model the config's stages use, then ``clip`` when dissection is planned."""
        keys = {model.model_id: model.weights_key for model in self.models()}
        dissect = self.dissect or (self.concepts.dissect if self.concepts else None)
        if dissect is not None:
            keys["clip"] = dissect.clip_weights_key
        return keys


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
