"""The stage graph: plan what runs (and what is cached), run the stages in order, record the run, render.

Data flows one way: config -> inputs -> models -> method stages -> analyses -> report. Each stage module under
``xai.stages`` is a function ``run(context) -> artifacts`` whose every expensive piece goes through the artifact
cache, so a rerun with nothing changed recomputes nothing and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from xai.cache import ArtifactCache
from xai.config import Config
from xai.data import (
    PREPROCESSING,
    BadImageError,
    DataError,
    fetch,
    image_ids,
    list_images,
    load_image,
    sha256_of,
    task_image_paths,
)
from xai.models import LoadedClip, load_clip

if TYPE_CHECKING:
    import numpy as np

    from xai.batching import BatchChoice
    from xai.classifiers import ClassifierSpec, LoadedClassifier
    from xai.stages.compare import CompareArtifacts
    from xai.stages.dissect import DissectArtifacts
    from xai.stages.explain import ExplainArtifacts

    StageArtifacts = DissectArtifacts | ExplainArtifacts | CompareArtifacts
    """What a stage's ``run`` returns."""

VERSIONED_PACKAGES = (
    "torch",
    "torchvision",
    "grad-cam",
    "lime",
    "open_clip_torch",
    "numpy",
    "scikit-image",
    "mkdocs-material",
)


@dataclass(frozen=True)
class InputImage:
    name: str
    """The image id (``xai.data.image_ids``): the one name every page, anchor, figure, CSV row and key uses."""
    path: Path
    sha256: str
    pixels: np.ndarray
    """uint8 (224, 224, 3) RGB array, resized and centre-cropped once for every method."""
    display: str = ""
    """The file name as the user gave it (relative to the images folder); shown escaped, never used as a name."""


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
    artifacts: dict[str, StageArtifacts] = field(default_factory=dict)
    """stage name -> its artifacts, run now or loaded from the cache"""
    batch_sizes: dict[str, BatchChoice] = field(default_factory=dict)
    """label (e.g. ``explain:resnet50``) -> how its batch size was chosen, filled as stages resolve them."""
    quiet: bool = False
    load_notes: dict[str, str] = field(default_factory=dict)
    """Model name -> how its checkpoint was read, as recorded with artifacts that may come from the cache."""
    _classifiers: dict[str, LoadedClassifier] = field(default_factory=dict)
    _clip: LoadedClip | None = None

    @property
    def explain_spec(self) -> ClassifierSpec:
        """The explained classifier (``config.explain.spec()``)."""
        return self.config.explain.spec()

    def classifier(self, spec: ClassifierSpec | str) -> LoadedClassifier:
        """The classifier of ``spec``, built once per run (per ``display_name``) on the device by
        :func:`xai.classifiers.build_classifier`; the Places365 preset gets its category file from the data mirror
        or download. A name (a spec's ``display_name`` or a preset) is accepted for callers not yet passing specs."""
        import dataclasses

        from xai.classifiers import build_classifier
        from xai.stages import spec_named

        if isinstance(spec, str):
            spec = spec_named(self.config, spec)
        if spec.display_name not in self._classifiers:
            if spec.classes_format == "places365" and spec.classes is None:
                spec = dataclasses.replace(spec, classes=fetch("places365/categories_places365.txt"))
            loaded = build_classifier(
                spec, self.config.weights, seed=self.config.seed, weights_dir=self.config.weights_dir
            )
            loaded.module.to(self.device)
            self._classifiers[spec.display_name] = loaded
        return self._classifiers[spec.display_name]

    def clip(self) -> LoadedClip:
        if self._clip is None:
            self._clip = load_clip(
                self.config.weights, seed=self.config.seed, weights_dir=self.config.weights_dir, device=self.device
            )
        return self._clip

    def progress(self, items: Iterable, description: str, total: int | None = None) -> Iterator:
        return iter(tqdm(items, desc=description, total=total, disable=self.quiet, leave=False))

    def note_skipped(self, path: str, reason: str) -> None:
        """List an input left out on the home page, once per path (several pieces may report the same image)."""
        if all(item.path != path for item in self.skipped):
            self.skipped.append(SkippedImage(path, reason))

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)


