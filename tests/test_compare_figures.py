"""The comparison figures are written as PNG files from the artifacts (and refuse a skipped sanity check)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_compare_summary import _comparisons, _faithfulness, _sanity, _segments

from xai.compare import SanityResult, summarise
from xai.report.figures import compare as figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


def test_every_figure_is_written(tmp_path: Path) -> None:
    comparisons, cross = _comparisons(4)
    faithful = [
        _faithfulness(f"img{i}", {"lime": (0.3, 0.7), "Good": (0.2, 0.8), "random:0": (0.5, 0.5),
                                  "random:1": (0.4, 0.5), "centre": (0.45, 0.55)})
        for i in range(4)
    ]
    sanity = _sanity()
    summary = summarise(comparisons, faithful, sanity, k=5, cross_image=cross)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    cams = {"Good": rng.random((16, 16)), "Noise": rng.random((16, 16))}
    written = {
        "sweep.png": figures.iou_threshold_figure(summary, tmp_path / "sweep.png"),
        "sweep_img0.png": figures.image_iou_threshold_figure(
            comparisons[0], tmp_path / "sweep_img0.png", k=5
        ),
        "scatter.png": figures.complexity_scatter_figure(summary, tmp_path / "scatter.png"),
        "curves.png": figures.faithfulness_curves_figure(faithful[0], tmp_path / "curves.png"),
        "mean_curves.png": figures.mean_faithfulness_curves_figure(faithful, tmp_path / "mean_curves.png"),
        "sanity.png": figures.sanity_figure(sanity, tmp_path / "sanity.png"),
        "panel.png": figures.comparison_panel_figure(
            image, _segments(), rng.normal(size=16), cams, tmp_path / "panel.png", k=5, image_id="img0"
        ),
    }
    for name, alt in written.items():
        assert _is_png(tmp_path / name), name
        assert isinstance(alt, str) and len(alt) > 20
    assert "ρ = " in written["scatter.png"]
    assert not list(tmp_path.glob(".*"))  # no temp files left behind
    assert "control" in written["sanity.png"]
    with pytest.raises(ValueError, match="random weights"):
        figures.sanity_figure(SanityResult.skipped(), tmp_path / "never.png")
    assert not (tmp_path / "never.png").exists()
