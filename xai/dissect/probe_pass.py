"""Steps 1 and 2 of CLIP-Dissect over the probe set in one pass: each image is decoded once, in parallel worker
processes, for every network that needs it.

CLIP-Dissect reads the probe set once per network (``ImageFolder`` + ``DataLoader(num_workers=8,
pin_memory=True)`` for CLIP, then again for each target). Here a ``torch.utils.data.DataLoader`` over
:class:`ProbeImages` decodes each JPEG once and applies every distinct transform to it (CLIP's bicubic 224 crop
with CLIP's mean/std; each target model's own weights' crop, e.g. the ImageNet 256 -> 224 crop shared by both
ResNet18s, applied once for all targets that use it), in ``workers`` processes that
overlap the forward passes. Workers send uint8 crops (a quarter of float32 in shared memory); ``/255`` and the
mean/std normalisation run on the device, the same operations in the same order. Batches are pinned on CUDA; an
image that cannot be decoded is skipped and reported. The numbers are those of separate passes: same
transforms, same forward passes, same pooling (:mod:`xai.dissect.activations`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xai.dissect.activations import hooked_layers
from xai.dissect.clip_embed import image_input_dtype

MAX_WORKERS = 8
MAX_CUDA_WORKERS = 16
"""On CUDA the forward passes leave the CPU to decoding, which then bounds the pass: more workers (uint8 batches
keep their shared memory small)."""
"""CLIP-Dissect's worker count; more decoders than that only add shared-memory batches in flight."""
PREFETCH_FACTOR = 2
"""Batches each worker keeps ready (torch's default)."""


