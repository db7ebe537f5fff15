"""Matplotlib figure makers. Each reads artifacts and writes one file atomically; none computes results."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

DPI = 100


def save_figure(figure: Figure, path: Path) -> Path:
    """Save ``figure`` to ``path`` (format from the suffix) with one atomic write, then close it.

    The figure is drawn into memory first, so a failed draw leaves no file and a full disk is the one-line
    :class:`xai.cache.StorageError` of :func:`xai.cache.atomic_write_bytes`, not a traceback."""
    import matplotlib.pyplot as plt

    from xai.cache import atomic_write_bytes

    buffer = io.BytesIO()
    try:
        figure.savefig(
            buffer,
            format=path.suffix.removeprefix(".") or None,
            dpi=DPI,
            bbox_inches="tight",
            metadata={"Software": None},
        )
    finally:
        plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path
