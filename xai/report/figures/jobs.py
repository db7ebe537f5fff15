"""Draw a report's figures once: skip those whose inputs did not change, draw the rest in worker processes.

Page builders request a figure with :func:`draw` instead of calling its function. Inside :func:`figure_queue`
(which :func:`xai.report.render.render_report` opens) a request

1. keys the figure (:func:`xai.report.figures.digest.figure_key`: its inputs, its code, the library versions);
2. is *cached* when the manifest ``<docs>/.figures.json`` records that key for the same output files and they
   are all there with their recorded sizes: nothing is drawn, and the function's return value (a figure's alt
   text) comes from the manifest;
3. is otherwise drawn: with one worker, at once in this process (what rendering always did); with more, once
   the builders are done, by a process pool and this process together when at least :data:`MIN_PARALLEL` figures
   need drawing (else by this process alone). The pool starts in the background as soon as that many are
   requested, so its start-up overlaps the builders' work. Both take the longest figures first (by the
   manifest's last drawing times) until the workers are up; then this process takes the shortest.

The pool's workers come from a ``forkserver`` (``spawn`` where there is none) that preloaded the figure
modules: matplotlib's Agg backend is process-safe, not thread-safe, and a worker forked from this process would
inherit torch's threads. Every figure function writes its files itself, atomically, so a worker's output is byte
for byte what the same call writes here (tested). A figure whose function raised, or whose worker died
(out of memory, killed), is retried alone in a fresh worker (one that kills this process, when this process
draws it, ends the render as it always did); if it fails again the render ends with
:class:`FigureError` naming every such figure, after the manifest records the figures that were drawn (a rerun
draws only the missing ones). Requests return a :class:`Pending` value that :func:`resolve` replaces in the page
contexts once everything is drawn.

Outside a queue (a builder or a figure function called directly, as the tests do) :func:`draw` just calls the
function.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import pickle
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai.report.figures.digest import InputDigest, UndigestibleInput, figure_key
from xai.report.figures.manifest import decode_result, read_manifest, relative_to_docs, still_there, write_manifest
from xai.report.figures.workers import PRELOAD, Drawn, available_cpus, one_thread, reason, run_job, start_method

MIN_POOL_CPUS = 3
"""CPUs from which the default is a pool. On the 2-core machine the pool was slower than drawing here in every
run (1.3x to 1.7x, ``bench_pipeline.py --case render``): its start (one import of torch and the figure code,
~2.8 CPU s) and a second process sharing two busy cores cost more than the second drawer gains."""
MIN_PARALLEL = 8
"""Figures to draw from which a worker pool pays for its start (about one import of the figure modules, which
overlaps the builders' own work and this process's drawing); fewer are drawn in this process."""

_ACTIVE: contextvars.ContextVar[FigureQueue | None] = contextvars.ContextVar("figure_queue", default=None)


class FigureError(RuntimeError):
    """Figures that could not be drawn, each with its reason; those drawn are kept and recorded."""


class Pending:
    """A figure function's return value, known once the figure is drawn or read from the manifest."""

    __slots__ = ("_value", "label")
    _UNSET = object()

    def __init__(self, label: str) -> None:
        self.label = label
        self._value: Any = Pending._UNSET

    def set(self, value: Any) -> None:
        self._value = value

    @property
    def ready(self) -> bool:
        return self._value is not Pending._UNSET

    def value(self) -> Any:
        if not self.ready:
            raise RuntimeError(f"figure {self.label} was requested but not drawn (is the figure queue still open?)")
        return self._value

    def __repr__(self) -> str:
        return f"Pending({self.label})"


@dataclass
class FigureJob:
    function: Callable[..., Any]
    args: tuple
    kwargs: dict[str, Any]
    outputs: tuple[str, ...]
    """Files the function writes, relative to the docs folder; the first names the job."""
    key: str | None
    pending: Pending
    seconds: float = 0.0


@dataclass
class QueueStats:
    requested: int = 0
    cached: int = 0
    drawn: int = 0
    drawn_files: list[str] = field(default_factory=list)
    """The first output of every figure drawn (not found in the manifest), in the order they were done."""
    uncacheable: int = 0
    """Figures whose inputs could not be digested (drawn every run)."""
    workers: int = 1
    pooled: bool = False
    """Whether a worker pool drew some of them (else this process drew them all)."""
    pool_error: str = ""
    """Why the pool could not start, if it could not (this process then drew every figure)."""
    draw_seconds: float = 0.0
    """Sum of the drawing time of every figure drawn, in whichever process drew it."""
    cpu_by_process: dict[int, float] = field(default_factory=dict)
    """CPU seconds of drawing, per drawing process."""
    failed: list[tuple[str, str]] = field(default_factory=list)


