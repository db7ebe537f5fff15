"""Matplotlib figure makers. Each reads artifacts and writes one file atomically; none computes results."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

DPI = 100


def save_figure(figure: Figure, path: Path) -> Path:
    """Save ``figure`` to ``path`` through a temp file and an atomic rename, then close it."""
    import matplotlib.pyplot as plt

    from xai.cache import storage_error

    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
        os.close(handle)
        figure.savefig(temp, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        os.replace(temp, path)
    except OSError as error:  # disk full, read-only: one line naming the file, not a traceback
        raise storage_error(path, error) from None
    finally:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        plt.close(figure)
    return path
