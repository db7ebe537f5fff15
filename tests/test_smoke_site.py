"""End to end: ``generate.py`` with smoke.yaml (seeded random weights), ``mkdocs build --strict``, then the built
report checked as a reader meets it (links, images, console, search in Chromium). One run serves every test
here: run the suite with ``--dist loadfile`` so this module stays on one worker.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from site_fixture import build_docs_site

from xai.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow]


def _smoke_config(work: Path, output: Path) -> Path:
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update(output_dir=str(output), cache_dir=str(work / "cache"))
    path = work / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> dict[str, Path]:
    if mirror is None:
        pytest.skip("the smoke run needs the data mirror")
    work = tmp_path_factory.mktemp("smoke")
    docs = work / "docs"
    config = _smoke_config(work, docs)
    assert main(["--config", str(config), "--quiet"]) == 0
    first_tables = {p.relative_to(docs): p.read_bytes() for p in docs.rglob("*.csv")}
    # A second run with nothing changed must compute nothing and write identical tables.
    cache_entries = sorted(p.name for p in (work / "cache").rglob("meta.json"))
    assert main(["--config", str(config), "--quiet"]) == 0
    assert sorted(p.name for p in (work / "cache").rglob("meta.json")) == cache_entries
    second_tables = {p.relative_to(docs): p.read_bytes() for p in docs.rglob("*.csv")}
    assert first_tables == second_tables and first_tables
    site = work / "site"
    build_docs_site(docs, site)
    return {"work": work, "docs": docs, "site": site}


@pytest.fixture(scope="module")
def mirror() -> Path | None:
    from conftest import mirror_path

    path = mirror_path()
    if path is not None:
        os.environ["XAI_MIRROR"] = str(path)
    return path


def test_every_page_is_stamped_random(smoke: dict[str, Path]) -> None:
    pages = list(smoke["docs"].rglob("*.md"))
    assert len(pages) >= 5 + 6 + 2
    unstamped = [p for p in pages if "seeded random weights" not in p.read_text()]
    assert not unstamped


def test_every_table_starts_its_own_markdown_block(smoke: dict[str, Path]) -> None:
    """A table glued to the paragraph above it renders as a paragraph of pipes, not a table."""
    glued = []
    for page in smoke["docs"].rglob("*.md"):
        lines = page.read_text().splitlines()
        glued += [
            f"{page.name}:{n + 1}"
            for n in range(1, len(lines))
            if lines[n].startswith("| ") and lines[n - 1].strip() and not lines[n - 1].startswith("|")
        ]
    assert not glued


def test_all_stages_rendered_not_placeholders(smoke: dict[str, Path]) -> None:
    for page in ("dissection/index.md", "explanations/index.md", "comparison/index.md"):
        text = (smoke["docs"] / page).read_text()
        assert "Not computed in this build" not in text
    home = (smoke["docs"] / "index.md").read_text()
    assert home.count("*Not computed in this build.*") == 0


def test_dissection_csv_covers_every_neuron(smoke: dict[str, Path]) -> None:
    rows = list(csv.DictReader((smoke["docs"] / "assets/dissection/resnet18_places365-descriptions.csv").open()))
    assert len(rows) == 256 + 512 + 365
    assert {"layer", "unit", "description", "similarity"} <= set(rows[0])


def test_catalogue_has_a_stable_anchor_per_neuron(smoke: dict[str, Path]) -> None:
    html = (smoke["site"] / "dissection" / "resnet18_imagenet-layer4" / "index.html").read_text()
    assert all(f'id="unit-{unit}"' in html for unit in (0, 255, 511))


def test_built_site_has_no_broken_links_or_missing_alt_text(smoke: dict[str, Path]) -> None:
    from site_checks import check_image_alt_text, check_links

    assert check_links(smoke["site"]) == []
    assert check_image_alt_text(smoke["site"]) == []


def test_report_in_a_real_browser(smoke: dict[str, Path], tmp_path: Path, chromium: Any) -> None:
    from site_checks import check_page, crawl_pages, has_horizontal_scroll, page_url, search, serve

    site = smoke["site"]
    pages = crawl_pages(site, limit=int(os.environ.get("XAI_MAX_PAGES", "40")))
    label_line = next(
        line
        for line in (smoke["docs"] / "dissection/resnet18_imagenet-layer4.md").read_text().splitlines()
        if line.startswith("**Unit 1:")
    )
    label = label_line.split(":", 1)[1].split("**", 1)[0].strip()
    screenshots = Path(os.environ.get("XAI_SCREENSHOTS", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    with serve(site) as served:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        problems = []
        for file in pages:
            problems += check_page(page, served.base_url + page_url(site, file))
        assert not problems, "\n".join(problems[:40])
        page.goto(served.base_url, wait_until="load")
        page.screenshot(path=str(screenshots / "report-home.png"), full_page=True)
        hits = search(page, served.base_url, label)
        assert any("dissection/" in hit.url for hit in hits), f"search for {label!r} found {hits}"
        phone = chromium.new_page(viewport={"width": 412, "height": 892}, is_mobile=True)
        wide = []
        for relative in ("", "dissection/", "dissection/resnet18_imagenet-layer4/", "comparison/", "explanations/"):
            phone.goto(served.base_url + relative, wait_until="load")
            if has_horizontal_scroll(phone):
                wide.append(relative or "home")
        phone.screenshot(path=str(screenshots / "report-phone.png"))
        assert not wide, f"pages wider than a phone screen: {wide}"
