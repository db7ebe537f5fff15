"""The built site as a reader meets it: served on 127.0.0.1, driven in headless Chromium through Playwright.

Every check runs against the session fixture ``built_site``: the real report, i.e. the smoke site this test run
builds (``smoke_site``, tests/helpers/smoke.py: configs/smoke.yaml, strict MkDocs build), or the built site named
by ``XAI_BUILT_SITE``. The checks themselves are proven on pages broken on purpose here and, for the offline link
checker, in tests/test_linkcheck.py. Environment:

* ``XAI_BUILT_SITE``: built site to check instead of the smoke site.
* ``XAI_SEARCH_QUERY`` / ``XAI_SEARCH_EXPECT``: a neuron label and a fragment of the URL its page must have
  (e.g. ``layer4/``); default on the smoke site: unit 1's label and its ``resnet18_imagenet-layer4`` page;
  required on an ``XAI_BUILT_SITE``.
* ``XAI_SCREENSHOTS``: directory for the screenshots (default: a pytest temporary directory).
* ``XAI_MAX_PAGES``: cap on crawled pages (default 400).
* ``XAI_CHROMIUM``: browser binary (default ``/usr/bin/chromium``).
* ``XAI_REQUIRE_BROWSER=1``: a missing browser fails these tests instead of skipping them (set it in CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urlsplit

import pytest

from tests.helpers.site_checks import (
    ServedSite,
    browser_unavailable_reason,
    check_page,
    crawl_pages,
    has_horizontal_scroll,
    is_neuron_page,
    neuron_pages,
    page_url,
    search,
    serve,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

_UNAVAILABLE = browser_unavailable_reason()
_REQUIRED = os.environ.get("XAI_REQUIRE_BROWSER") == "1"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        _UNAVAILABLE is not None and not _REQUIRED,
        reason=f"browser checks need Chromium + playwright: {_UNAVAILABLE}",
    ),
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {
    "viewport": {"width": 412, "height": 892},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def built_site(request: pytest.FixtureRequest) -> Path:
    """The site under test: ``$XAI_BUILT_SITE`` if set, else the smoke site built in this test run."""
    named = os.environ.get("XAI_BUILT_SITE")
    if named:
        site = Path(named).resolve()
        assert (site / "index.html").is_file(), f"XAI_BUILT_SITE={named} holds no built index.html"
        return site
    return request.getfixturevalue("smoke_site").site


@pytest.fixture(scope="session")
def search_case(request: pytest.FixtureRequest) -> tuple[str, str]:
    """A neuron label to search for and a fragment of the URL of the page that must list it."""
    query, expected = os.environ.get("XAI_SEARCH_QUERY"), os.environ.get("XAI_SEARCH_EXPECT")
    if query and expected:
        return query, expected
    if os.environ.get("XAI_BUILT_SITE"):
        pytest.skip("set XAI_SEARCH_QUERY (a neuron label) and XAI_SEARCH_EXPECT (its page URL fragment)")
    catalogue = request.getfixturevalue("smoke_site").docs / "dissection" / "resnet18_imagenet-layer4.md"
    line = next(line for line in catalogue.read_text().splitlines() if line.startswith("**Unit 1:"))
    return line.split(":", 1)[1].split("**", 1)[0].strip(), "dissection/resnet18_imagenet-layer4/"


@pytest.fixture(scope="session")
def served_site(built_site: Path) -> Iterator[ServedSite]:
    with serve(built_site) as served:
        yield served


@pytest.fixture
def desktop_context(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(desktop_context: BrowserContext) -> Page:
    return desktop_context.new_page()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("XAI_SCREENSHOTS")
    directory = Path(named) if named else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Crawl:
    """What one pass over the site in the browser saw."""

    pages: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    images_loaded: int = 0
    # internal link target without fragment -> (fragment or "", page it was found on)
    links: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    ids: dict[str, set[str]] = field(default_factory=dict)


_DOM_JS = """
() => ({
  links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
  ids: Array.from(document.querySelectorAll('[id]'), e => e.id)
       .concat(Array.from(document.querySelectorAll('a[name]'), a => a.name)),
  imagesLoaded: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length,
})
"""


@pytest.fixture(scope="session")
def crawl(built_site: Path, served_site: ServedSite, chromium: Browser) -> Crawl:
    """Visit each page reachable from the home page once (capped; home and nav pages first), checking it."""
    limit = int(os.environ.get("XAI_MAX_PAGES", "400"))
    result = Crawl()
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        origin = urlsplit(served_site.base_url).netloc
        for file in crawl_pages(built_site, limit=limit):
            url = served_site.base_url + page_url(built_site, file)
            result.pages.append(url)
            result.files.append(file)
            result.problems += check_page(page, url)
            dom = page.evaluate(_DOM_JS)
            result.ids[url] = set(dom["ids"])
            result.images_loaded += dom["imagesLoaded"]
            for href in dom["links"]:
                target, fragment = urldefrag(href)
                if urlsplit(target).netloc == origin:
                    result.links.setdefault(target, []).append((fragment, url))
    finally:
        context.close()
    return result


# --------------------------------------------------------------------------------------------- tests


def test_check_page_reports_every_kind_of_breakage(chromium: Browser, tmp_path: Path) -> None:
    # A page broken on purpose, so a clean result elsewhere means the checks looked, not that they are blind.
    from tests.helpers.site_checks import _ramp_png

    (tmp_path / "ok.png").write_bytes(_ramp_png())
    (tmp_path / "index.html").write_text(
        """<!doctype html><html><head>
        <link rel="stylesheet" href="http://127.0.0.2:9/remote-font.css"></head><body>
        <img src="ok.png" alt="a figure that loads">
        <img src="missing.png" alt="a figure that was never drawn">
        <img src="ok.png">
        <div style="height: 3000px"></div>
        <img src="ok.png" loading="lazy" alt="below the fold, loads">
        <img src="missing-lazy.png" loading="lazy" alt="below the fold, missing">
        <script>console.error("planted console error")</script>
        <script>throw new Error("planted exception")</script>
        </body></html>""",
        encoding="utf-8",
    )
    context = chromium.new_context(viewport=DESKTOP)
    try:
        with serve(tmp_path) as served:
            problems = check_page(context.new_page(), served.base_url)
            assert ("/missing.png", 404) in served.errors()
    finally:
        context.close()
    text = "\n".join(problems)
    for expected in [
        "console error: planted console error",
        "uncaught exception: planted exception",
        "HTTP 404: " + served.base_url + "missing.png",
        "image did not load: " + served.base_url + "missing.png",
        "image did not load: " + served.base_url + "missing-lazy.png",
        "image without alt text: " + served.base_url + "ok.png",
        "request leaves the site (needs network): http://127.0.0.2:9/remote-font.css",
        "request failed",
    ]:
        assert expected in text, f"{expected!r} not reported in:\n{text}"
    assert sum("image did not load" in p for p in problems) == 2
    assert sum("image without alt text" in p for p in problems) == 1


@pytest.mark.parametrize(("overflow_px", "expected"), [(0, False), (900, True)])
def test_horizontal_scroll_detection(chromium: Browser, tmp_path: Path, overflow_px: int, expected: bool) -> None:
    (tmp_path / "index.html").write_text(
        '<!doctype html><html><head><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'</head><body><p>text</p><div style="width: {overflow_px}px; height: 4px"></div></body></html>',
        encoding="utf-8",
    )
    context = chromium.new_context(**PHONE)
    try:
        page = context.new_page()
        with serve(tmp_path) as served:
            page.goto(served.base_url)
            assert has_horizontal_scroll(page) is expected
    finally:
        context.close()


def test_every_page_loads_cleanly(crawl: Crawl, built_site: Path, served_site: ServedSite) -> None:
    assert crawl.pages, "nothing was crawled"
    visited = {url.removeprefix(served_site.base_url) for url in crawl.pages}
    assert "" in visited
    if neuron_pages(built_site):
        assert set(neuron_pages(built_site)) & set(crawl.files), (
            "neuron pages exist but the crawl from the home page reached none"
        )
    if not os.environ.get("XAI_BUILT_SITE"):  # the smoke site: every section and a neuron catalogue page
        for section in ("dissection/", "explanations/", "comparison/", "methods/"):
            assert section in visited, f"the crawl from the home page never reached {section}"
    assert not crawl.problems, "\n".join(crawl.problems[:60]) + f"\n({len(crawl.problems)} problems)"


def test_images_loaded(crawl: Crawl) -> None:
    # check_page already fails any image that did not load; this guards against a site with no images at all.
    assert crawl.images_loaded > 0


def test_every_internal_link_resolves(crawl: Crawl, desktop_context: BrowserContext) -> None:
    problems = []
    for target, uses in sorted(crawl.links.items()):
        status = desktop_context.request.get(target).status
        if status >= 400:
            problems.append(f"HTTP {status}: {target} (linked from {uses[0][1]})")
            continue
        if target in crawl.ids:  # fragments can only be checked on pages whose DOM the crawl saw
            for fragment, source in uses:
                if fragment and fragment not in crawl.ids[target]:
                    problems.append(f"no #{fragment} on {target} (linked from {source})")
    assert len(crawl.links) >= len(crawl.pages) - 1
    assert not problems, "\n".join(sorted(set(problems))[:60])


def test_search_finds_a_neuron_label(page: Page, served_site: ServedSite, search_case: tuple[str, str]) -> None:
    query, expected = search_case
    hits = search(page, served_site.base_url, query)
    matching = [index for index, hit in enumerate(hits) if expected in hit.url]
    assert matching, f"search for {query!r} listed no page with {expected!r}: {hits}"
    page.locator(".md-search-result__item").nth(matching[0]).locator("a.md-search-result__link").first.click()
    page.wait_for_url(lambda url: expected in url)
    assert query.lower() in page.locator("article").first.inner_text().lower()


def test_search_lists_nothing_for_an_absent_word(page: Page, served_site: ServedSite) -> None:
    assert search(page, served_site.base_url, "qzxwvjk") == []


def test_phone_width_has_no_horizontal_scroll(
    chromium: Browser, crawl: Crawl, served_site: ServedSite, screenshot_dir: Path
) -> None:
    context = chromium.new_context(**PHONE)
    try:
        page = context.new_page()
        wide = []
        for url in crawl.pages[:20]:
            page.goto(url, wait_until="load")
            if has_horizontal_scroll(page):
                wide.append(url)
            if url == served_site.base_url:
                page.screenshot(path=str(screenshot_dir / "home-phone.png"))
    finally:
        context.close()
    assert not wide, f"pages wider than a 412 px phone screen: {wide}"


def test_screenshots_of_home_and_a_neuron_page(
    page: Page, built_site: Path, served_site: ServedSite, screenshot_dir: Path
) -> None:
    from PIL import Image

    pages = crawl_pages(built_site)
    other = next((f for f in pages if is_neuron_page(built_site, f)), pages[-1])
    shots = {"home.png": "", "neuron-page.png": page_url(built_site, other)}
    for name, relative in shots.items():
        page.goto(served_site.base_url + relative, wait_until="load")
        page.screenshot(path=str(screenshot_dir / name), full_page=True)
        with Image.open(screenshot_dir / name) as image:
            assert image.width == DESKTOP["width"]
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            # A blank or unstyled page has a handful of colours; a themed page with text and figures hundreds.
            assert colours is None or len(colours) > 50, f"{name} looks blank"
