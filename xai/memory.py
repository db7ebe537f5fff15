"""Peak memory of one piece of work (a pipeline stage): the process's resident high-water mark and, on CUDA, the
GPU's peak allocated memory, each reset when the piece starts.

    with PeakMemory(device) as peak:
        run_the_stage()
    record[stage] = peak.record()   # {"rss_mb": ..., "gpu_mb": ...}

The RSS high-water mark is reset through ``/proc/self/clear_refs`` (Linux >= 4.0); elsewhere it is the process's
peak so far. The GPU's is torch's allocator peak (tensors, not the CUDA context or cached free blocks).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType
from typing import Any


def reset_peak_rss() -> None:
    """Reset the process's RSS high-water mark (Linux >= 4.0); a no-op elsewhere."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """The process's RSS high-water mark in MiB (since the last reset where one is possible)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """Context manager measuring the peak memory of its block (see the module docs)."""

    def __init__(self, device: Any = "cpu") -> None:
        import torch

        self.device = torch.device(device)
        self.rss_mb = 0.0
        self.gpu_mb: float | None = None

    def __enter__(self) -> PeakMemory:
        import torch

        reset_peak_rss()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        import torch

        self.rss_mb = peak_rss_mb()
        if self.device.type == "cuda":
            self.gpu_mb = torch.cuda.max_memory_allocated(self.device) / 2**20

    def record(self) -> dict[str, float | None]:
        """``{"rss_mb": ..., "gpu_mb": ...}`` (``gpu_mb`` None off CUDA), for a run record."""
        return {"rss_mb": round(self.rss_mb, 1), "gpu_mb": None if self.gpu_mb is None else round(self.gpu_mb, 1)}
