"""Batch sizes by measurement, and torch's thread count: the two settings that decide a forward pass's speed.

Why measure: the best batch depends on the machine, not on the method. A ResNet50 channels_last forward on a
2-core EPYC costs 0.022-0.026 s/image at batch 8 and 0.040 at batch 64 (activations fall out of cache), while a
GPU keeps gaining up to hundreds of images per batch. So ``batch_size: auto`` times a few warm batches per
candidate (CPU: 4, 8, 16, 32; CUDA: 8, 16, 32, ... doubling until memory runs out or the per-image time stops
improving by ``MIN_GAIN``), picks the lowest median seconds per image and keeps the winner in a small JSON file
under the artifact cache, keyed by everything that could change the answer (device and CPU model, torch threads,
torch version, model id, input shape, dtype, this module's code). A number in the config is used as is.

Determinism: the batch size never enters an artifact's cache key, and a method's result does not depend on it
beyond float rounding: oneDNN on CPU, and cuDNN/cuBLAS on a GPU, may pick another kernel for another batch, so
results may differ in the last bits across batch sizes. One machine reuses its cached winner, so its runs stay
byte-identical; CI pins explicit sizes in ``configs/smoke.yaml``.

Leaf module: imports torch, :mod:`xai.cache` and :mod:`xai.config` (its error type) only.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import torch

from xai.config import ConfigError

CPU_CANDIDATES = (4, 8, 16, 32)
CUDA_FIRST = 8
CUDA_LIMIT = 1024
MIN_GAIN = 0.05
"""On CUDA, growing stops once doubling the batch improves the per-image time by less than this fraction."""
CUDA_MEMORY_SHARE = 0.5
"""On CUDA a candidate may use at most this share of the device memory: the methods need room beside the batch."""
ROUNDS = 3
"""Timed batches per candidate, interleaved across candidates (after one warm-up each); the median is kept."""

Source = Literal["measured", "cached", "configured"]


@dataclass(frozen=True)
class BatchChoice:
    """The batch size used for one model and input size, and how it was chosen."""

    label: str
    """What it is for, e.g. ``explain:resnet50``."""
    batch_size: int
    source: Source
    per_image_s: float | None = None
    """Median seconds per image at ``batch_size`` (None when the size came from the config)."""
    timings: dict[int, float] = field(default_factory=dict)
    """Candidate batch size -> median seconds per image, as measured."""
    key: str | None = None

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["timings"] = {str(size): seconds for size, seconds in self.timings.items()}
        return record


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value and value >= 0


def valid_record(record: Any) -> bool:
    """Whether a stored winner can be used as is: a positive int size, numeric per-image seconds and timings
    (anything else, e.g. a hand-edited or truncated file, is measured again rather than trusted or crashed on)."""
    if not isinstance(record, dict):
        return False
    size, per_image, timings = record.get("batch_size"), record.get("per_image_s"), record.get("timings", {})
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return False
    if per_image is not None and not _number(per_image):
        return False
    if not isinstance(timings, dict):
        return False
    for key, seconds in timings.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) >= 1 and _number(seconds)):
            return False
    return True


class BatchSizeCache:
    """Measured winners as ``<root>/batch-sizes/<key>.json`` (atomic writes; a corrupt file is measured again)."""

    def __init__(self, root: Path) -> None:
        self.directory = Path(root) / "batch-sizes"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            record = json.loads((self.directory / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        return record if valid_record(record) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        from xai.cache import atomic_write_text

        atomic_write_text(self.directory / f"{key}.json", json.dumps(record, sort_keys=True, indent=1))


@cache
def cpu_model() -> str:
    """The CPU's model string (``/proc/cpuinfo``'s "model name"), or the platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """What identifies the hardware a batch runs on: the GPU's name and memory, or the CPU model and threads."""
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return f"cuda:{properties.name}:{properties.total_memory // 2**20}MiB"
    return f"{device.type}:{cpu_model()}:{torch.get_num_threads()}threads"


