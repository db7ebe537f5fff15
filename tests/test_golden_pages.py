"""The real pages, rendered from fixed, small artifacts (tests/helpers/report_artifacts.py), equal their golden files
in tests/golden/ (``XAI_UPDATE_GOLDEN=1`` rewrites them: tests/helpers/golden.py) and say what the planted artifacts
hold. The explanations overview and an image page with its Concepts tab are golden in tests/test_concepts_pages.py,
the catalogue in tests/test_render.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import report_artifacts
from tests.helpers.golden import check_golden
from tests.helpers.run_record import RUN, run_plan
from xai.report import pages_compare, pages_dissect
from xai.report.render import render_report

RUN_ALL = {
    **RUN,
    "stages": ["dissect", "explain", "compare", "concepts"],
    "weights_ids": {
        "planted": "random(seed=0)",
        "resnet18_imagenet": "random(seed=0)",
        "resnet18_places365": "random(seed=0)",
    },
}


@pytest.fixture(scope="module")
def all_stages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Every page of a report with every stage, rendered once: (docs folder, files written)."""
    folder = tmp_path_factory.mktemp("all")
    artifacts = report_artifacts.all_stages(folder / "probe")
    return folder / "docs", render_report(RUN_ALL, artifacts, folder / "docs", run_plan(RUN_ALL))


def test_dissection_page_matches_golden(tmp_path: Path) -> None:
    artifacts = {"dissect": report_artifacts.dissect_artifacts(tmp_path / "probe")}
    written = render_report(RUN_ALL, artifacts, tmp_path / "docs", run_plan(RUN_ALL), [pages_dissect])
    text = (tmp_path / "docs" / "dissection" / "index.md").read_text()
    check_golden("dissection__index.md", text)
    assert "Not computed in this build" not in text
    assert "&#39;dog&#39; (3 of 6)" in text and "&#39;kitchen&#39; (3 of 6)" in text  # each model's planted majority
    assert "striped" in text  # the label both models share
    assert {"dissection/resnet18_imagenet-layer4.md", "dissection/resnet18_places365-fc.md"} <= set(written)


def test_comparison_page_matches_golden(tmp_path: Path) -> None:
    """Eight images: the primary family can claim, and Grad-CAM (which follows LIME) is claimed beyond every null."""
    artifacts = report_artifacts.compare_artifacts(8)
    written = render_report(RUN_ALL, artifacts, tmp_path / "docs", run_plan(RUN_ALL), [pages_compare])
    text = (tmp_path / "docs" / "comparison" / "index.md").read_text()
    check_golden("comparison__index.md", text)
    assert "Not computed in this build" not in text
    assert "Grad-CAM" in text and "Score-CAM" in text and "`layer4[-1]`" in text
    answers = text.split("## The claims behind the answers")[0]
    assert "Grad-CAM: IoU" in answers and "beyond all three nulls" in answers
    assert "Score-CAM: IoU" in answers and "not shown beyond any null" in answers
    assert {"assets/comparison/forest.png", "assets/comparison/differences.png"} <= set(written)


def test_home_page_with_every_stage_matches_golden(all_stages: tuple[Path, list[str]]) -> None:
    docs, _ = all_stages
    text = (docs / "index.md").read_text()
    check_golden("index__all_stages.md", text)
    assert "Not computed in this build" not in text
    answers = text.split("## Run metadata")[0]
    for section in ("Task 1", "Tasks 2–3", "Task 4"):
        assert f"## [{section}" in answers
    # each task's answers link to their evidence and show one figure
    assert "[Evidence](comparison/index.md#claims)" in answers and "(assets/comparison/forest.png)" in answers
    assert "[Evidence](dissection/index.md#categories)" in answers and "(assets/dissection/categories.png)" in answers
    assert "cannot be ranked on 2 images" in answers  # two images: an answer in its own right


def test_methods_page_with_every_stage_matches_golden(all_stages: tuple[Path, list[str]]) -> None:
    docs, _ = all_stages
    text = (docs / "methods.md").read_text()
    check_golden("methods__all_stages.md", text)
    assert "8x8 in this run" in text and "planted-probe (400 images)" in text


def test_comparison_of_two_images_matches_golden(all_stages: tuple[Path, list[str]]) -> None:
    """Two images: nothing can be claimed, and the page says so instead of ranking, one line each."""
    docs, _ = all_stages
    text = (docs / "comparison" / "index.md").read_text()
    check_golden("comparison__two_images.md", text)
    answers = text.split("## The claims behind the answers")[0]
    assert "no claim possible on 2 images" in answers
    assert "Complexity (edge density) vs agreement cannot be tested on 2 images" in answers
