"""Typed run configuration, validated on load with one-line errors that name the key and the allowed values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from xai import config_errors
from xai.config_compare import CompareConfig, Section, known_methods
from xai.config_concepts import ConceptsConfig
from xai.errors import UserError
from xai.executors.settings import RaySettings
from xai.explain.registry import METHODS
from xai.stages import STAGES

if TYPE_CHECKING:
    from xai.classifiers import ClassifierSpec

DISSECT_MODELS = ("resnet18_imagenet", "resnet18_places365")
"""The paper's two models, CLIP-Dissect's default ``dissect.models`` (presets of :data:`xai.classifiers.PRESETS`)."""


def _batch_size(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096):
        return value
    raise ValueError(f"got {value!r}; use 'auto' (measured) or a whole number from 1 to 4096")


BatchSize = Annotated[Literal["auto"] | int, BeforeValidator(_batch_size)]
"""Images per forward pass: ``auto`` (measured once per machine, model and input size; see xai.batching) or a number."""


def _stage_name(value: Any) -> Any:
    if value not in STAGES:
        allowed = ", ".join(repr(name) for name in STAGES)
        raise ValueError(f"got {value!r}; must be {allowed.rsplit(', ', 1)[0]} or {allowed.rsplit(', ', 1)[-1]}")
    return value


StageName = Annotated[str, BeforeValidator(_stage_name)]
"""A stage of the registry (:data:`xai.stages.STAGES`), checked against it."""


class ConfigError(UserError, ValueError):
    """The configuration file is invalid; the message is one line naming the file, the key and the fix (the allowed
    values, or for an unknown key the allowed keys, closest first)."""


class LimeConfig(Section):
    num_samples: int = Field(1000, ge=10, le=100_000)
    top_labels: int = Field(5, ge=1, le=1000)
    hide_color: int = Field(0, ge=0, le=255)
    top_k: tuple[int, ...] = (5, 10)
    stability_seeds: int = Field(3, ge=1, le=20)


def _base(info: ValidationInfo) -> Path:
    """The folder relative ``checkpoint``/``classes`` paths are read from: the config file's (see :func:`load`)."""
    return Path((info.context or {}).get("base", "."))


def _existing_file(value: Path | None, info: ValidationInfo, what: str) -> Path | None:
    """``value`` as given (the report shows it, never an absolute local path), once it names a file."""
    if value is not None and not (_base(info) / value).is_file():
        hint = (
            "a file saved with torch.save(model.state_dict(), path)"
            if what == "checkpoint"
            else "a text file with one class name per line"
        )
        raise ValueError(
            f"file {str(value)!r} not found (relative paths are read from the config file's folder); give {hint}"
        )
    if value is not None and what == "classes":  # blank lines, repeated names: one line naming the file now
        from xai.checkpoints import CheckpointError, read_classes

        try:
            read_classes(_base(info) / value)
        except CheckpointError as error:
            raise ValueError(str(error)) from None
    return value


def _model_name(name: str) -> str:
    from xai.classifiers import ModelChoiceError, check_model_name  # imported on use: it pulls torchvision

    try:
        return check_model_name(name, what="")
    except ModelChoiceError as error:
        raise ValueError(str(error).removeprefix(": ")) from None


