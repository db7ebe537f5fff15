"""What a stage is given: the run plan, the artifact cache, the device, the inputs, and the models built once per run.

A leaf of the glue: stages (``xai.stages.*``) and the runner (:mod:`xai.pipeline`) both import it, and it imports
neither, so the runner and its stages never import each other in a cycle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from tqdm.auto import tqdm

from xai.cache import A, ArtifactCache, make_key

if TYPE_CHECKING:
    import numpy as np
    import torch

    from xai.batching import BatchChoice
    from xai.classifiers import LoadedClassifier
    from xai.clip import LoadedClip
    from xai.estimate import StageWork
    from xai.executor import Executor
    from xai.plan import ModelPlan, RunPlan


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


class Stage(Protocol):
    """What a stage module (an entry of :data:`xai.stages.STAGES`) offers."""

    def describe(self, context: RunContext) -> str:
        """The plan's line: what the stage will compute, its forward passes, what is cached."""
        ...

    def run(self, context: RunContext) -> object:
        """The stage's artifacts, each piece from the cache or computed (the stages in ``needs`` already ran)."""
        ...

    def load_cached(self, context: RunContext) -> object | None:
        """The artifacts when the cache holds them complete, else None; never computes and never downloads."""
        ...

    def units(self, context: RunContext) -> str:
        """The plan's line under a cluster executor: how many units of work the stage will send."""
        ...

    def work(self, plan: RunPlan, *, n_images: int, image_shape: tuple[int, ...], n_probe: int | None) -> StageWork:
        """The plan's estimate (:mod:`xai.estimate`): the stage's image forward passes per network, from scratch, for
        ``n_images`` inputs of ``image_shape`` and ``n_probe`` probe images (None: no dissection planned)."""
        ...


def stage(name: str) -> Stage:
    """The module of the registered stage ``name``."""
    from xai.stages import STAGES

    return cast(Stage, STAGES[name].implementation())


class NotCachedError(LookupError):
    """Raised in load-only mode when an artifact is not in the cache."""


@dataclass
class RunContext:
    """Everything a stage needs: the plan, the cache, the device, the inputs, and a place to log."""

    plan: RunPlan
    cache: ArtifactCache
    device: torch.device
    images: list[InputImage] = field(default_factory=list)
    skipped: list[SkippedImage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    memory: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Stage -> its peak memory (``rss_mb``, and ``gpu_mb`` on CUDA; :class:`xai.memory.PeakMemory`)."""
    artifacts: dict[str, Any] = field(default_factory=dict)
    """Stage name -> its artifacts (the stage's own type), run now or loaded from the cache."""
    batch_sizes: dict[str, BatchChoice] = field(default_factory=dict)
    """Label (e.g. ``explain:resnet50``) -> how its batch size was chosen, filled as stages resolve them."""
    quiet: bool = False
    load_notes: dict[str, str] = field(default_factory=dict)
    """Model id -> how its checkpoint was read, as recorded with artifacts that may come from the cache."""
    executor: Executor | None = None
    """Where the stages' units run (:mod:`xai.executor`); None: in this process (:func:`xai.units.executor_of`)."""
    _classifiers: dict[str, LoadedClassifier] = field(default_factory=dict)
    _clip: LoadedClip | None = None

    def classifier(self, model: ModelPlan) -> LoadedClassifier:
        """The classifier of ``model``, built once per run on the device by
        :func:`xai.classifiers.build_classifier`; the Places365 preset gets its category file from the data mirror
        or download."""
        from xai.classifiers import build_classifier
        from xai.data import fetch

        spec = model.spec
        if model.model_id not in self._classifiers:
            if spec.classes_format == "places365" and spec.classes is None:
                spec = dataclasses.replace(spec, classes=fetch("places365/categories_places365.txt"))
            plan = self.plan
            # the plan's published file is the one fetched and checksummed: one home for which file a model loads
            loaded = build_classifier(
                spec, plan.weights_mode, seed=plan.seed, weights_dir=plan.weights_dir, published=model.published
            )
            loaded.module.to(self.device)
            self._classifiers[model.model_id] = loaded
        return self._classifiers[model.model_id]

    def loaded_classifiers(self) -> dict[str, LoadedClassifier]:
        """The classifiers built so far in this run, by model id."""
        return dict(self._classifiers)

    def clip(self) -> LoadedClip:
        from xai.clip import load_clip

        if self._clip is None:
            plan = self.plan
            unverified = plan.config.clip_unverified  # read by dissection, Task 1's or the concepts stage's
            self._clip = load_clip(
                plan.weights_mode,
                seed=plan.seed,
                weights_dir=plan.weights_dir,
                device=self.device,
                unverified=unverified,
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


class PieceStore(Protocol):
    """Where a stage's per-item code gets each piece: the cache (:class:`StageCache`) or a unit's workspace
    (:class:`xai.units.Workspace`)."""

    def get(self, kind: type[A], parts: dict[str, Any], compute: Callable[[], A]) -> A: ...


@dataclass(frozen=True)
class StageCache:
    """One stage's view of the run's artifact cache: ``get`` returns the artifact for a key, computing it on a
    miss, or, in ``load_only`` mode (rendering a report from whatever exists), raising :class:`NotCachedError`.
    ``fresh`` holds artifacts units computed in this run (by cache key; just written): returned as they are."""

    context: RunContext
    stage: str
    load_only: bool = False
    fresh: Mapping[str, Any] = field(default_factory=dict)

    def contains(self, parts: dict[str, Any]) -> bool:
        return self.context.cache.contains(self.stage, parts)

    def get(self, kind: type[A], parts: dict[str, Any], compute: Callable[[], A]) -> A:
        """The ``kind`` artifact keyed by ``parts``; ``compute()`` runs only on a miss outside load-only mode."""
        if self.fresh:
            key = make_key(self.stage, parts)
            if key in self.fresh:
                return cast(A, self.fresh[key])
        if self.load_only and not self.contains(parts):
            raise NotCachedError(parts.get("piece", self.stage))
        return self.context.cache.get_or_compute(self.stage, parts, compute, kind)
