"""The comparison figures are written as PNG files from the artifacts (and refuse a skipped sanity check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import compare_artifacts as fixed
from xai.compare import SanityResult, summarise
from xai.report.figures import compare as figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


def test_every_figure_is_written(tmp_path: Path) -> None:
    comparisons, cross = fixed.image_comparisons(4)
    faithful = [
        fixed.faithfulness_result(
            f"img{i}",
            {
                "lime": (0.3, 0.7),
                "Good": (0.2, 0.8),
                "random:0": (0.5, 0.5),
                "random:1": (0.4, 0.5),
                "centre": (0.45, 0.55),
            },
        )
        for i in range(4)
    ]
    sanity = fixed.sanity_result()
    summary = summarise(comparisons, faithful, sanity, k=5, cross_image=cross)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    cams = {"Good": rng.random((16, 16)), "Noise": rng.random((16, 16))}
    written = {
        "sweep.png": figures.iou_threshold_figure(summary, tmp_path / "sweep.png"),
        "sweep_img0.png": figures.image_iou_threshold_figure(comparisons[0], tmp_path / "sweep_img0.png", k=5),
        "scatter.png": figures.complexity_scatter_figure(summary, tmp_path / "scatter.png"),
        "curves.png": figures.faithfulness_curves_figure(faithful[0], tmp_path / "curves.png"),
        "mean_curves.png": figures.mean_faithfulness_curves_figure(faithful, tmp_path / "mean_curves.png"),
        "sanity.png": figures.sanity_figure(sanity, tmp_path / "sanity.png"),
        "panel.png": figures.comparison_panel_figure(
            image, fixed.segment_grid(), rng.normal(size=16), cams, tmp_path / "panel.png", k=5, image_id="img0"
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


def test_panel_titles_use_the_artifacts_iou_not_a_recomputation(tmp_path: Path, monkeypatch) -> None:
    """The panel's titles print the agreement table's IoU (mean over every LIME seed); the renderer computes
    none (MapOrder, which computes an IoU, must not be called while rendering)."""
    import xai.compare.nulls as nulls
    from xai.report.pages_compare import panel_ious

    comparisons, cross = fixed.image_comparisons(4)
    summary = summarise(comparisons, [], None, k=5, cross_image=cross)
    ious = panel_ious(summary, "img0")
    table = summary.agreement
    expected = table[(table["image"] == "img0") & (table["k"] == 5)].set_index("method")["iou"]
    assert ious == {method: pytest.approx(float(value)) for method, value in expected.items()}

    def forbidden(*args, **kwargs):
        raise AssertionError("the renderer computed an IoU")

    monkeypatch.setattr(nulls.MapOrder, "expected_overlap", forbidden)
    titles = []
    original = figures.Figure.subplots

    def capture(self, *args, **kwargs):
        panels = original(self, *args, **kwargs)
        titles.append(panels)
        return panels

    monkeypatch.setattr(figures.Figure, "subplots", capture)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    cams = {"Good": rng.random((16, 16)), "Noise": rng.random((16, 16))}
    figures.comparison_panel_figure(
        image,
        fixed.segment_grid(),
        rng.normal(size=16),
        cams,
        tmp_path / "panel.png",
        k=5,
        image_id="img0",
        ious={"Good": 0.4321},
    )
    shown = [axes.get_title() for axes in np.atleast_1d(titles[0])[1:]]
    assert shown == ["Good: IoU 0.43", "Noise: IoU n/a"]
