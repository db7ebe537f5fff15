"""End to end: ``generate.py`` with smoke.yaml (seeded random weights), run twice, then ``mkdocs build --strict``
(the session fixture ``smoke_site``, tests/helpers/smoke.py, built once per test run). The built site's links and
its pages in Chromium are checked by tests/test_linkcheck.py and tests/test_site_browser.py on the same build.
"""

from __future__ import annotations

import csv

import pytest

from tests.helpers.smoke import SmokeSite

pytestmark = [pytest.mark.slow]


def test_a_rerun_with_nothing_changed_computes_nothing(smoke_site: SmokeSite) -> None:
    """The second run must find every cache entry: no entry rewritten (its files' times), none added."""
    before, after = smoke_site.cache_before, smoke_site.cache_after
    assert sum(name.endswith("meta.json") for name in before) >= 10, "the first run cached almost nothing"
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"the rerun rewrote or added {len(changed)} cache file(s): {changed[:12]}"
    assert smoke_site.tables_before == smoke_site.tables_after and smoke_site.tables_before


def test_every_page_is_stamped_random(smoke_site: SmokeSite) -> None:
    pages = list(smoke_site.docs.rglob("*.md"))
    assert len(pages) >= 5 + 6 + 2
    unstamped = [p for p in pages if "seeded random weights" not in p.read_text()]
    assert not unstamped


def test_every_table_starts_its_own_markdown_block(smoke_site: SmokeSite) -> None:
    """A table glued to the paragraph above it renders as a paragraph of pipes, not a table."""
    glued = []
    for page in smoke_site.docs.rglob("*.md"):
        lines = page.read_text().splitlines()
        glued += [
            f"{page.name}:{n + 1}"
            for n in range(1, len(lines))
            if lines[n].startswith("| ") and lines[n - 1].strip() and not lines[n - 1].startswith("|")
        ]
    assert not glued


def test_all_stages_rendered_not_placeholders(smoke_site: SmokeSite) -> None:
    for page in ("dissection/index.md", "explanations/index.md", "comparison/index.md"):
        text = (smoke_site.docs / page).read_text()
        assert "Not computed in this build" not in text
    home = (smoke_site.docs / "index.md").read_text()
    assert home.count("*Not computed in this build.*") == 0


def test_the_home_page_names_the_config_file_read(smoke_site: SmokeSite) -> None:
    from xai.report.page import md_text

    home = (smoke_site.docs / "index.md").read_text()
    assert f"| Config file | {md_text(smoke_site.work / 'smoke.yaml')} |" in home


def test_dissection_csv_covers_every_neuron(smoke_site: SmokeSite) -> None:
    table = smoke_site.docs / "assets/dissection/resnet18_places365-descriptions.csv"
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 256 + 512 + 365
    assert {"layer", "unit", "description", "similarity"} <= set(rows[0])


def test_catalogue_has_a_stable_anchor_per_neuron(smoke_site: SmokeSite) -> None:
    html = (smoke_site.site / "dissection" / "resnet18_imagenet-layer4" / "index.html").read_text()
    assert all(f'id="unit-{unit}"' in html for unit in (0, 255, 511))
