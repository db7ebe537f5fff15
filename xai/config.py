"""Typed run configuration, validated on load with one-line errors that name the key and the allowed values."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

STAGES = ("dissect", "explain", "compare")
"""Analysis stages in run order; the report is always rendered from whatever artifacts exist."""

DISSECT_MODELS = ("resnet18_imagenet", "resnet18_places365")
"""The models CLIP-Dissect labels (``dissect.models`` chooses among them)."""


def _batch_size(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096):
        return value
    raise ValueError(f"got {value!r}; use 'auto' (measured) or a whole number from 1 to 4096")


BatchSize = Annotated[Literal["auto"] | int, BeforeValidator(_batch_size)]
"""Images per forward pass: ``auto`` (measured once per machine, model and input size; see xai.batching) or a number."""


def known_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """``methods`` if every one is in the method registry, else a ValueError listing the registered names."""
    from xai.explain.registry import METHODS

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; allowed: {', '.join(METHODS)}")
    return methods


class ConfigError(ValueError):
    """The configuration file is invalid; the message is one line naming the file, key and allowed values."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimeConfig(_Section):
    num_samples: int = Field(1000, ge=10, le=100_000)
    top_labels: int = Field(5, ge=1, le=1000)
    hide_color: int = Field(0, ge=0, le=255)
    top_k: tuple[int, ...] = (5, 10)
    stability_seeds: int = Field(3, ge=1, le=20)


class ExplainConfig(_Section):
    model: Literal["resnet50"] = "resnet50"
    target_layer: str = "layer4[-1]"
    methods: tuple[str, ...] = (
        "lime",
        "gradcam",
        "ablationcam",
        "scorecam",
        "gradcampp",
        "xgradcam",
        "layercam",
        "hirescam",
        "eigencam",
    )
    batch_size: BatchSize = "auto"
    preprocess: Literal["weights", "lime_tutorial"] = "weights"
    """``weights``: the ResNet50 V2 weights' transform (shorter side 232, crop 224); ``lime_tutorial``: the lime
    PyTorch tutorial's (squash to 256x256, crop 224)."""
    lime: LimeConfig = LimeConfig()

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        return known_methods(methods)


class CompareConfig(_Section):
    top_k: tuple[int, ...] = (5, 10)
    thresholds: tuple[float, ...] = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    faithfulness_steps: int = Field(112, ge=2, le=1024)
    """Deletion/insertion steps per curve; 112 is the coarsest such that it and every finer candidate keep the
    measured AUC error against the reference's 224 within 0.005, worst case over a synthetic planted model at
    softmax temperatures 300, 30, 10 and 3 (xai/compare/step_error.json, written by bench/bench_step_error.py;
    56 steps reach 0.0054 at temperature 3)."""
    random_draws: int = Field(3, ge=1, le=100)
    """Smooth random maps per image in the faithfulness baseline."""
    null_draws: int = Field(2000, ge=100, le=100_000)
    """Draws of the superpixel null per image x method x k."""
    sanity_check: bool = True
    sanity_methods: tuple[str, ...] = (
        "lime",
        "gradcam",
        "ablationcam",
        "scorecam",
        "gradcampp",
        "layercam",
        "hirescam",
        "xgradcam",
        "eigencam",
    )
    sanity_images: int = Field(3, ge=1, le=100)
    sanity_lime_samples: int = Field(300, ge=10, le=100_000)
    """LIME's cheaper budget under randomisation (seven model states per image)."""

    @field_validator("sanity_methods")
    @classmethod
    def _known_sanity_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        return known_methods(methods)


class DissectConfig(_Section):
    models: tuple[str, ...] = DISSECT_MODELS
    layers: tuple[str, ...] = ("layer3", "layer4", "fc")
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

    @field_validator("models")
    @classmethod
    def _known_models(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in DISSECT_MODELS]
        if unknown:
            raise ValueError(f"unknown model {unknown[0]!r}; allowed: {', '.join(DISSECT_MODELS)}")
        return names

    @field_validator("similarity")
    @classmethod
    def _known_similarity(cls, name: str) -> str:
        from xai.dissect.similarity import SIMILARITY_FUNCTIONS  # imported on use: it pulls torch

        if name not in SIMILARITY_FUNCTIONS:
            raise ValueError(f"unknown similarity {name!r}; allowed: {', '.join(SIMILARITY_FUNCTIONS)}")
        return name

    @field_validator("layers")
    @classmethod
    def _known_layers(cls, layers: tuple[str, ...]) -> tuple[str, ...]:
        names = _resnet18_module_names()
        unknown = [layer for layer in layers if layer not in names]
        if unknown:
            raise ValueError(
                f"unknown layer {unknown[0]!r}; allowed: conv1, layer1, layer2, layer3, layer4, fc or "
                "any ResNet18 module name such as layer4.1.conv2"
            )
        return layers


@cache
def _resnet18_module_names() -> frozenset[str]:
    """Module names of torchvision's ResNet18 (both dissected models share it; built without weights)."""
    from torchvision.models import resnet18

    return frozenset(name for name, _ in resnet18(weights=None).named_modules() if name)


class Config(_Section):
    name: str = "assignment"
    weights: Literal["pretrained", "random"] = "pretrained"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    weights_dir: Path | None = None
    images: str = "task"
    """``task`` for the assignment's ten ImageNet images, or a folder of the user's own images."""
    max_images: int | None = Field(None, ge=1)
    """Explain only the first N images (smoke runs); ``null`` means all."""
    stages: tuple[Literal["dissect", "explain", "compare"], ...] = STAGES
    output_dir: Path = Path("docs")
    cache_dir: Path = Path(".xai-cache")
    explain: ExplainConfig = ExplainConfig()
    compare: CompareConfig = CompareConfig()
    dissect: DissectConfig = DissectConfig()

    @model_validator(mode="after")
    def _compare_needs_lime(self) -> Config:
        if "compare" in self.stages and "lime" not in self.explain.methods:
            raise ValueError("the compare stage needs 'lime' in explain.methods (it compares LIME with the CAMs)")
        if "compare" in self.stages and len(self.explain.methods) < 2:
            raise ValueError("the compare stage needs at least one CAM in explain.methods besides 'lime'")
        return self


def _one_line(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "<root>"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "literal_error":
        message = f"got {first['input']!r}; {message.lower()}"
    more = f" (and {len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"{source}: {key}: {message}{more}"


def validate(data: dict[str, Any], source: str = "<config>") -> Config:
    """Build a Config from plain data, raising ConfigError with one line on the first problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_one_line(error, source)) from None


def load(path: Path, **overrides: Any) -> Config:
    """Read a YAML config; ``overrides`` (from the CLI, ``None`` meaning unset) replace top-level keys."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; see configs/ for examples") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    data.update({key: value for key, value in overrides.items() if value is not None})
    return validate(data, str(path))
