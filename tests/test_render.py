"""Rendering: golden Markdown for fixed inputs (the home and methods pages without artifacts, a placeholder), strict
undefined values, escaping, stale-file removal. The catalogue's golden page is in tests/test_catalogue.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import UndefinedError

from tests.helpers.golden import check_golden
from tests.helpers.run_record import RUN, run_plan
from xai.report.page import Page, fmt_seconds, make_environment, md_cell
from xai.report.render import remove_stale, render_pages, render_report


@pytest.mark.parametrize("page", ["index.md", "methods.md"])
def test_pages_without_artifacts_match_golden(tmp_path: Path, page: str) -> None:
    render_report(RUN, {}, tmp_path, run_plan())
    check_golden(page, (tmp_path / page).read_text())


def test_a_stage_that_did_not_run_is_a_placeholder_page(tmp_path: Path) -> None:
    """The real dissection and comparison pages are golden in tests/test_golden_pages.py."""
    render_report(RUN, {}, tmp_path, run_plan())
    check_golden("placeholder.md", (tmp_path / "dissection" / "index.md").read_text())
    comparison = (tmp_path / "comparison" / "index.md").read_text()
    assert "This stage was not part of this build." in comparison and "--only compare" in comparison


def test_every_page_carries_the_random_weights_warning(tmp_path: Path) -> None:
    written = render_report(RUN, {}, tmp_path, run_plan())
    assert all("seeded random weights" in (tmp_path / p).read_text() for p in written if p.endswith(".md"))
    render_report({**RUN, "random_weights": False, "weights": "pretrained"}, {}, tmp_path, run_plan())
    assert "seeded random weights" not in (tmp_path / "index.md").read_text()


def test_missing_value_fails_instead_of_rendering_blank(tmp_path: Path) -> None:
    with pytest.raises(UndefinedError):
        render_pages([Page("x.md", "catalogue.md.j2", {"title": "t"})], tmp_path, RUN)


def test_table_cells_escape_html_and_pipes() -> None:
    assert str(md_cell("a|b <i>")) == "a&#124;b &lt;i&gt;"
    template = make_environment().from_string("{{ v | alt }}")
    assert template.render(v="x [y] <z>") == "x (y) &lt;z&gt;"


def test_stale_generated_files_are_removed_but_not_others(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text("old")
    (tmp_path / "mine.md").write_text("hand-written")
    remove_stale(tmp_path, ["old.md"])
    remove_stale(tmp_path, ["new.md"])
    assert not (tmp_path / "old.md").exists() and (tmp_path / "mine.md").exists()


def test_seconds_keep_their_magnitude_below_a_millisecond() -> None:
    assert [fmt_seconds(v) for v in (None, 0.00013, 0.0042, 2.5, 600)] == ["n/a", "130 µs", "4 ms", "2.5 s", "10.0 min"]


def test_a_new_builder_is_one_entry_and_its_section_reaches_the_home_page(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from xai.report.blocks import Answer, Answers
    from xai.report.page import Built, Section, Site
    from xai.report.render import BUILDERS

    seen: list[Site] = []

    def build(site: Site) -> Built:
        seen.append(site)
        page = Page("toy/index.md", "placeholder.md.j2", {"title": "Toy", "stage": "toy", "reason": "A toy."})
        answers = Answers((Answer("The toy found 42.", "toy/index.md"),))
        return Built([page], ["toy/data.csv"], Section("Toy section", "toy/index.md", answers))

    written = render_report(RUN, {}, tmp_path, run_plan(), builders=(SimpleNamespace(build=build), *BUILDERS))
    assert seen[0].sections == () and seen[0].docs_dir == tmp_path and seen[0].run is RUN
    assert "toy/index.md" in written and written[-1] == "toy/data.csv"
    home = (tmp_path / "index.md").read_text()
    assert "## [Toy section](toy/index.md)" in home and "- The toy found 42. [Evidence](toy/index.md)" in home
    assert home.index("Toy section") < home.index("Task 1")  # sections keep builder order


def test_no_page_builder_imports_the_engine() -> None:
    """``render`` imports the builders; a builder importing ``render`` back would be a cycle."""
    import ast

    import xai.report

    for path in Path(xai.report.__file__).parent.glob("*.py"):
        if path.stem == "render":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
                assert "xai.report.render" not in names, f"{path.name} imports the render engine"
