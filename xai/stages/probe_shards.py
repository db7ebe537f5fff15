"""The probe pass in shards: contiguous ranges of the probe list, each a unit of work (:mod:`xai.executor`), run
anywhere and concatenated by the driver in probe order.

Why the result does not depend on the sharding: the pass batches the probe list in order, ``batch_size`` images at
a time, and each network's output for an image depends only on the batch it is in (pooling and CLIP's L2
normalisation are per image). A shard starts on a batch boundary (its length is a multiple of the batch size), so
its batches are exactly the batches the whole pass would form, and its rows are the same numbers. Under
``batch_size: auto`` the size is measured per worker kind; shards then start on multiples of
:data:`AUTO_QUANTUM`, which every measured size divides (a power of two up to :data:`xai.batching.CUDA_LIMIT`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai.dissect.layers import probe_transform
from xai.dissect.probe_pass import ProbeOutputs
from xai.executor import Unit
from xai.units import executor_of, run_units

if TYPE_CHECKING:
    from xai.clip import LoadedClip
    from xai.context import RunContext
    from xai.plan import DissectedModelPlan, DissectPlan
    from xai.units import Workspace

STAGE = "dissect"
"""The stage the shards belong to (they write no cache piece themselves: the dissect stage stores the pass)."""

AUTO_QUANTUM = 1024
"""Shard boundaries under ``batch_size: auto``: a multiple of every batch size :mod:`xai.batching` can choose."""
SHARDS_PER_WORKER = 4
"""Shards per worker when the pass is spread: a few, so a fast worker takes more and a retried shard costs little."""


@dataclass(frozen=True)
class ProbeShard:
    """A unit's share of the probe pass: images ``start .. start + len(paths)`` of the probe list."""

    start: int
    paths: tuple[str, ...]
    clip: bool
    """CLIP's image embeddings are among what is missing."""
    models: tuple[str, ...]
    """Model ids whose activations are missing."""
    planned: DissectPlan
    """The dissection the shard belongs to: Task 1's, or the concepts stage's (the explained model at its target
    layer)."""


