"""A worker of a remote executor: a process that runs units with a run context of its own.

The worker rebuilds what a unit needs from the run plan (plain, picklable data) with the run's seeds: each model is
built once, on the worker's device, the first time a unit needs it, and kept for the next units. Its context writes
no artifact: units return their pieces and the driver writes them. Batch sizes are measured per worker kind (device
and model) as :mod:`xai.batching` does, starting from the winners the driver already knows; whatever the worker
resolves goes back to the driver with each result.

Files the plan names on the driver (a checkpoint of the user's own, its class file) and files a unit reads (probe
images) come with the plan or the unit, as bytes, and are written under the worker's own temporary folder: no
shared file system is needed. Published weights and data files are found or downloaded by their pinned checksums,
by the same rules as on the driver (``weights_dir``, the torch hub cache, ``XAI_MIRROR``, ``XAI_DATA_DIR``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xai.classifiers import ClassifierSpec
    from xai.executor import Unit, UnitResult
    from xai.plan import ModelPlan, RunPlan

CODE_MODULES = ("explain", "compare", "dissect", "batching")
"""Every compute package: :func:`xai.cache.code_version` over them (with the library versions) must be the same on
the driver and on each worker, or the worker's keys and numbers would not be the driver's."""


def code_identity() -> str:
    """The code and library versions every cache key carries (:func:`xai.cache.code_version`)."""
    from xai.cache import code_version

    return code_version(*CODE_MODULES)


@dataclass(frozen=True)
class WorkerIdentity:
    host: str
    pid: int
    device: str
    """``cpu`` or the GPU's name."""
    threads: int
    code: str
    """:func:`code_identity` on the worker."""


def plan_files(plan: RunPlan) -> dict[str, bytes]:
    """The files the plan names on the driver that a worker elsewhere cannot find by checksum: checkpoints of the
    user's own and class files. Driver path -> bytes."""
    files: dict[str, bytes] = {}
    for model in plan.models():
        for path in (model.spec.checkpoint, model.spec.classes):
            if path is not None:
                files[str(path)] = Path(path).read_bytes()
    return files


def localised(plan: RunPlan, files: Mapping[str, Path]) -> RunPlan:
    """``plan`` with every model's checkpoint and class file read from the worker's copies (``files``: driver path
    -> local copy). Nothing else changes: the weights keys were computed on the driver from the same bytes."""

    def spec(found: ClassifierSpec) -> ClassifierSpec:
        checkpoint = files.get(str(found.checkpoint)) if found.checkpoint else None
        classes = files.get(str(found.classes)) if found.classes else None
        return dataclasses.replace(found, checkpoint=checkpoint or found.checkpoint, classes=classes or found.classes)

    def model(found: ModelPlan) -> ModelPlan:
        return dataclasses.replace(found, spec=spec(found.spec))

    explain = plan.explain and dataclasses.replace(plan.explain, model=model(plan.explain.model))
    dissect = plan.dissect and dataclasses.replace(
        plan.dissect,
        models=tuple(dataclasses.replace(entry, model=model(entry.model)) for entry in plan.dissect.models),
    )
    return dataclasses.replace(plan, explain=explain, dissect=dissect)


def write_files(contents: Mapping[str, bytes], folder: Path) -> dict[str, Path]:
    """Write each driver file's bytes under ``folder`` (one numbered subfolder per file keeps its name, which
    some readers look at: ``.jpg``, ``.pth.tar``); driver path -> local path."""
    written = {}
    for number, (path, data) in enumerate(contents.items()):
        local = folder / str(number) / Path(path).name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        written[path] = local
    return written


@contextmanager
def unit_files(contents: Mapping[str, bytes]) -> Iterator[dict[str, Path]]:
    """The unit's files written into a temporary folder, removed when the unit is done."""
    if not contents:
        yield {}
        return
    folder = Path(tempfile.mkdtemp(prefix="xai-unit-"))
    try:
        yield write_files(contents, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class UnitWorker:
    """Runs units with a context of its own (see the module docstring); a Ray actor wraps one."""

    def __init__(
        self,
        plan: RunPlan,
        device: str,
        *,
        threads: int,
        batch_records: Mapping[str, dict[str, Any]],
        files: Mapping[str, bytes],
    ) -> None:
        import torch

        from xai.batching import BatchSizeCache
        from xai.cache import ArtifactCache
        from xai.context import RunContext
        from xai.stages import STAGES

        torch.set_num_threads(max(1, threads))
        self.root = Path(tempfile.mkdtemp(prefix="xai-worker-"))
        plan = localised(plan, write_files(files, self.root / "files"))
        # Only batch-size winners live under this root (no stage writes through this context): the driver's,
        # then this worker's own measurements.
        sizes = BatchSizeCache(self.root)
        for key, record in batch_records.items():
            sizes.put(key, record)
        self.context = RunContext(plan, ArtifactCache(self.root), torch.device(device), quiet=True)
        for name in plan.run:  # the stages' code (LIME, grad-cam, open_clip) imported at start, not in a unit
            STAGES[name].implementation()

    def identity(self) -> WorkerIdentity:
        import torch

        device = self.context.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        return WorkerIdentity(socket.gethostname(), os.getpid(), name, torch.get_num_threads(), code_identity())

    def run(self, unit: Unit, contents: Mapping[str, bytes]) -> UnitResult:
        from xai.units import run_unit

        with unit_files(contents) as files:
            return run_unit(self.context, unit, files)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
