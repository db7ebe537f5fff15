"""``executor: ray``: units run on Ray actors, on one machine or a cluster; results come back to the driver.

Ray (https://docs.ray.io) does the engine's work: starting worker processes on every node, placing them by the
resources they ask for (``num_cpus``, ``num_gpus``), moving inputs and results through its object store, and
restarting a worker whose process died, then sending it the unit again (``max_restarts``/``max_task_retries``).
This module only sizes the workers, checks they run the driver's code, hands each idle worker the next unit and
turns Ray's errors into the pipeline's.

Workers are actors (:class:`xai.worker.UnitWorker`): each builds a model once and keeps it for every unit it runs.
Each asks for a GPU when the cluster has them, CPUs otherwise; a worker runs ``num_cpus_per_worker`` torch threads
(``OMP_NUM_THREADS``), so the workers of a node do not fight over its cores. The plan, a user's checkpoint and each
unit's files reach them through the object store, and the xai package itself through Ray's ``py_modules``: no
shared file system. Every worker's code and library versions are checked against the driver's before any unit.

Faults: a worker killed mid-unit is restarted and the unit sent again (up to ``ray.max_retries`` times); an error
raised by a unit (a bad input, a bug) is not retried: it reaches the driver once, as its own type. A driver killed
mid-run loses only the units in flight: every finished unit was written into the cache when it arrived.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.errors import UserError

if TYPE_CHECKING:
    import torch

    from xai.executor import Unit, UnitResult
    from xai.executors.settings import RaySettings
    from xai.plan import RunPlan

INSTALL = 'pip install -e ".[ray]"'
START_TIMEOUT_S = 300.0
"""How long workers may take to start (import torch, receive the plan) before the run stops with a message."""
FORWARDED = ("XAI_MIRROR", "XAI_DATA_DIR", "TORCH_HOME", "HF_HOME")
"""Where data and weights are found: given to the workers of a cluster started for the run (this machine's)."""


class ExecutorError(UserError):
    """The cluster cannot be used as configured: Ray missing, an address nobody answers, too few resources, workers
    with other code. One line naming the fix."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            f"executor 'ray': Ray is not installed; install it with {INSTALL} (or pip install ray), "
            "or run with --executor local"
        ) from None
    return ray


def recorded_address() -> str | None:
    """The head address ``ray start --head`` recorded on this machine, if any (Ray's own record)."""
    try:
        from ray._private.utils import read_ray_address

        return read_ray_address() or None
    except Exception:  # a private helper: absent or changed in another Ray, there is simply no record
        return None


def reachable(address: str, timeout_s: float = 5.0) -> OSError | None:
    """None when something accepts TCP connections at ``address`` (``[ray://]host:port``), else the error."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except OSError as error:
        return error


def target(settings: RaySettings) -> tuple[str | None, str]:
    """The address to connect to (None: start a local cluster) and where it came from, for messages."""
    if settings.address == "local":
        return None, "ray.address 'local'"
    if settings.address != "auto":
        return settings.address, f"ray.address {settings.address}"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}"
    recorded = recorded_address()
    if recorded and reachable(recorded, 2.0) is None:
        return recorded, f"the cluster `ray start` recorded on this machine ({recorded})"
    return None, "ray.address 'auto' (no running cluster found)"


class RayExecutor:
    """Units on Ray actors (see the module docstring)."""

    kind = "ray"

    def __init__(self, plan: RunPlan, settings: RaySettings, *, cache_root: Path) -> None:
        self.ray = ray = import_ray()
        self.plan = plan
        self.settings = settings
        self.cache_root = Path(cache_root)
        address, self.source = target(settings)
        if address is not None and (error := reachable(address)) is not None:
            raise ExecutorError(
                f"{self.source}: no Ray cluster answers there ({error.strerror or error}); start one with "
                "`ray start --head` on that machine and join workers with `ray start --address <head>:6379`, "
                "or fix ray.address / RAY_ADDRESS, or run with --executor local"
            )
        self.started = address is None
        previous = os.environ.get("RAY_ADDRESS")
        env = {name: os.environ[name] for name in FORWARDED if self.started and name in os.environ}
        threads = str(settings.num_cpus_per_worker)
        env |= {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        import xai

        ray.init(
            address="local" if address is None else address,
            num_cpus=settings.local_cpus if address is None else None,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
            runtime_env={"py_modules": [str(Path(xai.__file__).parent)], "env_vars": env},
        )
        self._restore_address = previous
        self.address = ray.get_runtime_context().gcs_address
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        resources = ray.cluster_resources()
        self.nodes, self.cpus, self.gpus = len(nodes), int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        self.gpus_per_worker, self.workers, self.capped = self._sizes(plan.config.device)
        self._device = "cuda" if self.gpus_per_worker > 0 else "cpu"
        self.actors: list[Any] = []
        self.pids: list[int] = []
        self.identities: list[Any] = []
        self._files: Any = {}
        self.running: dict[int, tuple[Unit, int]] = {}
        """Unit index -> the unit and the process id of the worker running it (as it was when the unit was sent)."""
        self.finished: list[tuple[str, str, str, float]] = []
        """(unit function, unit label, worker ``host:pid``, seconds on the worker) of every unit done, in the order
        they finished."""

    def _sizes(self, device: str) -> tuple[float, int, int | None]:
        """GPUs per worker, the number of workers, and the number asked for when more than fit (else None)."""
        settings = self.settings
        gpus = settings.num_gpus_per_worker
        if gpus == "auto":
            gpus = 1 if self.gpus and device != "cpu" else 0
        if device == "cuda" and (gpus == 0 or self.gpus == 0):
            raise ExecutorError(
                f"device 'cuda': the Ray cluster ({self.source}) has no GPU for its workers; join a GPU node with "
                "`ray start --address <head>:6379`, or use --device auto or cpu"
            )
        if gpus > 0 and self.gpus == 0:
            raise ExecutorError(
                f"ray.num_gpus_per_worker {gpus:g}: the Ray cluster ({self.source}) has no GPU; set it to 0 or auto"
            )
        fit = int(self.cpus // settings.num_cpus_per_worker)
        if gpus > 0:
            fit = min(fit, int(self.gpus // gpus))
        if fit < 1:
            raise ExecutorError(
                f"ray.num_cpus_per_worker {settings.num_cpus_per_worker}: the Ray cluster ({self.source}) has "
                f"{self.cpus} CPU(s) and {self.gpus} GPU(s), too few for one worker; lower it or add nodes"
            )
        asked = fit if settings.workers == "auto" else settings.workers
        return float(gpus), min(asked, fit), asked if asked > fit else None

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(self._device)

    @property
    def parallelism(self) -> int:
        return self.workers

    def describe(self) -> list[str]:
        started = "a local cluster started for this run" if self.started else f"connected via {self.source}"
        each = f"{self.settings.num_cpus_per_worker} CPU" + (
            f" + {self.gpus_per_worker:g} GPU" if self.gpus_per_worker else ""
        )
        capped = f" ({self.capped} asked; the cluster fits {self.workers})" if self.capped else ""
        return [
            f"  executor: ray at {self.address} ({started}): {self.nodes} node(s), {self.cpus} CPU(s), "
            f"{self.gpus} GPU(s); {self.workers} worker(s) x {each} on {self._device}{capped}; "
            f"up to {self.settings.max_retries} retries of a unit whose worker dies"
        ]

    def _start(self) -> None:
        """Start the workers and check each runs the driver's code and library versions."""
        from xai.worker import UnitWorker, code_identity, plan_files

        ray = self.ray
        settings = self.settings
        remote = ray.remote(UnitWorker).options(
            num_cpus=settings.num_cpus_per_worker,
            num_gpus=self.gpus_per_worker,
            max_restarts=settings.max_retries,
            max_task_retries=settings.max_retries,
        )
        files = plan_files(self.plan)
        # A user's checkpoint goes into the object store once for every worker; the reference is kept for as long
        # as the workers live, so a restarted worker can read it again. The plan itself is small: sent inline.
        self._files = ray.put(files) if files else {}
        records = _batch_records(self.cache_root)
        self.actors = [
            remote.remote(
                self.plan, self._device, threads=settings.num_cpus_per_worker, batch_records=records, files=self._files
            )
            for _ in range(self.workers)
        ]
        pending = [actor.identity.remote() for actor in self.actors]
        _, waiting = ray.wait(pending, num_returns=len(pending), timeout=START_TIMEOUT_S)
        if waiting:
            raise ExecutorError(
                f"ray: {len(waiting)} of {self.workers} worker(s) did not start within {START_TIMEOUT_S:.0f} s "
                f"(the cluster's free CPUs/GPUs are taken?); lower ray.workers or free the cluster"
            )
        self.identities = [self._get(ref, "starting a worker") for ref in pending]
        self.pids = [identity.pid for identity in self.identities]
        driver = code_identity()
        for identity in self.identities:
            if identity.code != driver:
                raise ExecutorError(
                    f"ray: the worker on {identity.host} runs other code or library versions than the driver "
                    f"(code {identity.code}, driver {driver}); install the same xai-report, torch and torchvision "
                    "versions on every node"
                )

    def _get(self, ref: Any, doing: str) -> Any:
        """``ray.get(ref)`` with Ray's errors as the pipeline's: a unit's own error as itself (a user error stays
        one line), a worker that died more often than retried as one line."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as error:
            cause = error.cause
            if isinstance(cause, UserError):
                raise cause from None
            raise
        except exceptions.RayActorError as error:
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            reason = text if len(text) <= 160 else f"{text[:157]}..."
            raise ExecutorError(
                f"ray: a worker died {doing} and was retried {self.settings.max_retries} time(s) ({reason}); see "
                "the Ray logs (/tmp/ray/session_latest/logs); a worker killed for memory needs a smaller batch "
                "size or fewer workers per node"
            ) from None

    def map(self, units: Sequence[Unit]) -> Iterator[tuple[int, UnitResult]]:
        if not units:
            return
        if not self.actors:
            self._start()
        ray = self.ray
        queue = list(range(len(units)))
        queue.reverse()
        idle = list(range(len(self.actors)))
        pending: dict[Any, tuple[int, int]] = {}
        while queue or pending:
            while idle and queue:
                index, slot = queue.pop(), idle.pop()
                unit = units[index]
                contents = {path: Path(path).read_bytes() for path in unit.files}
                pending[self.actors[slot].run.remote(unit, contents)] = (index, slot)
                self.running[index] = (unit, self.pids[slot])
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index, slot = pending.pop(ref)
                result = self._get(ref, f"running unit {units[index].label}")
                self.running.pop(index, None)
                self.finished.append((units[index].function, result.label, result.worker, result.seconds))
                self.pids[slot] = int(result.worker.rpartition(":")[2])  # a restarted worker has a new process
                idle.append(slot)
                yield index, result

    def close(self) -> None:
        ray = self.ray
        if self.actors:
            with contextlib.suppress(Exception):  # a worker already gone has nothing left to remove
                ray.get([actor.close.remote() for actor in self.actors], timeout=30)
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
            self.actors = []
        ray.shutdown()
        if self._restore_address is None:
            os.environ.pop("RAY_ADDRESS", None)
        else:
            os.environ["RAY_ADDRESS"] = self._restore_address


def _batch_records(root: Path) -> dict[str, dict[str, Any]]:
    """The batch-size winners the driver measured before (``<cache>/batch-sizes``): a worker of the same kind
    reuses them instead of measuring again."""
    import json

    from xai.batching import valid_record

    found = {}
    for path in sorted((root / "batch-sizes").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if valid_record(record):
            found[path.stem] = record
    return found