def shard_ranges(count: int, quantum: int, parallelism: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``count`` probe images, each starting on a multiple of ``quantum`` (the
    batch size, or :data:`AUTO_QUANTUM`): one range for a single worker, else up to :data:`SHARDS_PER_WORKER` per
    worker."""
    if count <= 0:
        return []
    batches = math.ceil(count / quantum)
    shards = 1 if parallelism <= 1 else min(batches, parallelism * SHARDS_PER_WORKER)
    length = math.ceil(batches / shards) * quantum
    return [(start, min(start + length, count)) for start in range(0, count, length)]


def shard_quantum(batch_size: int | str) -> int:
    """Where shards may start: the configured batch size, or :data:`AUTO_QUANTUM` for ``auto``."""
    return batch_size if isinstance(batch_size, int) else AUTO_QUANTUM


def placed(outputs: ProbeOutputs, start: int, local: Sequence[Path], paths: Sequence[str]) -> ProbeOutputs:
    """A shard's outputs in the whole pass's terms: rows indexed from ``start`` and each image left out named by
    the driver's path (a worker read the bytes from ``local``, its own copy), in its reason too."""
    if start == 0 and [str(path) for path in local] == list(paths):
        return outputs
    driver = dict(zip(map(str, local), paths, strict=True))
    skipped = []
    for path, reason in outputs.skipped:
        named = driver.get(path, path)
        skipped.append((named, reason.replace(path, named)))
    kept = None if outputs.kept is None else outputs.kept + start
    return replace(outputs, kept=kept, skipped=skipped)


def concatenated(shards: Sequence[ProbeOutputs]) -> ProbeOutputs:
    """The shards' outputs as one pass over the probe list (the shards in probe order)."""
    if len(shards) == 1:
        return shards[0]
    first = shards[0]
    clip = None
    if first.clip_embeddings is not None:
        clip = np.concatenate([shard.clip_embeddings for shard in shards if shard.clip_embeddings is not None])
    activations = {
        name: {layer: np.concatenate([shard.activations[name][layer] for shard in shards]) for layer in layers}
        for name, layers in first.activations.items()
    }
    kept = np.concatenate([shard.kept for shard in shards if shard.kept is not None])
    skipped = [item for shard in shards for item in shard.skipped]
    return ProbeOutputs(clip, activations, kept, skipped)


def probe_batch_size(
    context: RunContext,
    label: str,
    model_id: str,
    forward: Callable[[], Callable[..., Any]],
    transform: Callable[..., Any],
    planned: DissectPlan,
) -> int:
    """Images per probe-pass forward: the config's number, or measured for ``model_id`` (the architecture, so
    both ResNet18s share one measurement) at its transform's input size."""
    from PIL import Image

    from xai.batching import stage_batch_size

    shape = tuple(transform(Image.new("RGB", (256, 256))).shape)
    return stage_batch_size(context, label, planned.batch_size, model_id=model_id, forward=forward, input_shape=shape)


def pass_batch_size(
    context: RunContext, clip: LoadedClip | None, models_needed: list[DissectedModelPlan], planned: DissectPlan
) -> int:
    """Images per batch of the joint probe pass: measured on CLIP when it is in the pass (it costs most per
    image), else on the first model; every network of the pass takes the same decoded batch."""
    from xai.dissect.clip_embed import image_input_dtype

    if clip is not None:

        def clip_forward() -> Callable[..., Any]:
            dtype = image_input_dtype(clip.module)
            return lambda batch: clip.module.encode_image(batch.to(dtype))

        return probe_batch_size(context, "dissect:clip", "clip:encode_image", clip_forward, clip.preprocess, planned)
    first = models_needed[0]
    architecture = first.model.spec.architecture

    def model_forward() -> Callable[..., Any]:
        import torch

        model = context.classifier(first.model).module
        return lambda batch: model(batch.contiguous(memory_format=torch.channels_last))  # as the probe pass does

    return probe_batch_size(
        context,
        f"dissect:{architecture}",
        f"{architecture}:channels_last",
        model_forward,
        probe_transform(first.model.spec),
        planned,
    )


def probe_pass_in_shards(
    context: RunContext,
    paths: list[Path],
    planned: DissectPlan,
    *,
    clip_needed: bool,
    models_needed: list[DissectedModelPlan],
) -> ProbeOutputs:
    """The probe pass over ``paths`` for what is missing, in shards sent through the run's executor (one shard in
    this process, :data:`SHARDS_PER_WORKER` per worker on a cluster), concatenated in probe order."""
    names = (["CLIP"] if clip_needed else []) + [entry.model_id for entry in models_needed]
    ids = tuple(entry.model_id for entry in models_needed)
    quantum = shard_quantum(planned.batch_size)
    units = [
        Unit(
            "xai.stages.probe_shards:probe_shard_unit",
            f"probe images {start + 1}-{stop}",
            STAGE,
            ProbeShard(start, tuple(str(path) for path in paths[start:stop]), clip_needed, ids, planned),
            files=tuple(str(path) for path in paths[start:stop]),
        )
        for start, stop in shard_ranges(len(paths), quantum, executor_of(context).parallelism)
    ]
    results = run_units(context, units, f"probe pass, {len(paths):,} images ({', '.join(names)})")
    return concatenated([result.value for result in results])


def probe_shard_unit(context: RunContext, shard: ProbeShard, workspace: Workspace) -> ProbeOutputs:
    """The unit of one probe shard: CLIP's embeddings and each listed model's pooled activations of its images,
    decoding each image once (:func:`xai.dissect.probe_pass.probe_pass`)."""
    from xai.dissect.probe_pass import probe_pass

    entries = [entry for entry in shard.planned.models if entry.model_id in shard.models]
    local = [workspace.file(path) for path in shard.paths]
    clip = context.clip() if shard.clip else None
    bar = f"probe pass, {len(local):,} images"
    outputs = probe_pass(
        local,
        batch_size=pass_batch_size(context, clip, entries, shard.planned),
        clip=clip.module if clip else None,
        clip_transform=clip.preprocess if clip else None,
        targets={entry.model_id: context.classifier(entry.model).module for entry in entries},
        target_transform={entry.model_id: probe_transform(entry.model.spec) for entry in entries},
        layers={entry.model_id: entry.layers.layers for entry in entries},
        pool=shard.planned.pool,
        device=context.device,
        progress=lambda batches, total: context.progress(batches, bar, total),
    )
    return placed(outputs, shard.start, local, shard.paths)