def resolve_device(choice: str) -> torch.device:
    from xai.config import ConfigError

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device 'cuda': torch {torch.__version__} sees no CUDA device "
            f"(built for CUDA {torch.version.cuda or 'none'}); use --device cpu or --device auto"
        )
    return torch.device(choice)


def display_name(text: str) -> str:
    """``text`` (a file name or a message holding one) safe to print and write as UTF-8: bytes of a file name that
    are not UTF-8 (``caf\\xe9.png`` from a Latin-1 system) are shown as ``\\xe9`` instead of crashing the report."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def image_preprocessing(config: Config) -> dict[str, Any]:
    """``xai.data.load_image`` arguments for ``explain.preprocess``: the explained weights member's resize, crop
    and interpolation (``weights``), or the lime tutorial's (``lime_tutorial``)."""
    if config.explain.preprocess != "weights":
        return PREPROCESSING[config.explain.preprocess]
    from xai.classifiers import preprocessing

    found = preprocessing(config.explain.spec())
    return {"resize": found.resize, "crop": found.crop, "squash": False, "interpolation": found.interpolation}


SYSTEM_FILES = re.compile(r"\.DS_Store|Thumbs\.db|desktop\.ini|\._.*")
"""Files a file manager leaves in a folder (macOS Finder, its AppleDouble ``._*`` twins, Windows Explorer):
skipped without opening, counted in one summary line."""


def load_inputs(config: Config) -> tuple[list[InputImage], list[SkippedImage]]:
    """Open every input file once: each is explained or listed with its reason, never losing the others.

    ``max_images`` counts valid images: every file is still opened, so a broken one is always reported; the
    valid ones beyond it, and file-manager leftovers (``.DS_Store``, ``._*``), are each summed up in one row.
    """
    root = None if config.images == "task" else Path(config.images)
    paths = task_image_paths() if root is None else list_images(root)
    system = [path for path in paths if root is not None and SYSTEM_FILES.fullmatch(path.name)]
    ignored = set(system)
    paths = [path for path in paths if path not in ignored]
    ids = image_ids(paths, root, fixed=root is None)
    preprocessing = image_preprocessing(config)
    images, skipped, beyond = [], [], []
    for path, image_id in zip(paths, ids, strict=True):
        display = display_name(path.name if root is None else path.relative_to(root).as_posix())
        try:
            pixels = load_image(path, **preprocessing)
        except BadImageError as error:  # shown relative to the folder: no local absolute paths on the site
            skipped.append(SkippedImage(display, display_name(str(error).replace(str(path), display, 1))))
            continue
        if config.max_images is not None and len(images) >= config.max_images:
            beyond.append(display)
            continue
        images.append(InputImage(image_id, path, sha256_of(path), pixels, display))
    if beyond:
        skipped.append(
            SkippedImage(
                f"{len(beyond)} valid image(s)",
                f"{len(beyond)} valid image(s) not explained "
                f"({beyond[0]}, ...): max_images is {config.max_images}; raise it to explain "
                "more",
            )
        )
    if system:
        skipped.append(
            SkippedImage(
                f"{len(system)} system file(s)",
                f"{len(system)} file-manager file(s) (.DS_Store, ._*, Thumbs.db) ignored",
            )
        )
    if not images:
        where = "the task images" if root is None else display_name(str(root))
        reasons = f" (first: {skipped[0].reason})" if skipped else ""
        raise DataError(f"{where}: no valid image among {len(paths)} file(s){reasons}; add JPEG or PNG images")
    return images, skipped


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def stage_modules() -> dict[str, ModuleType]:
    from xai.stages import compare, dissect, explain

    return {"dissect": dissect, "explain": explain, "compare": compare}


def plan(context: RunContext, stages: list[str], missing: dict[str, list[str]] | None = None) -> list[str]:
    """Human-readable lines: what each stage will run, its forward passes, and how much is cached. A stage whose
    input files (``missing``, from :func:`missing_files`) are not on disk is not described: that would read them."""
    modules = stage_modules()
    missing = missing or {}
    inputs = (
        f"{len(missing['inputs'])} input image(s) not downloaded yet"
        if "inputs" in missing
        else f"{len(context.images)} image(s), {len(context.skipped)} skipped"
    )
    lines = [f"config {context.config.name!r}, weights: {context.config.weights}, device: {context.device}, {inputs}"]
    for stage in stages:
        waiting = len(missing.get(stage, [])) + (len(missing.get("inputs", [])) if stage != "dissect" else 0)
        lines.append(
            f"  {stage}: "
            + (
                f"waits for {waiting} data file(s) listed under downloads"
                if waiting
                else modules[stage].describe(context)
            )
        )
    return lines