class FigureQueue:
    """The figures of one render: keyed, looked up in the manifest, drawn in this process or a pool."""

    def __init__(self, docs_dir: Path, *, workers: int | None = None, cache: bool = True, share: bool = True) -> None:
        """``workers``: drawing processes (None: every CPU this process may use, or 1 with fewer than
        :data:`MIN_POOL_CPUS`; 1: draw here, serially).
        ``cache``: False draws every figure (the manifest is still written for the next run).
        ``share``: this process draws beside the pool (False: only the pool's ``workers`` draw, so a figure that
        kills its process never kills this one)."""
        self.docs_dir = Path(docs_dir)
        if workers is None:
            workers = available_cpus() if available_cpus() >= MIN_POOL_CPUS else 1
        self.workers = max(1, workers)
        self.cache = cache
        self.stats = QueueStats(workers=self.workers)
        self._digest = InputDigest(self.docs_dir)
        self._recorded = read_manifest(self.docs_dir) if cache else {}
        self._jobs: dict[str, FigureJob] = {}
        self._outputs: set[str] = set()
        self._to_draw: list[FigureJob] = []
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None
        self.share = share
        self._pool_workers = max(1, self.workers - 1) if share else self.workers
        """When this process draws too, the pool has one worker fewer than there are drawers."""

    # ---- requests -------------------------------------------------------------------------------------------
    def request(self, function: Callable[..., Any], args: tuple, kwargs: dict, outputs: Sequence[Path]) -> Pending:
        relative = tuple(relative_to_docs(self.docs_dir, path) for path in outputs)
        if not relative:
            raise ValueError(f"{function.__qualname__}: a figure request names no output file")
        for name in relative:
            if name in self._outputs:
                raise ValueError(f"two figures write {name}; give each figure its own file")
        self._outputs.update(relative)
        try:
            key: str | None = figure_key(self._digest, function, args, kwargs)
        except UndigestibleInput:
            key = None
            self.stats.uncacheable += 1
        job = FigureJob(function, args, kwargs, relative, key, Pending(relative[0]))
        self._jobs[relative[0]] = job
        self.stats.requested += 1
        recorded = self._recorded.get(relative[0], {})
        job.seconds = float(recorded.get("seconds", math.inf))  # the last draw's time, to start long ones first
        if self.cache and key is not None and still_there(self.docs_dir, recorded, key, relative):
            job.pending.set(decode_result(self.docs_dir, recorded.get("result")))
            self.stats.cached += 1
        elif self.workers == 1:
            self._draw_here(job)
        else:
            self._to_draw.append(job)
            if len(self._to_draw) == MIN_PARALLEL:  # worth a pool: start it while the builders go on
                self._starting = threading.Thread(target=self._start_pool, daemon=True)
                self._starting.start()
        return job.pending

    # ---- drawing --------------------------------------------------------------------------------------------
    def _draw_here(self, job: FigureJob) -> None:
        try:
            drawn = run_job(job.function, job.args, job.kwargs)
        except Exception as error:
            self.stats.failed.append((job.outputs[0], reason(error)))
            return
        self._done(job, drawn)

    def _done(self, job: FigureJob, drawn: Drawn) -> None:
        job.pending.set(drawn.value)
        job.seconds = drawn.seconds
        self.stats.drawn += 1
        self.stats.drawn_files.append(job.outputs[0])
        self.stats.draw_seconds += drawn.seconds
        cpu = self.stats.cpu_by_process
        cpu[drawn.process] = cpu.get(drawn.process, 0.0) + drawn.cpu_seconds

    def _start_pool(self) -> None:
        """Create the pool and fork its workers (the forkserver's first start imports the figure modules)."""
        import multiprocessing

        method = start_method()
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload(list(PRELOAD))
        try:
            pool = ProcessPoolExecutor(max_workers=self._pool_workers, mp_context=context, initializer=one_thread)
            for future in [pool.submit(int) for _ in range(self._pool_workers)]:
                future.result()
        except Exception as error:  # this process then draws every figure itself
            self.stats.pool_error = reason(error)
            return
        self._pool = pool

    def finish(self) -> QueueStats:
        """Draw what is left, retry failures alone, write the manifest; raise :class:`FigureError` if any figure is
        still missing. With a pool, this process draws too (:meth:`_share`)."""
        jobs = deque(sorted(self._to_draw, key=lambda job: -job.seconds))  # longest first: the drawers end together
        self._to_draw = []
        retry: list[FigureJob] = []
        try:
            if self._starting is None:  # too few figures to pay for a pool
                while jobs:
                    self._draw_here(jobs.popleft())
            else:
                self._share(jobs, retry)
        finally:
            self._shutdown()
        for job in retry:
            self._retry_alone(job)
        write_manifest(
            self.docs_dir,
            [
                (name, job.key, job.outputs, job.pending.value(), job.seconds)
                for name, job in self._jobs.items()
                if job.key is not None and job.pending.ready
            ],
        )
        if self.stats.failed:
            lines = "\n".join(f"  {name}: {reason}" for name, reason in sorted(self.stats.failed))
            raise FigureError(f"{len(self.stats.failed)} figure(s) could not be drawn:\n{lines}")
        return self.stats

    def _share(self, jobs: deque[FigureJob], retry: list[FigureJob]) -> None:
        """The pool takes the longest figures from the front of ``jobs`` (at most two per worker queued); this
        process draws one at a time from the start: the longest while the workers start, then the shortest from
        the back. A figure a worker could not draw goes to ``retry``."""
        in_flight: dict[Future, FigureJob] = {}

        def collect(block: bool) -> None:
            done, _ = wait(in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for future in done:
                job = in_flight.pop(future)
                try:
                    self._done(job, future.result())
                except Exception:
                    retry.append(job)  # it raised, or a worker died and took it along: retried alone

        while jobs or in_flight:
            pool = self._pool
            while pool is not None and jobs and len(in_flight) < 2 * self._pool_workers:
                try:
                    future = pool.submit(run_job, jobs[0].function, jobs[0].args, jobs[0].kwargs)
                except BrokenProcessPool:  # a worker died: what is left is retried alone, each in a fresh worker
                    retry.extend(jobs)
                    jobs.clear()
                    break
                in_flight[future] = jobs.popleft()
                self.stats.pooled = True
            if in_flight:
                collect(block=False)
            if jobs and (self.share or (pool is None and not self._starting.is_alive())):
                # While the workers start, the longest figures (they would end last); then the shortest.
                self._draw_here(jobs.popleft() if pool is None else jobs.pop())
            elif in_flight:
                collect(block=True)
            elif jobs:  # not sharing: wait for the pool to start
                self._starting.join(timeout=0.05)

    def _retry_alone(self, job: FigureJob) -> None:
        """One job in its own fresh worker: a figure that failed only because another killed the pool is drawn;
        one that fails alone is reported with its own reason."""
        import multiprocessing

        context = multiprocessing.get_context(start_method())
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=one_thread) as pool:
            try:
                drawn = pool.submit(run_job, job.function, job.args, job.kwargs).result()
            except (pickle.PicklingError, AttributeError, TypeError) as error:
                if "pickle" not in str(error):
                    self.stats.failed.append((job.outputs[0], reason(error)))
                    return
                self._draw_here(job)  # an argument no worker can receive (a lambda): draw it here instead
                return
            except Exception as error:
                self.stats.failed.append((job.outputs[0], reason(error)))
                return
        self._done(job, drawn)

    def _shutdown(self) -> None:
        if self._starting is not None:
            self._starting.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def draw(function: Callable[..., Any], *args: Any, outputs: Sequence[Path] | None = None, **kwargs: Any) -> Any:
    """Request ``function(*args, **kwargs)``, which writes ``outputs`` (default: its ``path`` keyword).

    Inside :func:`figure_queue`: a :class:`Pending` of its return value (cached or drawn); outside: the value."""
    queue = _ACTIVE.get()
    if queue is None:
        return function(*args, **kwargs)
    if outputs is None:
        if "path" not in kwargs:
            raise TypeError(f"{function.__qualname__}: pass the output file as path= or name the outputs")
        outputs = (kwargs["path"],)
    return queue.request(function, args, kwargs, outputs)


@contextmanager
def figure_queue(
    docs_dir: Path, *, workers: int | None = None, cache: bool = True, share: bool = True
) -> Iterator[FigureQueue]:
    """Collect the figures requested inside the block; on exit wait for them (:meth:`FigureQueue.finish`)."""
    queue = FigureQueue(docs_dir, workers=workers, cache=cache, share=share)
    token = _ACTIVE.set(queue)
    try:
        yield queue
    except BaseException:
        queue._shutdown()
        raise
    finally:
        _ACTIVE.reset(token)
    queue.finish()


def resolve(value: Any) -> Any:
    """``value`` with every :class:`Pending` inside dicts, lists, tuples and dataclasses (a page's figure references)
    replaced by its value; a dataclass holding none is returned as it is."""
    if isinstance(value, Pending):
        return value.value()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for found in dataclasses.fields(value):
            if found.init:
                item = getattr(value, found.name)
                resolved = resolve(item)
                if resolved is not item:
                    changed[found.name] = resolved
        return dataclasses.replace(value, **changed) if changed else value
    if isinstance(value, dict):
        items = {key: resolve(item) for key, item in value.items()}
        return items if any(items[key] is not item for key, item in value.items()) else value
    if isinstance(value, list | tuple):
        items = [resolve(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value
