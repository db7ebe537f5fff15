"""Steps 1 and 2 of CLIP-Dissect over the probe set in one pass: each image is decoded once, in parallel worker
processes, for every network that needs it.

CLIP-Dissect reads the probe set once per network (``ImageFolder`` + ``DataLoader(num_workers=8,
pin_memory=True)`` for CLIP, then again for each target). Here a ``torch.utils.data.DataLoader`` over
:class:`ProbeImages` decodes each JPEG once and applies every distinct transform to it (CLIP's bicubic 224 crop
with CLIP's mean/std; the ImageNet 256 -> 224 crop shared by both ResNet18s), in ``workers`` processes that
overlap the forward passes; batches are pinned on CUDA. The numbers are those of separate passes: same
transforms, same forward passes, same pooling (:mod:`xai.dissect.activations`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xai.dissect.activations import hooked_layers
from xai.dissect.clip_embed import image_input_dtype


class ProbeImages(Dataset):
    """Probe image ``i`` decoded once (RGB) and passed through each of ``transforms``: a tuple of tensors."""

    def __init__(self, paths: Sequence[str | Path], transforms: Sequence[Callable]) -> None:
        self.paths = list(paths)
        self.transforms = list(transforms)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        from PIL import Image

        with Image.open(self.paths[index]) as image:
            rgb = image.convert("RGB")
        return tuple(transform(rgb) for transform in self.transforms)


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def probe_loader(paths: Sequence[str | Path], transforms: Sequence[Callable], batch_size: int, *,
                 device: str | torch.device = "cpu", workers: int | None = None) -> DataLoader:
    """Batches of :class:`ProbeImages` in probe order; ``workers`` decoding processes (default: one per core,
    none when there is a single batch), pinned memory on CUDA."""
    if workers is None:
        workers = min(available_cores(), math.ceil(len(paths) / batch_size))
        workers = 0 if workers <= 1 else workers
    return DataLoader(ProbeImages(paths, transforms), batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=torch.device(device).type == "cuda", prefetch_factor=4 if workers else None)


@dataclass
class ProbeOutputs:
    """What one pass produced: CLIP image embeddings (L2-normalised) and pooled activations per network."""

    clip_embeddings: np.ndarray | None = None
    activations: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def probe_pass(
    paths: Sequence[str | Path],
    *,
    batch_size: int,
    clip: nn.Module | None = None,
    clip_transform: Callable | None = None,
    targets: Mapping[str, nn.Module] | None = None,
    target_transform: Callable | None = None,
    layers: Sequence[str] = (),
    pool: str = "avg",
    device: str | torch.device = "cpu",
    workers: int | None = None,
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> ProbeOutputs:
    """CLIP image embeddings and/or every target's pooled ``layers``, decoding each probe image once.

    Args:
        paths: probe images, in probe order.
        batch_size: images per forward pass (the caller's choice, e.g. a measured best).
        clip, clip_transform: open_clip CLIP model (on ``device``, fp16 on CUDA) and its preprocess; None skips.
        targets: ``{name: model}`` on ``device``; all share ``target_transform``.
        layers, pool: hooked module names and pooling of conv outputs (``avg``/``max``).
        device: where the forward passes run.
        workers: decoding processes (see :func:`probe_loader`).
        progress: ``progress(batches, total)`` wraps the batch iterator (a progress bar with total and ETA).

    Returns:
        :class:`ProbeOutputs`: embeddings (N, D) float32 and ``{name: {layer: (N, K) float32}}``.
    """
    targets = dict(targets or {})
    if clip is None and not targets:
        raise ValueError("nothing to run: give CLIP and/or target models")
    if not paths:
        raise ValueError("no probe images were given")
    transforms = ([clip_transform] if clip is not None else []) + ([target_transform] if targets else [])
    loader = probe_loader(paths, transforms, batch_size, device=device, workers=workers)
    batches: Iterable = progress(loader, len(loader)) if progress else loader
    device = torch.device(device)
    clip_dtype = image_input_dtype(clip) if clip is not None else torch.float32
    features: list[torch.Tensor] = []
    for model in targets.values():
        model.eval()
    if clip is not None:
        clip.eval()
    on_cuda = device.type == "cuda"
    with ExitStack() as stack, torch.inference_mode():
        # cuDNN autotuning (``cudnn.benchmark``) is left as the caller set it (off by default, as in CLIP-Dissect):
        # it may pick different kernels from run to run, and the same config must give byte-identical tables.
        # On CUDA, results stay on the device until the end: no synchronising copy per batch.
        stores = {name: stack.enter_context(hooked_layers(model, layers, pool, to_cpu=not on_cuda))
                  for name, model in targets.items()}
        for batch in batches:
            if clip is not None:
                images = batch[0].to(device, dtype=clip_dtype, non_blocking=True)
                embedded = clip.encode_image(images).float()
                features.append(embedded if on_cuda else embedded.cpu())
            if targets:
                images = batch[-1].to(device, non_blocking=True)
                for model in targets.values():
                    model(images)
    out = ProbeOutputs()
    if clip is not None:
        out.clip_embeddings = torch.nn.functional.normalize(torch.cat(features), dim=-1).cpu().numpy()
    for name, store in stores.items():
        out.activations[name] = {layer: torch.cat(store[layer]).cpu().numpy().astype(np.float32, copy=False)
                                 for layer in layers}
    return out
