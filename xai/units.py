"""Units of work on both sides: the worker side runs a unit (:func:`run_unit`, :class:`Workspace`), the driver
side decides what is missing, sends units through the run's executor and writes what comes back
(:func:`fill_missing`, :func:`run_units`).

One code path for every executor: :class:`LocalExecutor` calls :func:`run_unit` in the driver's process with the
driver's context; a remote worker (:class:`xai.worker.UnitWorker`) calls the same function with a context of its
own. Either way a unit computes exactly its missing pieces, from its inputs and the cached pieces it was given, and
the driver writes them into the cache under the keys it planned, then assembles the stage's artifacts from the
cache as a run with everything cached would (:class:`xai.context.StageCache` with the fresh pieces at hand).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xai import serial
from xai.cache import make_key
from xai.executor import Executor, Parts, Unit, UnitResult

if TYPE_CHECKING:
    import torch

    from xai.context import RunContext

A = TypeVar("A")


class UnitPlanError(RuntimeError):
    """A unit asked for a piece the driver neither sent nor asked for: the worker's code computes other keys than
    the driver's (different code or package versions)."""


@dataclass
class Workspace:
    """What a running unit reads and writes: the cached pieces it was sent, the pieces it computes, its files.

    :meth:`get` has the signature of :meth:`xai.context.StageCache.get`, so a stage's per-item function runs
    unchanged against the cache (driver) or a workspace (unit)."""

    unit: Unit
    files: Mapping[str, Path] = field(default_factory=dict)
    """Driver path -> where the worker has its bytes (empty: the driver's paths are readable here)."""
    write: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], object] | None = None
    """``write(parts, arrays, meta)`` stores each piece the moment it is computed: in the driver's process, so
    an interrupted unit keeps its finished pieces (a remote worker has no cache: its results travel back whole)."""
    computed: dict[str, Parts] = field(default_factory=dict)

    def key(self, parts: dict[str, Any]) -> str:
        return make_key(self.unit.stage, parts)

    def get(self, kind: type[A], parts: dict[str, Any], compute: Callable[[], A]) -> A:
        """The ``kind`` artifact of ``parts``: decoded from the pieces sent, or computed when it is missing. Either
        way it comes back through the cache's decoding (JSON meta, sorted keys), as a cache hit would."""
        key = self.key(parts)
        if key in self.computed:
            arrays, meta = self.computed[key]
        elif key in self.unit.known:
            arrays, meta = self.unit.known[key]
        elif key in self.unit.missing:
            arrays, meta = serial.to_parts(compute())
            meta = json.loads(json.dumps(meta, default=str, sort_keys=True))
            if self.write is not None:
                self.write(parts, arrays, meta)
            self.computed[key] = (arrays, meta)
        else:
            raise UnitPlanError(
                f"unit {self.unit.label}: piece {parts.get('piece', '?')} ({key}) was not planned by the driver: the "
                "worker runs other code or package versions than the driver; install the same versions everywhere"
            )
        return serial.from_parts(kind, arrays, meta)

    def file(self, path: str | Path) -> Path:
        """Where this worker reads the driver's file ``path``."""
        return self.files.get(str(path), Path(path))