@dataclass(frozen=True)
class SplitTransform:
    """A preprocessing split where it is exact: ``to_uint8`` (PIL ops, then ``pil_to_tensor``) runs in the worker,
    ``x / 255`` and ``Normalize(mean, std)`` run on the device. uint8 batches are a quarter of float32 ones in
    shared and pinned memory and on the bus. ``mean`` None: ``to_uint8`` is the whole (float) transform."""

    to_uint8: Callable
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def finish(self, batch: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The batch on ``device`` as the full transform would give it, cast to ``dtype``."""
        batch = batch.to(device, non_blocking=True)
        if self.mean is None:
            return batch.to(dtype)
        from torchvision.transforms.functional import normalize

        # the same operations, in the same order, as ToTensor / convert_image_dtype and then Normalize
        images = normalize(batch.to(torch.float32).div_(255), list(self.mean), list(self.std), inplace=True)
        return images.to(dtype)


def split_transform(transform: Callable) -> SplitTransform:
    """Split a preprocessing transform at its ``ToTensor`` when that is exact: torchvision's
    ``ImageClassification`` preset (the ResNet18 transform) and a ``Compose`` ending in ``ToTensor`` (or open_clip's
    ``MaybeToTensor``) and ``Normalize`` (CLIP's). Anything else runs whole in the worker."""
    from torchvision.transforms import Compose, Normalize, PILToTensor
    from torchvision.transforms import functional as F
    from torchvision.transforms._presets import ImageClassification

    if isinstance(transform, ImageClassification):

        def to_uint8(image: Any, t: ImageClassification = transform) -> torch.Tensor:
            resized = F.resize(image, t.resize_size, interpolation=t.interpolation, antialias=t.antialias)
            return F.pil_to_tensor(F.center_crop(resized, t.crop_size))

        return SplitTransform(to_uint8, tuple(transform.mean), tuple(transform.std))
    steps = list(transform.transforms) if isinstance(transform, Compose) else []
    if (
        len(steps) >= 2
        and type(steps[-2]).__name__ in ("ToTensor", "MaybeToTensor")
        and isinstance(steps[-1], Normalize)
    ):
        mean, std = steps[-1].mean, steps[-1].std
        return SplitTransform(Compose([*steps[:-2], PILToTensor()]), tuple(map(float, mean)), tuple(map(float, std)))
    return SplitTransform(transform)


class ProbeImages(Dataset):
    """Probe image ``i`` decoded once (RGB) and passed through each of ``transforms``.

    An item is ``(i, tensors, None)``, or ``(i, None, reason)`` when the file cannot be decoded: one bad image
    among 63,305 is skipped (and reported), not the end of the pass.
    """

    def __init__(self, paths: Sequence[str | Path], transforms: Sequence[Callable]) -> None:
        self.paths = list(paths)
        self.transforms = list(transforms)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, tuple[torch.Tensor, ...] | None, str | None]:
        from PIL import Image

        try:
            with Image.open(self.paths[index]) as image:
                rgb = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            return index, None, f"cannot be decoded ({type(error).__name__}: {str(error).splitlines()[0][:160]})"
        return index, tuple(transform(rgb) for transform in self.transforms), None


def collate_probe(
    items: list[tuple[int, Any, str | None]],
) -> tuple[list[int], list[torch.Tensor] | None, list[tuple[int, str]]]:
    """Batch the decodable items: (their indices, stacked tensors per transform or None, [(index, reason)])."""
    good = [(index, tensors) for index, tensors, _ in items if tensors is not None]
    bad = [(index, reason) for index, tensors, reason in items if tensors is None]
    if not good:
        return [], None, bad
    stacked = [torch.stack([tensors[k] for _, tensors in good]) for k in range(len(good[0][1]))]
    return [index for index, _ in good], stacked, bad


def spare_cpus(device: str | torch.device = "cpu") -> int:
    """The decoding workers' share of the CPUs. On CPU: those left beside torch's threads
    (:func:`xai.batching.spare_cpus`); on CUDA the GPU runs the forwards, so every CPU but the main process's."""
    from xai.batching import spare_cpus as spare
    from xai.batching import usable_cpus

    if torch.device(device).type == "cuda":
        return min(len(usable_cpus()) - 1, MAX_CUDA_WORKERS)
    return min(spare(), MAX_WORKERS)


def probe_loader(
    paths: Sequence[str | Path],
    transforms: Sequence[Callable],
    batch_size: int,
    *,
    device: str | torch.device = "cpu",
    workers: int | None = None,
) -> DataLoader:
    """Batches of :class:`ProbeImages` in probe order (:func:`collate_probe`); ``workers`` decoding processes
    (default: :func:`spare_cpus`: one per CPU left beside torch's threads, at most :data:`MAX_WORKERS`, or on CUDA
    all but one CPU, at most :data:`MAX_CUDA_WORKERS`; none when there is a single
    batch or no spare CPU: decoding then runs in this process between forwards, rather than competing with torch's
    threads for the same cores), pinned memory on CUDA."""
    if workers is None:
        workers = min(spare_cpus(device), math.ceil(len(paths) / batch_size))
        workers = 0 if workers <= 1 else workers
    return DataLoader(
        ProbeImages(paths, transforms),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_probe,
        pin_memory=torch.device(device).type == "cuda",
        prefetch_factor=PREFETCH_FACTOR if workers else None,
    )


@dataclass
class ProbeOutputs:
    """What one pass produced: CLIP image embeddings (L2-normalised) and pooled activations per network."""

    clip_embeddings: np.ndarray | None = None
    activations: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    kept: np.ndarray | None = None
    """Indices into the probe paths of the rows above (every image that could be decoded), in order."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of each probe image that could not be decoded and was left out."""
    decoder: str = "cpu"
    """``cpu`` (PIL in the loader's workers) or ``device`` (decoded and cropped on the device)."""


def probe_pass(
    paths: Sequence[str | Path],
    *,
    batch_size: int,
    clip: nn.Module | None = None,
    clip_transform: Callable | None = None,
    targets: Mapping[str, nn.Module] | None = None,
    target_transform: Callable | Mapping[str, Callable] | None = None,
    layers: Sequence[str] | Mapping[str, Sequence[str]] = (),
    pool: str = "mean",
    device: str | torch.device = "cpu",
    workers: int | None = None,
    progress: Callable[[Iterable, int], Iterable] | None = None,
    decode: str = "auto",
) -> ProbeOutputs:
    """CLIP image embeddings and/or every target's pooled ``layers``, decoding each probe image once.

    Args:
        paths: probe images, in probe order.
        batch_size: images per forward pass (the caller's choice, e.g. a measured best).
        clip, clip_transform: open_clip CLIP model (on ``device``, fp16 on CUDA) and its preprocess; None skips.
        targets: ``{name: model}`` on ``device``.
        target_transform: one preprocessing for every target, or ``{name: transform}`` (each model its own
            weights' ``transforms()``). Targets whose transforms are equal share one crop of the decoded image.
        layers, pool: hooked module names (one list for all targets, or ``{name: [layer, ...]}``) and pooling
            (``mean``/``max``; :func:`xai.architectures.pool_activation`).
        device: where the forward passes run.
        workers: decoding processes (see :func:`probe_loader`).
        progress: ``progress(batches, total)`` wraps the batch iterator (a progress bar with total and ETA).
        decode: ``cpu``: PIL decodes and crops in the workers; ``device``: the workers read the files, the device
            decodes (nvJPEG on CUDA) and crops (:mod:`xai.dissect.device_decode`); ``auto``: ``device`` on CUDA
            when every transform has a tensor form, else ``cpu``. ``ProbeOutputs.decoder`` says which ran.

    Returns:
        :class:`ProbeOutputs`: embeddings (N, D) float32 and ``{name: {layer: (N, K) float32}}`` over the N
        decodable images (``kept``); each undecodable one is in ``skipped`` with a one-line warning.
    """
    targets = dict(targets or {})
    if clip is None and not targets:
        raise ValueError("nothing to run: give CLIP and/or target models")
    if not paths:
        raise ValueError("no probe images were given")
    target_layers = {name: list(layers[name] if isinstance(layers, Mapping) else layers) for name in targets}
    crops, crop_of = _target_crops(targets, target_transform)
    splits = [split_transform(t) for t in ([clip_transform] if clip is not None else []) + crops]
    first_crop = 1 if clip is not None else 0
    device = torch.device(device)
    transforms = [clip_transform] * (clip is not None) + crops
    loader, decoder = _loader(paths, transforms, splits, batch_size, device, workers, decode)
    batches: Iterable = progress(loader, len(loader)) if progress else loader
    clip_dtype = image_input_dtype(clip) if clip is not None else torch.float32
    features: list[torch.Tensor] = []
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    for model in targets.values():
        model.eval()
    if clip is not None:
        clip.eval()
    on_cuda = device.type == "cuda"
    with ExitStack() as stack, torch.inference_mode():
        # cuDNN autotuning (``cudnn.benchmark``) is left as the caller set it (off by default, as in CLIP-Dissect):
        # it may pick different kernels from run to run, and the same config must give byte-identical tables.
        # On CUDA, results stay on the device until the end: no synchronising copy per batch.
        stores = {
            name: stack.enter_context(hooked_layers(model, target_layers[name], pool, to_cpu=not on_cuda))
            for name, model in targets.items()
        }
        for indices, tensors, bad in batches:
            for index, reason in bad:
                skipped.append((str(paths[index]), reason))
                warnings.warn(f"probe image {paths[index]} {reason}; skipped", stacklevel=2)
            if tensors is None:
                continue
            kept.extend(indices)
            if clip is not None:
                images = splits[0].finish(tensors[0], device, clip_dtype)
                embedded = clip.encode_image(images).float()
                features.append(embedded if on_cuda else embedded.cpu())
            for crop in range(len(crops)):
                split = splits[first_crop + crop]
                images = split.finish(tensors[first_crop + crop], device, torch.float32)
                # channels_last input: same values, ~1.3-1.9x faster convolutions on CPU (xai.explain.inference)
                images = images.contiguous(memory_format=torch.channels_last)
                for name, model in targets.items():
                    if crop_of[name] == crop:
                        model(images)
    if not kept:
        raise ValueError(f"none of the {len(paths)} probe images could be decoded (first: {skipped[0][0]})")
    out = ProbeOutputs(kept=np.asarray(kept, dtype=np.int64), skipped=skipped, decoder=decoder)
    if clip is not None:
        out.clip_embeddings = torch.nn.functional.normalize(torch.cat(features), dim=-1).cpu().numpy()
    for name, store in stores.items():
        out.activations[name] = {
            layer: torch.cat(store[layer]).cpu().numpy().astype(np.float32, copy=False) for layer in target_layers[name]
        }
    return out


def _loader(
    paths: Sequence[str | Path],
    transforms: Sequence[Callable],
    splits: Sequence[SplitTransform],
    batch_size: int,
    device: torch.device,
    workers: int | None,
    decode: str,
) -> tuple[Iterable, str]:
    """The batches of the pass and which decoder makes them (see :func:`probe_pass`'s ``decode``)."""
    from xai.dissect.device_decode import DeviceDecodedBatches, device_decoding

    if decode not in ("auto", "cpu", "device"):
        raise ValueError(f"decode must be auto, cpu or device, not {decode!r}")
    forms = device_decoding(device, transforms) if decode != "cpu" else None
    if decode == "device" and forms is None:
        raise ValueError("decode='device' needs transforms with a tensor form (resize and centre crop)")
    to_uint8 = [split.to_uint8 for split in splits]
    if forms is not None and (decode == "device" or device.type == "cuda"):
        if workers is None:
            workers = min(spare_cpus(device), math.ceil(len(paths) / batch_size))
            workers = 0 if workers <= 1 else workers
        return DeviceDecodedBatches(paths, to_uint8, forms, batch_size, device, workers), "device"
    return probe_loader(paths, to_uint8, batch_size, device=device, workers=workers), "cpu"


def _transform_key(transform: Callable) -> Any:
    """Equal keys for transforms that give equal crops: torchvision's ``ImageClassification`` presets by their
    settings (two models' ``IMAGENET1K_V1`` transforms are separate but equal objects), anything else by identity."""
    from torchvision.transforms._presets import ImageClassification

    if isinstance(transform, ImageClassification):
        return (
            "ImageClassification",
            tuple(transform.crop_size),
            tuple(transform.resize_size),
            tuple(transform.mean),
            tuple(transform.std),
            transform.interpolation,
            transform.antialias,
        )
    return id(transform)


def _target_crops(
    targets: Mapping[str, nn.Module], transform: Callable | Mapping[str, Callable] | None
) -> tuple[list[Callable], dict[str, int]]:
    """The distinct target transforms (each applied once per decoded image) and, per target, which one it takes."""
    if not targets:
        return [], {}
    if transform is None:
        raise ValueError("target models need a target_transform")
    crops: list[Callable] = []
    keys: list[Any] = []
    crop_of: dict[str, int] = {}
    for name in targets:
        own = transform[name] if isinstance(transform, Mapping) else transform
        key = _transform_key(own)
        if key not in keys:
            keys.append(key)
            crops.append(own)
        crop_of[name] = keys.index(key)
    return crops, crop_of
