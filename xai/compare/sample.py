"""The powered sample for Task 4: more images, on which only what the comparison needs is computed.

Ten images cannot answer Task 4's question at a useful effect size (``family.detectable_effect``). The sample adds N
images: by default drawn with a fixed seed from the 1000 ImageNet sample images (one per class; the ten assignment
images left out), or from a folder. On each image it computes only LIME (the sample's budget and seeds), the chosen
CAMs of the predicted class and deletion/insertion, then the same per-image comparison as the ten images get
(``compare_image``, ``faithfulness_image``); the cross-image null, the location baseline and every test run over the
sample afterwards (:func:`summarise_sample`), exactly as for the ten.

Per image the work is one pure function, :func:`sample_image` ``(model, pixels, settings) -> SampleImage`` (a cached
artifact): a stage calls it in a loop; workers that each build the model once can run it in parallel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xai.compare._parts import frozen_array
from xai.compare.faithfulness import FaithfulnessResult, faithfulness_image
from xai.compare.family import PRIMARY_CAMS
from xai.compare.per_image import ImageComparison, compare_image, cross_image_table, explanation_maps
from xai.compare.summary import ComparisonSummary, summarise
from xai.explain.lime_image import LimeParams

IMAGENET_SOURCE = "imagenet-samples"
ToInput = Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class SampleSource:
    """One drawn image: its id, where it is, and its sha256 (the manifest's for a data file: known before fetching)."""

    image_id: str
    location: str
    """A ``manifest.tsv`` path (``imagenet-sample-images/...``) or a file path."""
    sha256: str
    from_manifest: bool


@dataclass(frozen=True)
class SampleSettings:
    """Everything the per-image work depends on besides the model and the image."""

    methods: tuple[str, ...]
    """The CAMs computed."""
    lime: LimeParams
    lime_seeds: int
    ks: tuple[int, ...]
    thresholds: tuple[float, ...]
    """Top-p fractions of the CAM threshold sweep."""
    null_draws: int
    steps: int
    random_draws: int
    random_cells: tuple[int, int] | None
    target_layer: str
    reshape: str | None

    def key(self) -> dict[str, Any]:
        """What identifies these settings in a cache key."""
        found = asdict(self)
        found["lime"] = self.lime.to_dict()
        return found


@dataclass(frozen=True)
class SamplePlan:
    """``compare.sample`` as planned: the settings, the drawn images, and what the page says of the draw."""

    settings: SampleSettings
    drawn: tuple[SampleSource, ...]
    source: str
    requested: int
    seed: int
    cross_image_others: int


@dataclass(frozen=True, eq=False)
class SampleImage:
    """What the comparison keeps of one sample image (its pixels are not kept: the page shows no gallery)."""

    image_id: str
    top1: int
    segments: np.ndarray
    """(H, W) int32 LIME superpixels."""
    seed_weights: np.ndarray
    """(n_seeds, S) float64 LIME weights of every seed on that segmentation."""
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    maps: np.ndarray
    """(len(methods), H, W) float32 CAMs of ``top1``."""
    comparison: ImageComparison
    faithfulness: FaithfulnessResult
    forward_passes: int
    seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", frozen_array(self.segments, np.int32))
        object.__setattr__(self, "seed_weights", frozen_array(self.seed_weights, np.float64))
        object.__setattr__(self, "maps", frozen_array(self.maps, np.float32))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "methods", tuple(self.methods))

    def cam_maps(self) -> dict[str, np.ndarray]:
        return dict(zip(self.methods, self.maps, strict=True))