def usable_cpus() -> set[int]:
    """The logical CPUs this process may run on (its affinity mask; every CPU where the OS has none)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def physical_cores(cpuinfo: str | None = None) -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads share a core's FPUs, so they do not
    count; a CPU outside ``os.sched_getaffinity(0)`` is not ours to use). ``cpuinfo``: ``/proc/cpuinfo``'s text
    (tests inject one); the file is read when None."""
    allowed = usable_cpus()
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    cores, processor, physical, core = set(), None, "0", None
    for line in [*cpuinfo.splitlines(), ""]:
        name, _, value = line.partition(":")
        name = name.strip()
        if name == "processor":
            processor = int(value) if value.strip().isdigit() else None
        elif name == "physical id":
            physical = value.strip()
        elif name == "core id":
            core = value.strip()
        elif not name:  # a blank line ends one logical CPU's block
            if core is not None and processor in allowed:
                cores.add((physical, core))
            processor, physical, core = None, "0", None
    count = len(cores)
    return max(1, min(len(allowed), count) if count else len(allowed))


def configure_threads() -> int:
    """Intra-op threads: ``OMP_NUM_THREADS`` when set, else at most one per physical core; returns the count.

    Never raises the count above what the process already has: a caller (a test run, a notebook) that lowered it
    on purpose keeps its setting; a default of one thread per hyper-thread is cut to the physical cores.
    """
    configured = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(configured) if configured.isdigit() else min(torch.get_num_threads(), physical_cores())
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def spare_cpus() -> int:
    """CPUs left beside torch's threads, for image-decoding workers (0: decode in the main process)."""
    return max(0, len(usable_cpus()) - torch.get_num_threads())


def cache_key(
    model_id: str,
    device: torch.device,
    input_shape: Sequence[int],
    dtype: torch.dtype,
    candidates: Sequence[int] | None,
) -> str:
    from xai.cache import code_version, make_key

    return make_key(
        "batch-size",
        {
            "model": model_id,
            "device": device_name(device),
            "input": list(input_shape),
            "dtype": str(dtype),
            "torch": torch.__version__,
            "candidates": list(candidates) if candidates else "grow",
            "code": code_version("batching"),
        },
    )


class BatchSizeError(ConfigError):
    """No candidate batch could be measured (memory): the config must name a size. A :class:`ConfigError`, so the
    CLI prints it as one line and exits 2."""


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's allocator (``torch.cuda.OutOfMemoryError``) or a library that reports it as a plain RuntimeError
    (cuBLAS / cuDNN: "CUDA out of memory", "CUBLAS_STATUS_ALLOC_FAILED")."""
    text = str(error)
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower() or "ALLOC_FAILED" in text


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_batches(
    forward: Callable[[torch.Tensor], Any],
    batches: dict[int, torch.Tensor],
    rounds: int,
    timer: Callable[[], float],
    device: torch.device,
) -> dict[int, float]:
    """Median seconds per image per batch size: one warm-up each, then ``rounds`` rounds interleaved."""
    with torch.inference_mode():
        for batch in batches.values():
            forward(batch)
        samples: dict[int, list[float]] = {size: [] for size in batches}
        for _ in range(rounds):
            for size, batch in batches.items():
                _synchronize(device)
                start = timer()
                forward(batch)
                _synchronize(device)
                samples[size].append((timer() - start) / size)
    return {size: statistics.median(values) for size, values in samples.items()}


def measure(
    forward: Callable[[torch.Tensor], Any],
    input_shape: Sequence[int],
    device: torch.device,
    *,
    candidates: Sequence[int] | None = None,
    rounds: int = ROUNDS,
    dtype: torch.dtype = torch.float32,
    timer: Callable[[], float] = time.perf_counter,
) -> dict[int, float]:
    """Seconds per image by batch size: ``candidates`` interleaved, or (None) CUDA's doubling search."""
    generator = torch.Generator().manual_seed(0)

    def make(size: int) -> torch.Tensor:
        return torch.randn(size, *input_shape, generator=generator, dtype=dtype).to(device)

    if candidates:
        return _time_batches(forward, {size: make(size) for size in candidates}, rounds, timer, device)
    timings: dict[int, float] = {}
    size = CUDA_FIRST
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None
    while size <= CUDA_LIMIT:
        out_of_memory = False
        try:
            if total:
                torch.cuda.reset_peak_memory_stats(device)
            seconds = _time_batches(forward, {size: make(size)}, rounds, timer, device)[size]
        except RuntimeError as error:  # torch.cuda.OutOfMemoryError is one; cuBLAS/cuDNN raise plain ones
            if not is_out_of_memory(error):
                raise
            out_of_memory = True
        if out_of_memory:  # outside the except block, so the failed batch's tensors (and the traceback) are freed
            if total:
                torch.cuda.empty_cache()
            break
        if total and torch.cuda.max_memory_allocated(device) > CUDA_MEMORY_SHARE * total:
            break
        best = min(timings.values(), default=None)
        timings[size] = seconds
        if best is not None and seconds > best * (1 - MIN_GAIN):
            break
        size *= 2
    if not timings:
        raise BatchSizeError(
            f"batch size: not even a batch of {CUDA_FIRST} fits in {device}'s memory; set an "
            f"explicit explain.batch_size / dissect.batch_size below {CUDA_FIRST} in the config"
        )
    return timings