def unit_function(name: str) -> Callable[[RunContext, Any, Workspace], Any]:
    """The function ``module:function`` names."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def run_unit(
    context: RunContext, unit: Unit, files: Mapping[str, Path] | None = None, *, write: bool = False
) -> UnitResult:
    """Run ``unit`` with ``context`` (the driver's, or a worker's own): its computed pieces and value, with the
    batch sizes and checkpoint notes the run record needs. ``write``: each piece goes into ``context``'s cache as
    soon as it is computed (the driver's own process only)."""
    started = time.perf_counter()
    store = None
    if write:

        def store(parts: dict[str, Any], arrays: dict[str, Any], meta: dict[str, Any]) -> None:
            context.cache.save(unit.stage, parts, arrays, meta)

    workspace = Workspace(unit, dict(files or {}), store)
    value = unit_function(unit.function)(context, unit.inputs, workspace)
    notes = {name: model.load_note for name, model in context.loaded_classifiers().items() if model.load_note}
    return UnitResult(
        unit.label,
        workspace.computed,
        value,
        dict(context.batch_sizes),
        notes,
        f"{socket.gethostname()}:{os.getpid()}",
        time.perf_counter() - started,
        written=write,
    )


class LocalExecutor:
    """Runs each unit in the driver's process, one after the other, with the driver's context (its models are
    built once per run, as without an executor)."""

    kind = "local"

    def __init__(self, context: RunContext) -> None:
        self.context = context

    @property
    def device(self) -> torch.device:
        return self.context.device

    @property
    def parallelism(self) -> int:
        return 1

    def map(self, units: Sequence[Unit]) -> Iterator[tuple[int, UnitResult]]:
        for index, unit in enumerate(units):
            yield index, run_unit(self.context, unit, write=True)

    def describe(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def executor_of(context: RunContext) -> Executor:
    """The run's executor (:attr:`xai.context.RunContext.executor`); the local one when none was chosen."""
    if context.executor is None:
        context.executor = LocalExecutor(context)
    return context.executor


def unit_device(context: RunContext) -> torch.device:
    """Where the run's units compute: the executor's device (a cluster's GPUs), else the driver's."""
    executor = getattr(context, "executor", None)  # key functions are also given bare stand-ins of a context
    return executor.device if executor is not None else context.device


def run_units(
    context: RunContext,
    units: Sequence[Unit],
    description: str,
    planned: Mapping[str, tuple[type, dict[str, Any]]] | None = None,
) -> list[UnitResult]:
    """Every unit's result, in the order of ``units``, with one progress bar (and ETA) over all of them.

    Each result is handled when it arrives, not when the whole map ends: its pieces are written into the cache
    under the keys ``planned`` (cache key -> (artifact class, key parts)) names, and what the worker resolved is
    recorded on the driver (batch sizes, a measured one kept for later runs; checkpoint notes).
    """
    results: list[UnitResult | None] = [None] * len(units)
    if not units:
        return []
    cache = context.cache
    for index, result in context.progress(executor_of(context).map(units), description, total=len(units)):
        unexpected = set(result.pieces) - set(units[index].missing)
        if unexpected:
            raise UnitPlanError(f"unit {result.label} returned pieces the driver did not ask for: {sorted(unexpected)}")
        for key, (arrays, meta) in result.pieces.items():
            stage = units[index].stage
            if not result.written:
                cache.save(stage, (planned or {})[key][1], arrays, meta)
            cache.stats.misses.append(f"{stage}:{key}")
        _record(context, result)
        results[index] = result
    return [result for result in results if result is not None]


def _record(context: RunContext, result: UnitResult) -> None:
    from xai.batching import BatchSizeCache

    for label, choice in result.batch_sizes.items():
        if label in context.batch_sizes:
            continue
        context.batch_sizes[label] = choice
        if choice.source == "measured" and choice.key:  # kept for the next run's workers of the same kind
            BatchSizeCache(context.cache.root).put(choice.key, choice.to_record())
            seconds = f"{choice.per_image_s:.4f} s/image"
            context.log(f"batch size for {label}: {choice.batch_size} ({seconds}, measured on {result.worker})")
    context.load_notes.update(result.load_notes)


@dataclass(frozen=True)
class Job:
    """One item of a stage's work (an image, the sanity check) before the driver knows what of it is missing."""

    function: str
    """``module:function`` of its unit function."""
    label: str
    inputs: Any
    pieces: Mapping[str, tuple[type, dict[str, Any]]]
    """Name -> (artifact class, cache key parts) of every cached piece the item consists of."""
    files: tuple[str, ...] = ()
    """Driver paths the unit reads (a worker without the driver's filesystem gets their bytes with the unit)."""


@dataclass
class Filled:
    """What :func:`fill_missing` computed: the fresh artifacts by cache key, and each sent unit's value by label."""

    fresh: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def fill_missing(context: RunContext, stage: str, jobs: Sequence[Job], description: str) -> Filled:
    """Send a unit for every job with a piece missing from the cache, and write each computed piece under its key
    as soon as its unit is done. A job with nothing missing sends nothing; a damaged entry counts as missing (the
    cache reports and removes it). Cache statistics count each written piece as computed, as before."""
    cache = context.cache
    units: list[Unit] = []
    planned: dict[str, tuple[type, dict[str, Any]]] = {}
    for job in jobs:
        keys = {make_key(stage, parts): (kind, parts) for kind, parts in job.pieces.values()}
        missing = [key for key, (_, parts) in keys.items() if not cache.contains(stage, parts)]
        if not missing:
            continue
        known: dict[str, Parts] = {}
        for key, (_, parts) in keys.items():
            if key in missing:
                continue
            stored = cache.load(stage, parts)
            if stored is None:  # damaged (reported and removed by the cache) or gone meanwhile
                missing.append(key)
                continue
            arrays, meta = stored
            known[key] = (arrays, {name: value for name, value in meta.items() if name != "key_parts"})
        planned |= keys
        units.append(Unit(job.function, job.label, stage, job.inputs, known, tuple(missing), files=job.files))
    filled = Filled()
    for unit, result in zip(units, run_units(context, units, description, planned), strict=True):
        filled.values[unit.label] = result.value
        for key, (arrays, meta) in result.pieces.items():
            filled.fresh[key] = serial.from_parts(planned[key][0], arrays, meta)
    return filled
