"""Where the heavy work runs: units of work, their results, and the executor that runs them.

A *unit* is one independent piece of a stage's heavy work: one image's explanations (every method), one image's
comparison work (the superpixel null and deletion/insertion), the sanity check, a contiguous shard of the probe pass.
It is a pure function of the run plan, the unit's inputs and the cached pieces it is given (:attr:`Unit.known`)
to the pieces still missing (:attr:`Unit.missing`), returned as the serialiser's parts (:data:`xai.serial.Parts`),
so the driver writes them into the content-addressed cache with the same keys whichever executor computed them.

An :class:`Executor` maps units to results. :class:`xai.units.LocalExecutor` (the default, ``executor: local``)
calls the unit function in the driver's process; :class:`xai.executors.ray.RayExecutor` (``executor: ray``) sends
units to Ray actors on a cluster. Both run the same unit functions (:func:`xai.units.run_unit`) on the same inputs,
so a run's artifacts are the same by construction; the stages call an executor and never import Ray.

A leaf of the glue: it imports nothing of ``xai``, so the run context can name the executor's type.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import torch

Parts = tuple[dict[str, "np.ndarray"], dict[str, Any]]
"""A serialised artifact: named arrays and JSON-able meta (:data:`xai.serial.Parts`)."""


@dataclass(frozen=True)
class Unit:
    """One piece of work, as sent to a worker: plain, picklable data."""

    function: str
    """``module:function`` of the unit function, ``f(context, inputs, workspace) -> value``
    (e.g. ``xai.stages.explain:explain_unit``)."""
    label: str
    """What the unit is, for progress and errors (an image id, a probe range)."""
    stage: str
    """The stage whose cache keys its pieces carry."""
    inputs: Any
    """The unit's inputs (an image with its pixels, a probe shard's paths); picklable."""
    known: Mapping[str, Parts] = field(default_factory=dict)
    """Cache key -> parts of the cached pieces the unit may read (e.g. the prediction its CAMs need)."""
    missing: tuple[str, ...] = ()
    """Cache keys of the pieces the unit must compute."""
    files: tuple[str, ...] = ()
    """Files on the driver the unit reads (probe images): an executor without a shared file system ships them."""


@dataclass
class UnitResult:
    """What a unit sends back: its computed pieces, its value, and what the run record needs from the worker."""

    label: str
    pieces: dict[str, Parts]
    """Cache key -> parts of each computed piece, in the order the unit computed them."""
    value: Any = None
    """The unit function's return value (a failure reason, a probe shard's outputs)."""
    batch_sizes: dict[str, Any] = field(default_factory=dict)
    """Label -> :class:`xai.batching.BatchChoice` the worker resolved (measured per worker kind)."""
    load_notes: dict[str, str] = field(default_factory=dict)
    """Model id -> how the worker read that model's checkpoint, when not the plain safe load."""
    worker: str = ""
    """Which worker ran it (host and process id)."""
    seconds: float = 0.0
    """Wall seconds the unit took on the worker."""
    written: bool = False
    """The pieces are in the driver's cache already (a unit run in the driver's process writes each as it goes)."""


class Executor(Protocol):
    """Runs units: in the driver's process or on a cluster."""

    kind: str
    """``local`` or ``ray``."""

    @property
    def device(self) -> torch.device:
        """Where units compute (the device type enters the keys of device-dependent pieces)."""
        ...

    @property
    def parallelism(self) -> int:
        """How many units run at once."""
        ...

    def map(self, units: Sequence[Unit]) -> Iterator[tuple[int, UnitResult]]:
        """``(index into units, result)`` of every unit, each as soon as it is done (the order of completion), so
        the driver writes each result at once and a killed driver loses only the units in flight."""
        ...

    def describe(self) -> list[str]:
        """The plan's lines about where units run (nodes, CPUs, GPUs, workers); empty for the local executor."""
        ...

    def close(self) -> None:
        """Release the workers (and a cluster started for the run)."""
        ...