def resolve_batch_size(
    forward: Callable[[torch.Tensor], Any] | None,
    *,
    device: torch.device,
    input_shape: Sequence[int],
    configured: int | str,
    model_id: str,
    cache: BatchSizeCache | None = None,
    label: str | None = None,
    candidates: Sequence[int] | None = None,
    rounds: int = ROUNDS,
    dtype: torch.dtype = torch.float32,
    timer: Callable[[], float] = time.perf_counter,
) -> BatchChoice | None:
    """The batch size for ``forward`` on ``device``: ``configured`` when it is a number, else the measured best.

    Args:
        forward: runs one batch, e.g. ``model`` or ``lambda x: model(fast_layout(x))`` (called under
            ``torch.inference_mode()`` with random inputs of ``input_shape``); None looks in the cache only
            and returns None when the winner is not there.
        input_shape: one image's shape, e.g. ``(3, 224, 224)``.
        configured: an int from the config (used as is) or ``"auto"``.
        model_id: what is timed (architecture and layout, not the weights: random and pretrained cost the same).
        cache: where winners are kept; None measures every time.
        candidates: sizes to try; None means 4, 8, 16, 32 on CPU and a doubling search on CUDA.
        timer: the clock (tests inject a fake one).
    """
    label = label or model_id
    if configured != "auto":
        return BatchChoice(label, int(configured), "configured")
    if candidates is None and device.type != "cuda":
        candidates = CPU_CANDIDATES
    key = cache_key(model_id, device, input_shape, dtype, candidates)
    stored = cache.get(key) if cache else None
    if stored is not None:
        timings = {
            int(size): float(seconds)
            for size, seconds in sorted(stored.get("timings", {}).items(), key=lambda item: int(item[0]))
        }
        return BatchChoice(label, stored["batch_size"], "cached", stored.get("per_image_s"), timings, key)
    if forward is None:
        return None
    timings = measure(forward, input_shape, device, candidates=candidates, rounds=rounds, dtype=dtype, timer=timer)
    best = min(timings, key=lambda size: (timings[size], size))
    choice = BatchChoice(label, best, "measured", timings[best], timings, key)
    if cache is not None:
        cache.put(key, choice.to_record())
    return choice


def stage_batch_size(
    context: Any,
    label: str,
    configured: int | str,
    *,
    model_id: str,
    forward: Callable[[], Callable[[torch.Tensor], Any]],
    input_shape: Sequence[int],
    load_only: bool = False,
) -> int | None:
    """:func:`resolve_batch_size` once per run and ``label``, recorded on ``context.batch_sizes`` for the run record.

    ``forward`` is a factory called only when a size must be measured, so a configured or cached size never
    loads the model. ``load_only`` never measures: None when ``auto`` has no cached winner yet.
    """
    chosen = context.batch_sizes
    if label not in chosen:
        made: list[Callable[[torch.Tensor], Any]] = []

        def run(batch: torch.Tensor) -> Any:
            if not made:
                made.append(forward())
            return made[0](batch)

        choice = resolve_batch_size(
            None if load_only else run,
            device=context.device,
            input_shape=input_shape,
            configured=configured,
            model_id=model_id,
            label=label,
            cache=BatchSizeCache(context.cache.root),
        )
        if choice is None:
            return None
        if choice.source == "measured":
            context.log(f"batch size for {label}: {choice.batch_size} ({choice.per_image_s:.4f} s/image)")
        chosen[label] = choice
    return chosen[label].batch_size
