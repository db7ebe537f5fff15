"""What the figure pool's processes run and how they start: the drawing of one figure (timed, in whichever
process), the workers' one-thread initializer and start method, and a failure's one-line reason."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

PRELOAD = ("xai.report.figures._worker",)
"""Imported once by the forkserver, so each worker starts with the figure code and matplotlib's caches loaded."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def one_thread() -> None:
    """A worker's initializer: one thread for torch and the BLAS (a figure is drawn by one core; the pool's
    processes are the parallelism, and spinning thread pools would only fight over the cores)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def start_method() -> str:
    import multiprocessing

    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@dataclass(frozen=True)
class Drawn:
    """What drawing one figure returned and cost, and where."""

    value: Any
    seconds: float
    cpu_seconds: float
    """CPU time of the drawing process (on a busy machine a worker's wall time is mostly waiting for a core)."""
    process: int


def run_job(function: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Drawn:
    """Draw one figure, in a worker or here."""
    start, cpu = time.perf_counter(), time.process_time()
    value = function(*args, **kwargs)
    return Drawn(value, time.perf_counter() - start, time.process_time() - cpu, os.getpid())


def reason(error: BaseException) -> str:
    """One line: the exception, and where in the figure code it was raised when a worker sent its traceback."""
    if isinstance(error, BrokenProcessPool):
        return "its worker process died (killed or out of memory)"
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    cause = error.__cause__
    remote = str(cause) if cause is not None and type(cause).__name__ == "_RemoteTraceback" else ""
    frames = [line.strip() for line in remote.splitlines() if line.strip().startswith('File "')]
    return f"{text} ({frames[-1]})" if frames else text