class ExplainConfig(Section):
    model: str = "resnet50"
    """A torchvision classification model name (``torchvision.models.list_models(module=torchvision.models)``)."""
    model_weights: str = "DEFAULT"
    """A member of the model's weights enum; its categories, preprocessing and (pretrained) checkpoint are used."""
    checkpoint: Path | None = None
    """The user's own state dict for ``model`` (replaces the published weights; sha256 recorded)."""
    classes: Path | None = None
    """One class name per line, in output order; the output size follows from it."""
    target_layer: str = "auto"
    """``auto`` (:func:`xai.architectures.auto_target_layer`) or a module path such as ``layer4[-1]``."""
    methods: tuple[str, ...] = Field(default_factory=lambda: tuple(METHODS))
    """Every registered method by default, in registry order (read when a config is made, so a method registered
    later is in the default too)."""
    batch_size: BatchSize = "auto"
    preprocess: Literal["weights", "lime_tutorial"] = "weights"
    """``weights``: the weights enum member's own ``transforms()`` (resnet50 IMAGENET1K_V2: shorter side 232,
    crop 224); ``lime_tutorial``: the lime PyTorch tutorial's (squash to 256x256, crop 224)."""
    lime: LimeConfig = LimeConfig()
    _base: Path = PrivateAttr(default=Path("."))

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _model_name(name)

    @field_validator("checkpoint", "classes")
    @classmethod
    def _files_exist(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _existing_file(value, info, str(info.field_name))

    @model_validator(mode="after")
    def _known_weights(self, info: ValidationInfo) -> ExplainConfig:
        from xai.classifiers import ModelChoiceError, resolve_weights

        try:
            resolve_weights(self.model, self.model_weights, what="model_weights")
        except ModelChoiceError as error:
            raise ValueError(str(error)) from None
        self._base = _base(info)
        return self

    def spec(self) -> ClassifierSpec:
        """The explained classifier; ``checkpoint``/``classes`` resolved against the config file's folder."""
        from xai.classifiers import ClassifierSpec

        return ClassifierSpec(
            self.model,
            self.model_weights,
            self._base / self.checkpoint if self.checkpoint else None,
            self._base / self.classes if self.classes else None,
            model_id=_label(self.model, self.model_weights, self.checkpoint),
        )

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        return known_methods(methods)


def _label(name: str, weights: str, checkpoint: Path | None) -> str:
    """A spec's display name: the model name, then a non-default weights member, then the checkpoint's file stem
    (``resnet18``, ``vit_b_16_IMAGENET1K_SWAG_E2E_V1``, ``resnet18_birds``); slug-safe, for keys and file names."""
    from xai.classifiers import resolve_weights
    from xai.data import slugify

    # The member, not its spelling: DEFAULT and the member it aliases (IMAGENET1K_V2 for resnet50) are one name.
    non_default = resolve_weights(name, "DEFAULT").name != resolve_weights(name, weights).name
    parts = [name, *([weights] if non_default else []), *([slugify(checkpoint.stem)] if checkpoint else [])]
    return "_".join(parts)


class ModelEntry(Section):
    """A ``dissect.models`` entry given as a mapping: a torchvision model with a weights member or a checkpoint."""

    name: str
    weights: str = "DEFAULT"
    checkpoint: Path | None = None
    classes: Path | None = None

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _model_name(name)

    @field_validator("checkpoint", "classes")
    @classmethod
    def _files_exist(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _existing_file(value, info, str(info.field_name))

    @model_validator(mode="after")
    def _known_weights(self) -> ModelEntry:
        from xai.classifiers import ModelChoiceError, resolve_weights

        try:
            resolve_weights(self.name, self.weights, what="weights")
        except ModelChoiceError as error:
            raise ValueError(str(error)) from None
        return self


class DissectConfig(Section):
    models: tuple[str | ModelEntry, ...] = DISSECT_MODELS
    """Presets (:data:`xai.classifiers.PRESETS`), torchvision model names, or :class:`ModelEntry` mappings."""
    layers: Literal["auto"] | tuple[str, ...] = ("layer3", "layer4", "fc")
    """``auto`` (per model, :func:`xai.architectures.auto_dissect_layers`) or module paths present in every model."""
    probe: str = "broden"
    """``broden``, ``imagenet-samples`` or a folder of images."""
    probe_limit: int | None = Field(None, ge=10)
    concepts: str = "20k"
    """A concept set named in ``xai.dissect.probes.CONCEPT_FILES`` or a path to a text file with one concept per
    line (checked by ``xai.pipeline.preflight`` when the dissect stage runs: a path must exist then)."""
    similarity: str = "soft_wpmi"
    """A name in the similarity registry, ``xai.dissect.similarity.SIMILARITY_FUNCTIONS``."""
    pool: Literal["mean", "max"] = "mean"
    batch_size: BatchSize = "auto"
    top_images: int = Field(5, ge=1, le=50)
    _base: Path = PrivateAttr(default=Path("."))

    @field_validator("models", mode="before")
    @classmethod
    def _known_models(cls, entries: Any, info: ValidationInfo) -> Any:
        """Each entry checked here, so an error names the entry and its key (not pydantic's union branches)."""
        from xai.classifiers import PRESETS, choice_message, model_names

        if isinstance(entries, str | bytes) or not isinstance(entries, list | tuple):
            raise ValueError("give a list of presets, model names or {name, weights, checkpoint, classes} entries")
        checked: list[str | ModelEntry] = []
        for number, entry in enumerate(entries):
            if isinstance(entry, str):
                if entry not in PRESETS and entry not in model_names():
                    raise ValueError(choice_message("", "model", entry, [*PRESETS, *model_names()]).removeprefix(": "))
                checked.append(entry)
            elif isinstance(entry, dict):
                try:
                    checked.append(ModelEntry.model_validate(entry, context=info.context))
                except ValidationError as error:
                    raise ValueError(f"entry {number}: {_one_line(error, '').removeprefix(': ')}") from None
            else:
                raise ValueError(f"entry {number}: {entry!r} is neither a model name nor a mapping with 'name'")
        return checked

    @field_validator("similarity")
    @classmethod
    def _known_similarity(cls, name: str) -> str:
        from xai.dissect.similarity import SIMILARITY_FUNCTIONS  # imported on use: it pulls torch

        if name not in SIMILARITY_FUNCTIONS:
            raise ValueError(f"unknown similarity {name!r}; allowed: {', '.join(SIMILARITY_FUNCTIONS)}")
        return name

    @model_validator(mode="after")
    def _unique_models(self, info: ValidationInfo) -> DissectConfig:
        self._base = _base(info)
        names = [spec.model_id for spec in self.specs()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"models: {repeated[0]!r} is listed twice; give each model once (entries with the same "
                "name need different weights or checkpoint files)"
            )
        return self

    def specs(self) -> tuple[ClassifierSpec, ...]:
        """Each model as a :class:`~xai.classifiers.ClassifierSpec` with a unique ``model_id``; paths resolved
        against the config file's folder. The Places365 preset's ``classes`` is left for the pipeline to fill
        (``RunContext.classifier`` fetches the category file)."""
        from xai.classifiers import PRESETS, ClassifierSpec

        specs = []
        for entry in self.models:
            if isinstance(entry, str):
                specs.append(PRESETS[entry] if entry in PRESETS else ClassifierSpec(entry, model_id=entry))
            else:
                specs.append(
                    ClassifierSpec(
                        entry.name,
                        entry.weights,
                        self._base / entry.checkpoint if entry.checkpoint else None,
                        self._base / entry.classes if entry.classes else None,
                        model_id=_label(entry.name, entry.weights, entry.checkpoint),
                    )
                )
        return tuple(specs)


class Config(Section):
    name: str = "assignment"
    weights: Literal["pretrained", "random"] = "pretrained"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    weights_dir: Path | None = None
    clip_unverified: bool = False
    """Let pretrained runs use open_clip's ``open_clip_pytorch_model.bin`` when OpenAI's sha256-pinned
    ``ViT-B-16.pt`` is absent. That file has no published checksum, so a LAION or DFN ViT-B-16 saved under its name
    would load silently; its computed sha256 then keys the CLIP caches (``xai.clip.clip_file``)."""
    images: str = "task"
    """``task`` for the assignment's ten ImageNet images, or a folder of the user's own images."""
    max_images: int | None = Field(None, ge=1)
    """Explain only the first N images (smoke runs); ``null`` means all."""
    stages: tuple[StageName, ...] = tuple(STAGES)
    """Stages of the registry (:data:`xai.stages.STAGES`) this config runs; the report shows whatever they made."""
    output_dir: Path = Path("docs")
    cache_dir: Path = Path(".xai-cache")
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    dissect: DissectConfig = Field(default_factory=DissectConfig)
    concepts: ConceptsConfig = Field(default_factory=ConceptsConfig)
    executor: Literal["local", "ray"] = "local"
    """Where units of heavy work run: this process, or a Ray cluster (``ray``; xai/executors/ray.py)."""
    ray: RaySettings = Field(default_factory=RaySettings)

    @model_validator(mode="after")
    def _compare_needs_lime(self) -> Config:
        if "compare" in self.stages and "lime" not in self.explain.methods:
            raise ValueError("the compare stage needs 'lime' in explain.methods (it compares LIME with the CAMs)")
        if "compare" in self.stages and len(self.explain.methods) < 2:
            raise ValueError("the compare stage needs at least one CAM in explain.methods besides 'lime'")
        return self


def _one_line(error: ValidationError, source: str) -> str:
    """One line naming the file, the key and the fix (:func:`xai.config_errors.one_line`)."""
    return config_errors.one_line(error, source, Config)


def validate(data: dict[str, Any], source: str = "<config>", *, base: Path | None = None) -> Config:
    """Build a Config from plain data, raising ConfigError with one line on the first problem. Relative
    ``checkpoint``/``classes`` paths are read from ``base`` (the config file's folder; default: the current one)."""
    try:
        return Config.model_validate(data, context={"base": base or Path(".")})
    except ValidationError as error:
        raise ConfigError(_one_line(error, source)) from None


def load(path: Path, **overrides: Any) -> Config:
    """Read a YAML config; ``overrides`` (from the CLI, ``None`` meaning unset) replace top-level keys."""
    from xai.resources import shipped_configs

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        shipped = ", ".join(f"configs/{name}" for name in shipped_configs())
        raise ConfigError(
            f"{path}: no such config file; give the path of a YAML config, or one of the shipped configs: {shipped}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a config file; give the path of a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8 YAML") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(
            f"{path}: not valid YAML{at} ({problem}); fix the syntax there ('key: value' lines, nested keys indented)"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level is a {type(data).__name__}, not a mapping; write 'key: value' lines "
            "(e.g. 'name: mine'), as in configs/quick.yaml"
        )
    data.update({key: value for key, value in overrides.items() if value is not None})
    return validate(data, str(path), base=path.parent)
