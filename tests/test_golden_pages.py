"""The real dissection and comparison pages, rendered from fixed, small artifacts (tests/helpers/report_artifacts.py),
equal their golden files in tests/golden/ (``XAI_UPDATE_GOLDEN=1`` rewrites them: tests/helpers/golden.py), and
say what the planted artifacts hold."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import report_artifacts
from tests.helpers.golden import check_golden
from tests.helpers.run_record import RUN, run_plan
from xai.report import pages_compare, pages_dissect
from xai.report.render import render_report

RUN_ALL = {
    **RUN,
    "stages": ["dissect", "explain", "compare"],
    "weights_ids": {
        "resnet50": "random(seed=0)",
        "resnet18_imagenet": "random(seed=0)",
        "resnet18_places365": "random(seed=0)",
    },
}


def test_dissection_page_matches_golden(tmp_path: Path) -> None:
    artifacts = {"dissect": report_artifacts.dissect_artifacts(tmp_path / "probe")}
    written = render_report(RUN_ALL, artifacts, tmp_path / "docs", run_plan(RUN_ALL), [pages_dissect])
    text = (tmp_path / "docs" / "dissection" / "index.md").read_text()
    check_golden("dissection__index.md", text)
    assert "Not computed in this build" not in text
    assert "&#39;dog&#39; (3 of 6" in text and "&#39;kitchen&#39; (3 of 6" in text  # each model's planted majority
    assert "striped" in text  # the label both models share
    assert {"dissection/resnet18_imagenet-layer4.md", "dissection/resnet18_places365-fc.md"} <= set(written)


def test_comparison_page_matches_golden(tmp_path: Path) -> None:
    written = render_report(
        RUN_ALL, report_artifacts.compare_artifacts(), tmp_path / "docs", run_plan(RUN_ALL), [pages_compare]
    )
    text = (tmp_path / "docs" / "comparison" / "index.md").read_text()
    check_golden("comparison__index.md", text)
    assert "Not computed in this build" not in text
    assert "GradCAM" in text and "ScoreCAM" in text and "`layer4[-1]`" in text
    assert any(name.startswith("assets/comparison/") and name.endswith(".png") for name in written)