@dataclass
class SampleResults:
    """The sample as the page shows it (not cached itself: its images are)."""

    plan: SamplePlan
    images: list[SampleImage] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(image id, reason) of drawn images that could not be used."""
    missing: int = 0
    """Drawn images whose results are not in the cache (a report rendered from the cache alone)."""
    summary: ComparisonSummary | None = None

    @property
    def seconds_per_image(self) -> float:
        """Mean wall seconds of the per-image work over the images used (NaN without any)."""
        return sum(item.seconds for item in self.images) / len(self.images) if self.images else math.nan


def draw_sample(source: str, count: int, seed: int, exclude: Sequence[str] = ()) -> tuple[SampleSource, ...]:
    """``count`` images drawn without replacement (``numpy`` permutation seeded by ``seed``) from ``source``:
    ``imagenet-samples`` (the manifest's ImageNet sample images whose stems are not in ``exclude``; checked on
    disk only when used) or a folder (its image files, hashed now). Fewer when the source has fewer."""
    from xai.data import IMAGE_SUFFIXES, image_ids, list_images, manifest, sha256_of

    if count <= 0:
        return ()
    rng = np.random.default_rng(seed)
    if source == IMAGENET_SOURCE:
        entries = manifest()
        paths = sorted(p for p in entries if p.startswith("imagenet-sample-images/") and Path(p).stem not in exclude)
        chosen = [paths[i] for i in rng.permutation(len(paths))[:count]]
        ids = image_ids([Path(p) for p in chosen], fixed=True)
        return tuple(SampleSource(i, p, entries[p].sha256, True) for i, p in zip(ids, chosen, strict=True))
    folder = Path(source)
    files = [path for path in list_images(folder) if path.suffix.lower() in IMAGE_SUFFIXES]
    picked = [files[i] for i in rng.permutation(len(files))[:count]]
    ids = image_ids(picked, folder)
    return tuple(SampleSource(i, str(p), sha256_of(p), False) for i, p in zip(ids, picked, strict=True))


def sample_image(
    model: torch.nn.Module,
    pixels: np.ndarray,
    settings: SampleSettings,
    *,
    to_input: ToInput,
    image_id: str,
    seed: int,
    faithfulness_seed: int,
    batch_size: int | None = None,
) -> SampleImage:
    """LIME (``settings.lime_seeds`` seeds from ``seed``, one segmentation), each CAM of the predicted class, the
    per-image comparison and deletion/insertion of one image: what the explain and compare stages compute for the
    ten images, restricted to what Task 4 needs. ``faithfulness_seed`` seeds the random maps and tie-breaking
    (``faithfulness.image_seed`` of the image)."""
    from xai.architectures import resolve_layer
    from xai.explain.cams.base import compute_cam
    from xai.explain.inference import model_device, predict
    from xai.explain.lime_image import run_lime
    from xai.explain.registry import METHODS

    start = time.perf_counter()
    prediction = predict(model, pixels, to_input=to_input)
    first = run_lime(model, pixels, to_input=to_input, params=settings.lime, seed=seed, batch_size=batch_size)
    runs = [first] + [
        run_lime(
            model,
            pixels,
            to_input=to_input,
            params=settings.lime,
            seed=seed + offset,
            batch_size=batch_size,
            segments=first.segments,
        )
        for offset in range(1, settings.lime_seeds)
    ]
    weights = np.stack([run.weights for run in runs])
    layer = resolve_layer(model, settings.target_layer)
    tensor = to_input(pixels[None]).to(model_device(model))
    cams = [
        compute_cam(
            model,
            tensor,
            method,
            layer,
            prediction.top1,
            batch_size=batch_size if METHODS[method].batched else None,
            reshape=settings.reshape,
        )
        for method in settings.methods
    ]
    maps = {cam.method: cam.map for cam in cams}
    seeds = tuple(run.seed for run in runs)
    comparison = compare_image(
        pixels,
        first.segments,
        weights,
        maps,
        image_id=image_id,
        ks=settings.ks,
        thresholds=settings.thresholds,
        seeds=seeds,
        null_draws=settings.null_draws,
        null_seed=seed,
    )
    faithfulness = faithfulness_image(
        model,
        to_input,
        pixels,
        explanation_maps(first.segments, first.weights, maps),
        prediction.top1,
        steps=settings.steps,
        batch_size=batch_size or 16,
        seed=faithfulness_seed,
        image_id=image_id,
        random_draws=settings.random_draws,
        random_cells=settings.random_cells,
    )
    passes = 1 + sum(run.forward_passes for run in runs) + sum(cam.forward_passes for cam in cams)
    return SampleImage(
        image_id=image_id,
        top1=prediction.top1,
        segments=first.segments,
        seed_weights=weights,
        seeds=seeds,
        methods=tuple(maps),
        maps=np.stack(list(maps.values())) if maps else np.zeros((0, *pixels.shape[:2]), np.float32),
        comparison=comparison,
        faithfulness=faithfulness,
        forward_passes=passes + faithfulness.forward_passes,
        seconds=time.perf_counter() - start,
    )


def summarise_sample(
    images: Sequence[SampleImage],
    *,
    k: int,
    seed: int = 0,
    primary: Sequence[str] = PRIMARY_CAMS,
    cross_image_others: int | None = None,
) -> ComparisonSummary:
    """The same tables and tests as the ten images get, over the sample (no sanity check: it is not repeated)."""
    cross = cross_image_table(
        [(item.image_id, item.segments, item.seed_weights, item.cam_maps()) for item in images],
        images[0].comparison.agreements[0].ks if images else (k,),
        max_others=cross_image_others,
        seed=seed,
    )
    return summarise(
        [item.comparison for item in images],
        [item.faithfulness for item in images],
        None,
        k=k,
        seed=seed,
        cross_image=cross,
        primary=primary,
    )
