"""The stage graph: plan what runs (and what is cached), run the stages in order, record the run, render.

Data flows one way: config -> inputs -> models -> method stages -> analyses -> report. Each stage module under
``xai.stages`` is a function ``run(context) -> artifacts`` whose every expensive piece goes through the artifact
cache, so a rerun with nothing changed recomputes nothing and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from xai.cache import ArtifactCache
from xai.config import Config
from xai.data import BadImageError, fetch, list_images, load_image, sha256_of, task_image_paths
from xai.models import LoadedClip, LoadedModel, imagenet_categories, load_classifier, load_clip, places365_categories

VERSIONED_PACKAGES = ("torch", "torchvision", "grad-cam", "lime", "open_clip_torch", "numpy", "scikit-image",
                      "mkdocs-material")


@dataclass(frozen=True)
class InputImage:
    name: str
    path: Path
    sha256: str
    pixels: Any
    """uint8 (224, 224, 3) RGB array, resized and centre-cropped once for every method."""


@dataclass(frozen=True)
class SkippedImage:
    path: str
    reason: str


@dataclass
class RunContext:
    """Everything a stage needs: the config, the cache, the device, the inputs and a place to log."""

    config: Config
    cache: ArtifactCache
    device: torch.device
    images: list[InputImage] = field(default_factory=list)
    skipped: list[SkippedImage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False
    load_notes: dict[str, str] = field(default_factory=dict)
    """Model name -> how its checkpoint was read, as recorded with artifacts that may come from the cache."""
    _models: dict[str, Any] = field(default_factory=dict)

    def classifier(self, name: str) -> LoadedModel:
        """``resnet50``, ``resnet18_imagenet`` or ``resnet18_places365``, loaded once per run, on the device."""
        if name not in self._models:
            categories = (places365_categories(fetch("places365/categories_places365.txt"))
                          if name == "resnet18_places365" else imagenet_categories())
            loaded = load_classifier(name, self.config.weights, seed=self.config.seed,
                                     weights_dir=self.config.weights_dir, categories=categories)
            loaded.module.to(self.device)
            self._models[name] = loaded
        return self._models[name]

    def clip(self) -> LoadedClip:
        if "clip" not in self._models:
            loaded = load_clip(self.config.weights, seed=self.config.seed, weights_dir=self.config.weights_dir,
                               device=self.device)
            self._models["clip"] = loaded
        return self._models["clip"]

    def progress(self, items: Iterable, description: str, total: int | None = None) -> Iterator:
        return iter(tqdm(items, desc=description, total=total, disable=self.quiet, leave=False))

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(choice)


def load_inputs(config: Config) -> tuple[list[InputImage], list[SkippedImage]]:
    """Decode every input image once; a bad image is skipped with its reason, never losing the others."""
    paths = task_image_paths() if config.images == "task" else list_images(Path(config.images))
    paths = paths[: config.max_images]
    images, skipped = [], []
    for path in paths:
        try:
            pixels = load_image(path)
        except BadImageError as error:
            skipped.append(SkippedImage(str(path), str(error)))
            continue
        images.append(InputImage(path.stem, path, sha256_of(path), pixels))
    return images, skipped


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def stage_modules() -> dict[str, Any]:
    from xai.stages import compare, dissect, explain

    return {"dissect": dissect, "explain": explain, "compare": compare}


def plan(context: RunContext, stages: list[str]) -> list[str]:
    """Human-readable lines: what each stage will run, its forward passes, and how much is cached."""
    modules = stage_modules()
    lines = [f"config {context.config.name!r}, weights: {context.config.weights}, device: {context.device}, "
             f"{len(context.images)} image(s), {len(context.skipped)} skipped"]
    for stage in stages:
        lines.append(f"  {stage}: {modules[stage].describe(context)}")
    return lines


def run(context: RunContext, stages: list[str]) -> dict[str, Any]:
    """Run ``stages`` in order; return the artifacts (stage name -> stage artifacts)."""
    modules = stage_modules()
    for stage in stages:
        started = time.perf_counter()
        context.artifacts[stage] = modules[stage].run(context)
        context.timings[stage] = time.perf_counter() - started
    return context.artifacts


def models_needed(config: Config, stages: list[str]) -> list[str]:
    needed = []
    if {"explain", "compare"} & set(stages):
        needed.append(config.explain.model)
    if "dissect" in stages:
        needed += [*config.dissect.models, "clip"]
    return needed


def check_pretrained(config: Config, stages: list[str]) -> None:
    """Before any heavy work: fetch what is missing, then name every checkpoint that could not be had at once."""
    from xai.models import WEIGHT_FILES, WeightsUnavailableError, fetch_weights, missing_message, weights_present

    failed = []
    for name in models_needed(config, stages):
        if weights_present(name, config.weights_dir):
            continue
        try:
            fetch_weights(WEIGHT_FILES[name], config.weights_dir)
        except WeightsUnavailableError:
            failed.append(WEIGHT_FILES[name])
    if failed:
        raise WeightsUnavailableError(missing_message(failed, config.weights_dir))


def load_cached(context: RunContext, stages: list[str]) -> None:
    """Artifacts of stages not run now, when the cache holds them complete; rendering then shows them too."""
    modules = stage_modules()
    for stage in stages:
        artifacts = modules[stage].load_cached(context)
        if artifacts is not None:
            context.artifacts[stage] = artifacts


def run_record(context: RunContext) -> dict[str, Any]:
    """What the home page says about this run: config, versions, device, weights, timings, skipped inputs."""
    import yaml

    from xai.stages import weights_key

    config = context.config
    return {
        "config_name": config.name,
        "config": config.model_dump(mode="json"),
        "config_yaml": yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False),
        "weights": config.weights,
        "random_weights": config.weights == "random",
        "seed": config.seed,
        "device": str(context.device),
        "versions": versions(),
        "weights_ids": {name: weights_key(config, name) for name in models_needed(config, list(config.stages))},
        "timings": dict(context.timings),
        "weights_notes": {**context.load_notes, **{name: model.load_note for name, model in context._models.items()
                                                    if getattr(model, "load_note", "")}},
        "images": [{"name": image.name, "sha256": image.sha256} for image in context.images],
        "skipped": [{"path": s.path, "reason": s.reason} for s in context.skipped],
        "cache": {"hits": len(context.cache.stats.hits), "misses": len(context.cache.stats.misses)},
        "stages": list(context.artifacts),
    }
