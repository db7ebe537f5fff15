"""The offline link checker on a built MkDocs Material site: a clean site passes, each breakage is caught.

Broken sites are made by damaging a copy of a real strict build (the HTML Material actually emits), so the
checker is proven on the markup it will meet, plus a few hand-written pages for the URL forms Material never
emits. The same checker then runs on the real report: the smoke site this test run builds (the session fixture
``smoke_site``), or the built site ``XAI_BUILT_SITE`` names.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.site_checks import (
    build_fixture_site,
    check_image_alt_text,
    check_links,
    crawl_pages,
    html_pages,
    is_neuron_page,
    main,
    neuron_pages,
    page_url,
)


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixture_site(tmp_path_factory.mktemp("linkcheck"))


@pytest.fixture
def damaged_site(fixture_site: Path, tmp_path: Path) -> Path:
    """A private copy of the fixture site that a test may break."""
    return Path(shutil.copytree(fixture_site, tmp_path / "site"))


def test_clean_site_has_no_problems(fixture_site: Path) -> None:
    assert len(html_pages(fixture_site)) == 5  # home, methods, catalogue, layer4, 404
    assert check_links(fixture_site) == []
    assert check_image_alt_text(fixture_site) == []


def test_missing_image_is_reported_on_every_page_that_shows_it(damaged_site: Path) -> None:
    (damaged_site / "img" / "ramp.png").unlink()
    problems = check_links(damaged_site)
    img_problems = [p for p in problems if "<img src=" in p and "ramp.png" in p]
    assert {p.split(":")[0] for p in img_problems} == {"index.html", "methods/index.html"}
    assert all("no file for /img/ramp.png" in p for p in img_problems)


def test_deleted_page_breaks_every_link_to_it(damaged_site: Path) -> None:
    shutil.rmtree(damaged_site / "methods")
    problems = check_links(damaged_site)
    # The nav repeats the link on every remaining page; the home page also links it from the text.
    pages_reporting = {p.split(":")[0] for p in problems if "no file for /methods/" in p}
    expected = {"index.html", "catalogue/index.html", "catalogue/layer4/index.html", "404.html"}
    assert pages_reporting == expected


def test_missing_anchor_is_reported(damaged_site: Path) -> None:
    neuron_page = damaged_site / "catalogue" / "layer4" / "index.html"
    html = neuron_page.read_text(encoding="utf-8")
    assert 'id="unit-7"' in html
    neuron_page.write_text(html.replace('id="unit-7"', 'id="unit-70"'), encoding="utf-8")
    problems = check_links(damaged_site)
    assert problems == [p for p in problems if "no id 'unit-7' in catalogue/layer4/index.html" in p]
    assert [p.split(":")[0] for p in problems] == ["index.html"]


def test_missing_heading_anchor_is_reported(damaged_site: Path) -> None:
    methods = damaged_site / "methods" / "index.html"
    html = methods.read_text(encoding="utf-8")
    methods.write_text(html.replace('id="what-lime-computes"', 'id="renamed"'), encoding="utf-8")
    problems = check_links(damaged_site)
    assert any(p.startswith("index.html:") and "no id 'what-lime-computes'" in p for p in problems)


def test_missing_stylesheet_is_reported(damaged_site: Path) -> None:
    stylesheet = next((damaged_site / "assets" / "stylesheets").glob("main.*.min.css"))
    stylesheet.unlink()
    problems = check_links(damaged_site)
    assert len([p for p in problems if stylesheet.name in p]) == len(html_pages(damaged_site))


def test_image_without_alt_is_reported(damaged_site: Path) -> None:
    home = damaged_site / "index.html"
    html = home.read_text(encoding="utf-8")
    home.write_text(html.replace('alt="Viridis test figure: a horizontal colour ramp"', ""), encoding="utf-8")
    assert [p.split(":")[0] for p in check_image_alt_text(damaged_site)] == ["index.html"]


def test_raw_html_image_passes_strict_mkdocs_but_not_the_checker(tmp_path: Path) -> None:
    # Why the checker exists: MkDocs validates Markdown links only; raw HTML (as templates emit) is stashed.
    canary = '# Canary\n\n<img src="img/missing.png" alt="a figure that was never drawn">\n'
    site = build_fixture_site(tmp_path, {"canary.md": canary})  # raises if strict mode complained
    problems = check_links(site)
    # glightbox wraps every image in a link to itself, so the lightbox link breaks too.
    assert [p.split(":", 2)[2] for p in problems] == [
        " <a href='img/missing.png'>: no file for /canary/img/missing.png",
        " <img src='img/missing.png'>: no file for /canary/img/missing.png",
    ]
    assert all(p.startswith("canary/index.html:") for p in problems)


def _write(site: Path, name: str, html: str) -> None:
    (site / name).parent.mkdir(parents=True, exist_ok=True)
    (site / name).write_text(html, encoding="utf-8")


def test_url_forms_material_never_emits(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _write(
        site,
        "index.html",
        """<html><body id="top">
      <a href="https://example.org/nowhere">external, skipped</a>
      <a href="mailto:someone@example.org">mail, skipped</a>
      <a href="#">page top</a> <a href="#top">own id</a> <a href="#gone">missing own id</a>
      <a href="sub">directory without slash</a> <a href="sub/#deep">anchor in directory index</a>
      <a href="/xai-report/sub/">root-relative under the site_url prefix</a>
      <a href="my%20figure.png">percent-encoded file name</a>
      <img src="my%20figure.png#only-dark" alt="fragment on an image is a styling hint">
      <img srcset="my%20figure.png 1x, missing@2x.png 2x" src="my%20figure.png" alt="srcset">
      <a name="legacy"></a><a href="#legacy">a name counts as an anchor</a>
    </body></html>""",
    )
    _write(site, "sub/index.html", '<html><body><h2 id="deep">Deep</h2><a href="../">up</a></body></html>')
    _write(site, "my figure.png", "not really a png")
    _write(
        site,
        "sitemap.xml",
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>https://user.github.io/xai-report/sub/</loc></url>"
        "<url><loc>https://user.github.io/xai-report/</loc></url></urlset>",
    )
    problems = check_links(site)
    assert len(problems) == 2, problems
    assert "<a href='#gone'>: no id 'gone' in index.html" in problems[0]
    assert "<img srcset='missing@2x.png'>: no file for /missing@2x.png" in problems[1]


def test_crawl_visits_home_first_and_caps_but_keeps_a_neuron_page(fixture_site: Path) -> None:
    pages = crawl_pages(fixture_site)
    assert [page_url(fixture_site, p) for p in pages] == ["", "methods/", "catalogue/", "catalogue/layer4/"]
    assert [is_neuron_page(fixture_site, p) for p in pages] == [False, False, False, True]
    assert neuron_pages(fixture_site) == [pages[-1]]
    capped = crawl_pages(fixture_site, limit=2)
    assert [page_url(fixture_site, p) for p in capped] == ["", "catalogue/layer4/"]


def test_command_line_exit_status(fixture_site: Path, damaged_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(fixture_site)]) == 0
    (damaged_site / "img" / "ramp.png").unlink()
    assert main([str(damaged_site)]) == 1
    assert "ramp.png" in capsys.readouterr().out


@pytest.mark.slow
def test_built_report_has_no_broken_links_or_missing_alt_text(request: pytest.FixtureRequest) -> None:
    """The real report: ``$XAI_BUILT_SITE`` when set, else the smoke site built in this test run."""
    named = os.environ.get("XAI_BUILT_SITE")
    site = Path(named) if named else request.getfixturevalue("smoke_site").site
    assert (site / "index.html").is_file(), f"{site} is not a built site"
    assert len(html_pages(site)) >= 10, "fewer pages than any real report has (home, methods, 3 sections, pages)"
    problems = check_links(site) + check_image_alt_text(site)
    assert not problems, "\n".join(problems[:50]) + f"\n({len(problems)} problems)"
