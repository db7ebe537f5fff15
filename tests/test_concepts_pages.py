"""The Concepts tab, the Tasks 2-3 section and the methods section, rendered by the real builders from fixed artifacts
(:mod:`tests.helpers.concept_artifacts`: the planted network, whose class-2 logit is carried by the units labelled
concept A and B), equal their golden files in tests/golden/ (``XAI_UPDATE_GOLDEN=1`` rewrites them) and say what
the planted artifacts hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import concept_artifacts
from tests.helpers import concepts_planted as planted
from tests.helpers.golden import check_golden
from tests.helpers.run_record import RUN, run_plan
from xai.report import pages_explain, pages_home
from xai.report.render import render_report

RUN_CONCEPTS = {**RUN, "stages": ["explain", "concepts"], "weights_ids": {"planted": "random(seed=0)"}}


@pytest.fixture(scope="module")
def fixed() -> dict[str, object]:
    return concept_artifacts.artifacts()


def _rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of every Markdown table row whose first cell is ``first_cell``."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.strip().startswith("|") and cells[0] == first_cell:
            rows.append(cells)
    return rows


def test_concepts_tab_matches_golden(tmp_path: Path, fixed: dict[str, object]) -> None:
    docs = tmp_path / "docs"
    written = render_report(RUN_CONCEPTS, fixed, docs, run_plan(RUN_CONCEPTS), [pages_explain])
    page = (docs / "explanations" / "image-img0.md").read_text()
    check_golden("explanations__image-img0.md", page)
    tab = page.split('=== "Concepts"')[1]
    concepts = planted.planted_concepts()
    a, b = concepts.concepts[concepts.concept_a], concepts.concepts[concepts.concept_b]
    bars = {name: next(row for row in _rows(tab, name) if len(row) == 8) for name in (a, b)}
    presence = {name: next(row for row in _rows(tab, name) if len(row) == 6) for name in (a, b)}
    # concept A's two units (weight 4) carry more of the logit than concept B's (weight 3); both beat random units
    assert bars[a][1] == bars[b][1] == "2" and float(bars[a][2]) > float(bars[b][2]) > 0
    assert float(bars[a][7]) <= 0.05 and float(bars[b][7]) <= 0.05
    # the fake CLIP sees concept A in the red quarter, where A's map points; it never sees B
    assert presence[a][1] == "1 of 8" and presence[a][3] == "yes" and presence[b][3] == "no"
    assert f"Top concept&#39;s share of Σ&#124;c_u&#124; | {a}:" in tab
    assert "True class | planted class" in tab and "Time | 250 ms" in tab
    for figure in ("concept_bars.png", "concept_maps.png", "concept_faithfulness.png"):
        assert f"assets/explanations/img0/{figure}" in written


def test_concepts_section_matches_golden(tmp_path: Path, fixed: dict[str, object]) -> None:
    docs = tmp_path / "docs"
    written = render_report(RUN_CONCEPTS, fixed, docs, run_plan(RUN_CONCEPTS), [pages_explain])
    index = (docs / "explanations" / "index.md").read_text()
    check_golden("explanations__index.md", index)
    section = index.split("## Why each prediction, in concepts")[1]
    concepts = planted.planted_concepts()
    a = concepts.concepts[concepts.concept_a]
    img0, img1 = _rows(section, "[img0](image-img0.md)")[0], _rows(section, "[img1](image-img1.md)")[0]
    assert img0[2] == "yes" and img1[2] == "no"  # true classes 2 (predicted) and 5
    assert img0[3] == f"{a} (2)" and img1[3] == f"{a} (2)"
    assert "| Per-image number | All images | Correct predictions | Wrong predictions |" in section
    assert "(1 correct,\n1 wrong)" in section
    assert "assets/explanations/concepts_summary.csv" in written


def test_methods_section_holds_the_formulas_and_this_runs_settings(tmp_path: Path, fixed: dict[str, object]) -> None:
    render_report(RUN_CONCEPTS, fixed, tmp_path, run_plan(RUN_CONCEPTS), [pages_home])
    methods = (tmp_path / "methods.md").read_text()
    section = methods.split("## Why this prediction, in concepts")[1].split("## What the numbers cannot say")[0]
    check_golden("methods__concepts.md", section)
    assert "`c_u = w_tu · mean(A_u)`" in section and "Grad-CAM map before its ReLU" in section
    assert "`Σ_k C_k + C_unlabelled + offset = z_t − completeness error`" in section
    assert "planted-probe (400 images)" in section and "units reliably labelled" in section
    assert "What each check can and cannot show" in section and "| WWW (Ahn et al., CVPR 2024) |" in section
