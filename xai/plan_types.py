"""The run plan's types: the frozen facts :func:`xai.plan.make_plan` resolves from a config once, up front (see
:mod:`xai.plan`). Every stage, the download list and the report read these; none reads the config's raw values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from xai.explain.registry import METHODS
from xai.models import file_sha256

if TYPE_CHECKING:
    from xai.architectures import TargetLayer
    from xai.classifiers import ClassifierSpec, Preprocessing
    from xai.compare.sample import SamplePlan
    from xai.concepts import ConceptSettings
    from xai.config import BatchSize, Config
    from xai.config_compare import CompareConfig
    from xai.dissect.artifacts import DissectedModel
    from xai.dissect.layers import LayerPlan
    from xai.explain.lime_image import LimeParams
    from xai.models import WeightFile, WeightsMode


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
