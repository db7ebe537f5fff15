"""The explanation gallery (images x methods): each panel shows what its column says with the colour scale the
legend names, the page context has one row per image and one cell per method, and the rendered Markdown is a table
whose panels are lazy images of one lightbox gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.run_record import RUN
from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, Prediction
from xai.explain.explained import ExplainArtifacts, ExplainedImage
from xai.report.figures.explain import grid_legend, grid_panel
from xai.report.gallery import LEGEND, build_gallery
from xai.report.page import make_environment

SIZE = 32


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def _left_half(high: float, low: float) -> np.ndarray:
    values = np.full((SIZE, SIZE), low)
    values[:, : SIZE // 2] = high
    return values


def _cam(method: str, values: np.ndarray) -> CamMap:
    return CamMap(method, values.astype(np.float32), target_class=1, seconds=0.1, forward_passes=1)


def _lime(left: float, right: float) -> LimeResult:
    """Two superpixels (left and right half) with the given weights."""
    segments = (np.arange(SIZE)[None, :] >= SIZE // 2).astype(np.int32).repeat(SIZE, axis=0)
    empty = np.zeros((1, SIZE, SIZE), bool)
    return LimeResult(1, segments, np.array([left, right]), np.array([0, 1], np.int32), 0.0, 0.5, 0.5, 0.5,
                      np.array([1]), np.array([0.5], np.float32), (1,), empty, 0, 10, 0.1, 10)  # fmt: skip


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=float)


def _colour(pixels: np.ndarray, half: str) -> np.ndarray:
    """Mean colour of the inner part of one half (JPEG blurs the border between the halves)."""
    side = pixels[4:-4, 2 : SIZE // 2 - 4] if half == "left" else pixels[4:-4, SIZE // 2 + 4 : -2]
    return side.reshape(-1, 3).mean(axis=0)


def test_image_panel_is_the_image(tmp_path: Path) -> None:
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[:, : SIZE // 2] = (200, 40, 40)
    pixels = _read(grid_panel(image, tmp_path / "image.jpg"))
    assert pixels.shape == (SIZE, SIZE, 3)
    assert np.abs(_colour(pixels, "left") - (200, 40, 40)).max() < 8 and _colour(pixels, "right").max() < 8


def test_cam_panel_is_viridis_over_the_faded_image(tmp_path: Path) -> None:
    grey = np.full((SIZE, SIZE, 3), 128, np.uint8)
    pixels = _read(grid_panel(grey, tmp_path / "cam.jpg", cam=_cam("gradcam", _left_half(1.0, 0.0))))
    # 0.4 x grey (0.502) + 0.6 x viridis: yellow (0.993, 0.906, 0.144) where relevant, purple (0.267, 0.005, 0.329)
    expected_left = 255 * (0.4 * 128 / 255 + 0.6 * np.array([0.993, 0.906, 0.144]))
    expected_right = 255 * (0.4 * 128 / 255 + 0.6 * np.array([0.267, 0.005, 0.329]))
    assert np.abs(_colour(pixels, "left") - expected_left).max() < 8
    assert np.abs(_colour(pixels, "right") - expected_right).max() < 8


def test_lime_panel_is_purple_for_support_and_orange_against(tmp_path: Path) -> None:
    grey = np.full((SIZE, SIZE, 3), 128, np.uint8)
    # weights +0.02 and -0.04: scaled by the largest |weight| to +0.5 and -1 on PuOr
    pixels = _read(grid_panel(grey, tmp_path / "lime.jpg", lime=_lime(0.02, -0.04)))
    left, right = _colour(pixels, "left"), _colour(pixels, "right")
    assert left[2] > left[1] and left[0] > left[1]  # purple: red and blue over green
    assert right[0] > right[1] > right[2]  # orange-brown: red over green over blue
    expected_right = 255 * (0.15 * 128 / 255 + 0.85 * np.array([0.498, 0.231, 0.031]))  # PuOr(0)
    assert np.abs(right - expected_right).max() < 8


def test_a_panel_shows_one_map(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one map"):
        grid_panel(_image(0), tmp_path / "x.jpg", cam=_cam("gradcam", _left_half(1, 0)), lime=_lime(1, -1))


def test_legend_has_a_bar_per_scale(tmp_path: Path) -> None:
    both, cams = grid_legend(tmp_path / "both.png"), grid_legend(tmp_path / "cams.png", lime=False)
    with Image.open(both) as wide, Image.open(cams) as narrow:
        assert wide.width > 1.6 * narrow.width and wide.height == pytest.approx(narrow.height, abs=4)


def _artifacts(lime_on_second: bool = True) -> ExplainArtifacts:
    images = []
    for index in range(2):
        lime = _lime(0.1, -0.1) if index == 0 or lime_on_second else None
        cams = (_cam("gradcam", _left_half(1, 0)), _cam("scorecam", _left_half(0, 1)))
        prediction = Prediction(np.array([index]), np.array([0.9], np.float32))
        images.append(ExplainedImage(f"img{index}", _image(index), ImageExplanation(prediction, lime, None, cams)))
    return ExplainArtifacts("resnet50", ["tench", "goldfish"], "layer4[-1]", ("lime", "gradcam", "scorecam"), images)


def test_gallery_context_has_a_row_per_image_and_a_cell_per_method(tmp_path: Path) -> None:
    links = {"img0": "image-img0.md", "img1": "image-img1.md"}
    gallery, written = build_gallery(_artifacts(lime_on_second=False), tmp_path, links)
    assert gallery is not None
    assert gallery["columns"] == ["Image → predicted class", "Input", "LIME", "Grad-CAM", "Score-CAM"]
    assert [(row["name"], row["label"], row["page"]) for row in gallery["rows"]] == [
        ("img0", "tench", "image-img0.md"),
        ("img1", "goldfish", "image-img1.md"),
    ]
    first, second = (row["panels"] for row in gallery["rows"])
    assert [p["file"] for p in first] == [f"grid-img0-{m}.jpg" for m in ("image", "lime", "gradcam", "scorecam")]
    assert second[1] is None  # no LIME on that image: an empty cell, the columns stay aligned
    assert sorted(written) == sorted([p["file"] for p in first + second if p] + [LEGEND])
    assert all((tmp_path / name).is_file() for name in written)
    # each panel shows its own method: Grad-CAM is relevant on the left, Score-CAM on the right
    gradcam, scorecam = _read(tmp_path / "grid-img0-gradcam.jpg"), _read(tmp_path / "grid-img0-scorecam.jpg")
    assert _colour(gradcam, "left")[1] > _colour(gradcam, "right")[1] + 60
    assert _colour(scorecam, "right")[1] > _colour(scorecam, "left")[1] + 60


def test_no_images_no_gallery(tmp_path: Path) -> None:
    empty = ExplainArtifacts("resnet50", ["tench"], "layer4[-1]", ("lime", "gradcam"), [])
    assert build_gallery(empty, tmp_path, {}) == (None, [])


def test_gallery_macro_renders_a_table_of_lightbox_panels(tmp_path: Path) -> None:
    gallery, _ = build_gallery(_artifacts(), tmp_path, {"img0": "image-img0.md", "img1": "image-img1.md"})
    template = make_environment().from_string('{% import "_macros.md.j2" as m %}{{ m.gallery(g, "../assets/x") }}')
    text = template.render(g=gallery, run=RUN)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| Image → predicted class"))
    assert header.count("|") == 6 and lines[lines.index(header) + 1].startswith("| --- |")
    assert lines[lines.index(header) - 1] == ""  # a table starts its own Markdown block
    rows = [line for line in lines if line.startswith("| [img")]
    assert len(rows) == 2 and rows[0].startswith("| [img0](image-img0.md)<br>→ tench |")
    assert rows[0].count('{ loading=lazy data-gallery="explanations"') == 4
    assert "![img0: Grad-CAM for (tench)](../assets/x/grid-img0-gradcam.jpg)" not in text  # quotes, not brackets
    assert "![img0: Grad-CAM for &#39;tench&#39;](../assets/x/grid-img0-gradcam.jpg)" in text
    assert '<div class="xai-gallery" markdown>' in text and "grid-legend.png" in text