def run(context: RunContext, stages: list[str]) -> dict[str, StageArtifacts]:
    """Run ``stages`` in order; return the artifacts (stage name -> stage artifacts)."""
    modules = stage_modules()
    for stage in stages:
        started = time.perf_counter()
        context.artifacts[stage] = modules[stage].run(context)
        context.timings[stage] = time.perf_counter() - started
    return context.artifacts


def models_needed(config: Config, stages: list[str]) -> list[ClassifierSpec | str]:
    """The classifiers (specs) the planned stages load, then ``"clip"`` when dissection runs."""
    needed: list[ClassifierSpec | str] = []
    if {"explain", "compare"} & set(stages):
        needed.append(config.explain.spec())
    if "dissect" in stages:
        needed += [*config.dissect.specs(), "clip"]
    return needed


def preflight(config: Config, stages: list[str], *, writable: bool = True) -> None:
    """Mistakes found before any compute, each a one-line ConfigError/StorageError naming the thing and the fix:
    a concept set or probe folder that does not exist, an output or cache folder that cannot be written."""
    from xai.config import ConfigError

    if {"explain", "compare"} & set(stages):
        from xai.stages.explain import explain_target

        explain_target(config)  # a target layer that names no module: one line, before any image is read
    if "dissect" in stages:
        from xai.dissect.layers import check_layers
        from xai.dissect.probes import CONCEPT_FILES

        check_layers(config)  # a layer some model lacks: one line (ModelChoiceError) before any download
        settings = config.dissect
        if settings.concepts not in CONCEPT_FILES and not Path(settings.concepts).is_file():
            raise ConfigError(
                f"dissect.concepts: {settings.concepts!r} is neither a concept set "
                f"({', '.join(CONCEPT_FILES)}) nor an existing file; pick a set or give the path of a "
                "text file with one concept per line"
            )
        from xai.dissect.probes import PROBE_SETS, folder_images

        if settings.probe not in PROBE_SETS:
            if not Path(settings.probe).is_dir():
                raise ConfigError(
                    f"dissect.probe: folder {settings.probe!r} does not exist; use "
                    f"{', '.join(repr(name) for name in PROBE_SETS)} or an existing folder of images"
                )
            try:
                folder_images(settings.probe)
            except FileNotFoundError as error:
                raise ConfigError(f"dissect.probe: {error}; add JPEG or PNG images to it") from None
    if writable:
        for what, folder in (("output_dir", config.output_dir), ("cache_dir", config.cache_dir)):
            check_writable(what, Path(folder))


def check_writable(what: str, folder: Path) -> None:
    """Create ``folder`` if needed and write a probe file in it, so a read-only folder fails now, not at the end."""
    import tempfile

    from xai.cache import StorageError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise StorageError(
            f"{what} {folder}: not writable ({error.strerror or error}); fix its permissions or choose another folder"
        ) from None


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
        "weights_ids": {
            getattr(model, "display_name", model): weights_key(config, model)
            for model in models_needed(config, list(config.stages))
        },
        "timings": dict(context.timings),
        "weights_notes": {
            **context.load_notes,
            **{name: model.load_note for name, model in context._classifiers.items() if model.load_note},
        },
        "batch_sizes": {label: choice.to_record() for label, choice in context.batch_sizes.items()},
        "torch_threads": torch.get_num_threads(),
        "images": [
            {"name": image.name, "file": image.display or image.path.name, "sha256": image.sha256}
            for image in context.images
        ],
        "skipped": [{"path": s.path, "reason": s.reason} for s in context.skipped],
        "cache": {"hits": len(context.cache.stats.hits), "misses": len(context.cache.stats.misses)},
        "stages": list(context.artifacts),
    }
