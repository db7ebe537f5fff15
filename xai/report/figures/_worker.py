"""Imported once by the figure pool's forkserver (:data:`xai.report.figures.jobs.PRELOAD`): the figure modules,
and one small figure drawn in memory the way :func:`xai.report.figures.save_figure` saves, so every worker forked
from the server starts with matplotlib's fonts, text layout and colormap caches loaded instead of loading them
for its first figure. Caches only: what a figure draws is unchanged (tested byte for byte against drawing here).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from xai.report.figures import DPI, compare, dissect, explain  # noqa: F401 (loaded for the workers)


def _warm() -> None:
    figure = Figure(figsize=(2, 2), layout="constrained")
    axes = figure.subplots()
    shown = axes.imshow(np.linspace(0, 1, 16).reshape(4, 4), cmap="viridis")
    axes.plot([0, 1], [0, 1], label="line ± ρ")
    axes.set_title("warm-up", fontsize=9)
    axes.legend(fontsize=7)
    figure.colorbar(shown, ax=axes).set_label("value")
    figure.savefig(io.BytesIO(), format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})


_warm()
