"""Checks of a built static site as a reader sees it: a local server, an offline link checker, browser probes.

Three layers, usable separately:

* :func:`serve` serves a built site on ``127.0.0.1`` (http, not ``file://``: Material's search worker and
  instant navigation need http) and records every request with its status, so a 404 cannot go unseen.
* :func:`check_links` walks the built HTML offline (stdlib only): every internal ``href``/``src``/``srcset``
  must resolve to a file, a directory ``index.html`` or a page, and every ``#fragment`` must exist as an
  ``id`` (or ``<a name>``) in its target page. External ``http(s)`` links are skipped: the check is offline.
  MkDocs' own ``validation`` only sees links written in Markdown syntax; raw-HTML ``<img>`` emitted by
  templates is not validated by ``mkdocs build --strict``, hence this checker over the *built* site.
* Browser helpers drive Debian's Chromium through Playwright's sync API (``executable_path``; no browser
  download): :func:`check_page` reports console errors, failed and non-local requests, HTTP errors, images
  that did not load and images without alt text; :func:`search` types into Material's search box.

Run as a script for CI without pytest: ``python tests/site_checks.py site/`` prints the link problems and
exits non-zero when there are any.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM_PATH = Path(os.environ.get("XAI_CHROMIUM", "/usr/bin/chromium"))
"""Browser binary; ``XAI_CHROMIUM`` overrides it (e.g. ``/usr/bin/google-chrome`` on GitHub runners)."""

CHROMIUM_ARGS = (
    "--no-sandbox",  # we run as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling home, which floods a closed network with refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

NEURON_ANCHOR = re.compile(r"^unit-\d+$")
"""Ids of per-neuron anchors in the catalogue (``#unit-123``); a page holding one is a neuron page."""

_SKIPPED_SCHEMES = {"http", "https", "mailto", "tel", "data", "javascript", "blob", "ftp"}
_LINK_ATTRIBUTES = {
    ("a", "href"),
    ("area", "href"),
    ("link", "href"),
    ("img", "src"),
    ("script", "src"),
    ("source", "src"),
    ("video", "src"),
    ("video", "poster"),
    ("audio", "src"),
    ("iframe", "src"),
    ("embed", "src"),
    ("object", "data"),
}
# Fragments only address ids for navigation links; on <img src="x.png#only-dark"> they are styling hints.
_FRAGMENT_TAGS = {"a", "area"}


# ----------------------------------------------------------------------------------------------------
# Local server
# ----------------------------------------------------------------------------------------------------


@dataclass
class ServedSite:
    """A running local server: its base URL (ending in ``/``) and the ``(path, status)`` of each request."""

    base_url: str
    requests: list[tuple[str, int]] = field(default_factory=list)

    def errors(self) -> list[tuple[str, int]]:
        """Requests answered with a status >= 400."""
        return [(path, status) for path, status in self.requests if status >= 400]


class _QuietRecordingHandler(SimpleHTTPRequestHandler):
    log: list[tuple[str, int]]
    lock: threading.Lock

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # send_error() also ends here, so 404s are recorded like successes.
        with self.lock:
            self.log.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        # Every page must be fetched from the server, never from a cache left by an earlier check.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Browsers drop connections mid-response (prefetch, navigation); that is not a site defect.
        pass


@contextlib.contextmanager
def serve(site_dir: str | os.PathLike[str]) -> Iterator[ServedSite]:
    """Serve ``site_dir`` over http on 127.0.0.1 at a free port for the ``with`` body, recording requests.

    Args:
        site_dir: The built site (MkDocs' ``site/``).

    Yields:
        The running site; ``requests`` fills in as the browser fetches.
    """
    root = Path(site_dir).resolve()
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"{root} has no index.html; is it a built site?")
    log: list[tuple[str, int]] = []
    handler = type(
        "Handler",
        (_QuietRecordingHandler,),
        {"log": log, "lock": threading.Lock()},
    )
    server = _QuietServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield ServedSite(base_url=f"http://{host}:{port}/", requests=log)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------------------------------
# Offline link checker
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    tag: str
    attribute: str
    value: str
    line: int


class _PageParser(HTMLParser):
    """Collects the ids a page defines and the links it makes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[_Link] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.ids.add(values["name"])
        line = self.getpos()[0]
        for name, value in values.items():
            if (tag, name) in _LINK_ATTRIBUTES:
                self.links.append(_Link(tag, name, value.strip(), line))
            elif name == "srcset" and tag in {"img", "source"}:
                for candidate in value.split(","):
                    url = candidate.strip().split(" ")[0]
                    if url:
                        self.links.append(_Link(tag, name, url, line))

    handle_startendtag = handle_starttag


@dataclass
class _ParsedPage:
    ids: set[str]
    links: list[_Link]


class _Site:
    """The built site on disk, parsing each HTML page at most once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = _site_path_prefix(root)
        self._pages: dict[Path, _ParsedPage] = {}

    def parse(self, file: Path) -> _ParsedPage:
        if file not in self._pages:
            parser = _PageParser()
            parser.feed(file.read_text(encoding="utf-8", errors="replace"))
            parser.close()
            self._pages[file] = _ParsedPage(parser.ids, parser.links)
        return self._pages[file]

    def resolve(self, page: Path, url: str) -> tuple[Path | None, str | None, str]:
        """Map an internal URL found on ``page`` to ``(file or None, fragment or None, site path)``.

        Relative URLs resolve against the page's own URL (``a/index.html`` is served as ``a/``); root-relative
        ones against the site root after removing the ``site_url`` path prefix (GitHub project pages live
        under ``/<repo>/``).
        """
        page_url = "/" + page.relative_to(self.root).as_posix()
        parts = urlsplit(urljoin(page_url, url))
        path = unquote(parts.path)
        fragment = unquote(parts.fragment) if parts.fragment else None
        if url.startswith("/") and self.prefix != "/" and path.startswith(self.prefix):
            path = "/" + path[len(self.prefix) :]
        relative = PurePosixPath(path.lstrip("/"))
        if ".." in relative.parts:
            return None, fragment, path
        candidate = self.root.joinpath(*relative.parts)
        if path.endswith("/") or candidate.is_dir():
            candidate = candidate / "index.html"
        return (candidate if candidate.is_file() else None), fragment, path


def _site_path_prefix(root: Path) -> str:
    """The path part of ``site_url`` as recorded in ``sitemap.xml`` (``/`` when unknown)."""
    sitemap = root / "sitemap.xml"
    if not sitemap.is_file():
        return "/"
    try:
        elements = ET.parse(sitemap).iter()
        locations = [element.text or "" for element in elements if element.tag.endswith("loc")]
    except ET.ParseError:
        return "/"
    paths = [urlsplit(location).path for location in locations if location]
    if not paths:
        return "/"
    shortest = min(paths, key=len)
    return shortest if shortest.endswith("/") else shortest.rsplit("/", 1)[0] + "/"


def _is_external(url: str) -> bool:
    if url.startswith("//"):
        return True
    scheme = urlsplit(url).scheme.lower()
    return scheme in _SKIPPED_SCHEMES or (scheme != "" and len(scheme) > 1)


def html_pages(site_dir: str | os.PathLike[str]) -> list[Path]:
    """Every ``.html`` file under the built site, sorted."""
    return sorted(Path(site_dir).resolve().rglob("*.html"))


def check_links(site_dir: str | os.PathLike[str]) -> list[str]:
    """Check every internal link, image and asset reference in a built site, offline.

    A reference is broken when its target file does not exist (a directory counts when it has
    ``index.html``), or, for ``<a>``/``<area>`` links to an HTML page, when the ``#fragment`` is not an ``id``
    (or ``<a name>``) in that page. Empty fragments (``#``) are the page top and always valid. External
    ``http(s)``/``mailto``/``data`` URLs are skipped.

    Args:
        site_dir: The built site.

    Returns:
        One line per problem, ``"<page>:<line>: <tag> <attribute>=<url>: <why>"``; empty when all resolve.
    """
    site = _Site(Path(site_dir).resolve())
    problems: list[str] = []
    for page in html_pages(site.root):
        for link in site.parse(page).links:
            if not link.value or _is_external(link.value):
                continue
            target, fragment, path = site.resolve(page, link.value)
            source = page.relative_to(site.root).as_posix()
            where = f"{source}:{link.line}: <{link.tag} {link.attribute}={link.value!r}>"
            if target is None:
                problems.append(f"{where}: no file for {path}")
                continue
            checks_fragment = fragment and link.tag in _FRAGMENT_TAGS and target.suffix == ".html"
            if checks_fragment and fragment not in site.parse(target).ids:
                shown = target.relative_to(site.root).as_posix()
                problems.append(f"{where}: no id {fragment!r} in {shown}")
    return problems


def check_image_alt_text(site_dir: str | os.PathLike[str]) -> list[str]:
    """Every ``<img>`` in the built HTML has non-empty alt text (decorative ones must say ``aria-hidden``)."""
    problems = []
    root = Path(site_dir).resolve()
    for page in html_pages(root):
        parser = _AltParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        problems += [
            f"{page.relative_to(root).as_posix()}:{line}: <img src={src!r}> has no alt text"
            for line, src in parser.missing
        ]
    return problems


class _AltParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.missing: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        decorative = values.get("aria-hidden") == "true" or values.get("role") in {"presentation", "none"}
        if tag == "img" and not decorative and not (values.get("alt") or "").strip():
            self.missing.append((self.getpos()[0], values.get("src") or ""))

    handle_startendtag = handle_starttag


def page_url(site_dir: str | os.PathLike[str], file: Path) -> str:
    """Site-relative URL a reader uses for ``file`` (``a/b/index.html`` -> ``a/b/``; home page -> ``""``)."""
    relative = file.resolve().relative_to(Path(site_dir).resolve()).as_posix()
    if relative == "index.html":
        return ""
    return relative[: -len("index.html")] if relative.endswith("/index.html") else relative


def _has_neuron_anchor(parsed: _ParsedPage) -> bool:
    return any(NEURON_ANCHOR.match(identifier) for identifier in parsed.ids)


def is_neuron_page(site_dir: str | os.PathLike[str], file: Path) -> bool:
    """Whether the page holds at least one per-neuron anchor (``id="unit-<n>"``)."""
    return _has_neuron_anchor(_Site(Path(site_dir).resolve()).parse(file))


def neuron_pages(site_dir: str | os.PathLike[str]) -> list[Path]:
    """Every page of the built site holding a per-neuron anchor, sorted (each page parsed once)."""
    site = _Site(Path(site_dir).resolve())
    return [page for page in html_pages(site.root) if _has_neuron_anchor(site.parse(page))]


def crawl_pages(site_dir: str | os.PathLike[str], limit: int = 400) -> list[Path]:
    """HTML pages reachable from ``index.html`` by internal links, breadth first, capped at ``limit``.

    Breadth first puts the home page and every page in the navigation (Material repeats the nav on every
    page) ahead of deep catalogue pages, so the cap cuts deep pages first. When the cap would drop every
    neuron page, the last slot is given to the first neuron page found, so at least one is always visited.

    Returns:
        Absolute paths, home page first.
    """
    site = _Site(Path(site_dir).resolve())
    home = site.root / "index.html"
    order: list[Path] = [home]
    seen = {home}
    queue = deque([home])
    while queue:
        page = queue.popleft()
        for link in site.parse(page).links:
            if link.tag not in _FRAGMENT_TAGS or not link.value or _is_external(link.value):
                continue
            target, _, _ = site.resolve(page, link.value)
            if target is not None and target.suffix == ".html" and target not in seen:
                seen.add(target)
                order.append(target)
                queue.append(target)
    if len(order) <= limit:
        return order
    chosen = order[:limit]
    if not any(_has_neuron_anchor(site.parse(page)) for page in chosen):
        neuron = next((page for page in order[limit:] if _has_neuron_anchor(site.parse(page))), None)
        if neuron is not None:
            chosen[-1] = neuron
    return chosen


# ----------------------------------------------------------------------------------------------------
# Browser helpers (Playwright sync API, imported lazily so the link checker needs only the stdlib)
# ----------------------------------------------------------------------------------------------------


def browser_unavailable_reason() -> str | None:
    """Why the browser checks cannot run here, or None when they can."""
    if not CHROMIUM_PATH.is_file():
        return (
            f"no Chromium at {CHROMIUM_PATH} (apt-get install -y --no-install-recommends chromium, "
            "or set XAI_CHROMIUM)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright is not installed (pip install playwright; no browser download needed)"
    return None


def launch(playwright: Playwright) -> Browser:
    """Start headless system Chromium (Playwright adds a fresh user-data dir for each launch)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_ARGS)
    )


@contextlib.contextmanager
def open_browser() -> Iterator[Browser]:
    """Playwright plus a launched Chromium for the ``with`` body; both are closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


_SETTLE_IMAGES_JS = """
async (timeoutMs) => {
  const images = Array.from(document.images);
  // Lazy images below the fold never load in a headless check; ask for all of them now.
  for (const img of images) { if (img.loading === 'lazy') img.loading = 'eager'; }
  const loaded = images.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done, {once: true});
                            img.addEventListener('error', done, {once: true}); }));
  await Promise.race([Promise.all(loaded), new Promise(done => setTimeout(done, timeoutMs))]);
  return images.map(img => ({
    src: img.currentSrc || img.getAttribute('src') || '',
    complete: img.complete,
    naturalWidth: img.naturalWidth,
    alt: img.getAttribute('alt'),
    decorative: img.getAttribute('aria-hidden') === 'true' ||
                ['presentation', 'none'].includes(img.getAttribute('role') || ''),
  }));
}
"""


def check_page(page: Page, url: str, *, settle_timeout_s: float = 5.0) -> list[str]:
    """Load ``url`` in ``page`` as a reader would and list everything that went wrong.

    Problems reported: console errors and uncaught exceptions, failed requests, responses with HTTP status
    >= 400, requests to any host other than the page's own (the site must work offline), images that are not
    complete or have ``naturalWidth`` 0 after loading (lazy images are switched to eager first), and images
    without alt text (``aria-hidden="true"`` or ``role="presentation"`` marks a decorative one).
    The check waits for the load event, for every image, and until no request is in flight (at most
    ``settle_timeout_s``), so errors from the search worker's index fetch are caught too.

    Returns:
        Human-readable problems, each prefixed with the URL; empty for a clean page.
    """
    problems: list[str] = []
    in_flight: set[Any] = set()
    origin = urlsplit(url).netloc

    def on_console(message: Any) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def on_page_error(error: Any) -> None:
        problems.append(f"uncaught exception: {error}")

    def on_request(request: Any) -> None:
        in_flight.add(request)
        if urlsplit(request.url).netloc != origin and urlsplit(request.url).scheme in {"http", "https"}:
            problems.append(f"request leaves the site (needs network): {request.url}")

    def on_request_failed(request: Any) -> None:
        in_flight.discard(request)
        problems.append(f"request failed ({request.failure}): {request.url}")

    def on_request_finished(request: Any) -> None:
        in_flight.discard(request)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    handlers = {
        "console": on_console,
        "pageerror": on_page_error,
        "request": on_request,
        "requestfailed": on_request_failed,
        "requestfinished": on_request_finished,
        "response": on_response,
    }
    for event, handler in handlers.items():
        page.on(event, handler)
    try:
        response = page.goto(url, wait_until="load")
        if response is None or response.status >= 400:
            problems.append(f"page answered {response.status if response else 'nothing'}")
        images = page.evaluate(_SETTLE_IMAGES_JS, int(settle_timeout_s * 1000))
        deadline = time.monotonic() + settle_timeout_s
        while in_flight and time.monotonic() < deadline:
            page.wait_for_timeout(25)
        for image in images:
            if not image["complete"] or image["naturalWidth"] == 0:
                problems.append(f"image did not load: {image['src']}")
            if not image["decorative"] and not (image["alt"] or "").strip():
                problems.append(f"image without alt text: {image['src']}")
    finally:
        for event, handler in handlers.items():
            page.remove_listener(event, handler)
    return [f"{url}: {problem}" for problem in problems]


@dataclass(frozen=True)
class SearchHit:
    """One document in Material's search result list: its title and absolute URL."""

    title: str
    url: str


_SEARCH_SETTLED_JS = """
() => {
  if (document.querySelector('.md-search-result__item')) return true;
  const meta = document.querySelector('.md-search-result__meta');
  return !!meta && /no matching/i.test(meta.textContent || '');
}
"""

_SEARCH_HITS_JS = """
() => Array.from(document.querySelectorAll('.md-search-result__item')).map(item => {
  const link = item.querySelector('a.md-search-result__link');
  const heading = item.querySelector('h1, h2');
  return {title: (heading ? heading.textContent : (link ? link.textContent : '')).trim(),
          url: link ? link.href : ''};
})
"""


def search(page: Page, base_url: str, query: str, *, timeout_s: float = 15.0) -> list[SearchHit]:
    """Open the home page, type ``query`` into Material's search box and return the listed documents.

    Material renders results asynchronously from a web worker; this waits until either results are listed
    or the meta line says nothing matched, so an empty list means "no match", never "not ready yet".
    """
    page.goto(base_url, wait_until="load")
    box = page.locator(".md-search__input")
    box.click()  # on narrow viewports the box sits in an overlay; clicking the header label opens it
    box.fill("")
    page.keyboard.type(query, delay=20)
    page.wait_for_function(_SEARCH_SETTLED_JS, timeout=timeout_s * 1000)
    return [SearchHit(hit["title"], hit["url"]) for hit in page.evaluate(_SEARCH_HITS_JS)]


def has_horizontal_scroll(page: Page) -> bool:
    """Whether the document is wider than the device screen (a phone reader would scroll or zoom out).

    Compares against the configured viewport width, not ``innerWidth``: on a mobile viewport Chromium widens
    the layout viewport to fit overflowing content, so ``innerWidth`` grows with the very overflow we look for
    (and Material's ``overflow-x: hidden`` on ``<html>`` hides the scroll bar, not the overflow).
    """
    viewport = page.viewport_size
    if viewport is None:
        raise ValueError("the page has no fixed viewport size")
    width = page.evaluate("() => Math.max(document.documentElement.scrollWidth, window.innerWidth)")
    return bool(width > viewport["width"] + 1)


# ----------------------------------------------------------------------------------------------------
# A small MkDocs Material site to prove the checks on (stand-in for the real report, same theme and plugins)
# ----------------------------------------------------------------------------------------------------

FIXTURE_SEARCH_WORD = "periwinkle"
"""A word that appears only as a neuron label on the fixture's neuron page."""
FIXTURE_NEURON_PAGE = "catalogue/layer4/"

_FIXTURE_MKDOCS_YML = """\
site_name: Fixture report
site_url: https://example.invalid/xai-report/
theme:
  name: material
  font: false
  features: [navigation.instant, navigation.tabs, navigation.top, search.suggest, search.highlight,
             content.code.copy]
  palette:
    - media: "(prefers-color-scheme: light)"
      scheme: default
      toggle: {icon: material/brightness-7, name: Switch to dark mode}
    - media: "(prefers-color-scheme: dark)"
      scheme: slate
      toggle: {icon: material/brightness-4, name: Switch to light mode}
plugins: [search, glightbox]
markdown_extensions: [admonition, attr_list, md_in_html, tables, toc]
validation:
  omitted_files: warn
  absolute_links: warn
  unrecognized_links: warn
  anchors: warn
nav:
  - Home: index.md
  - Methods: methods.md
  - Catalogue:
      - catalogue/index.md
      - Layer 4: catalogue/layer4.md
"""

_FIXTURE_PAGES = {
    "index.md": """\
# Fixture report

The planted model's best-explained neuron is [unit 7](catalogue/layer4.md#unit-7); see the
[methods](methods.md#what-lime-computes) for how labels are scored.

![Viridis test figure: a horizontal colour ramp](img/ramp.png)

!!! warning "Random weights"
    This fixture was built with random weights.

| method | seconds |
|---|---|
| LIME | 1.5 |
| Grad-CAM | 0.1 |
""",
    "methods.md": """\
# Methods

## What LIME computes

Local surrogate models over superpixels. Back to the [home page](index.md).

![A second figure, the same ramp](img/ramp.png){ loading=lazy }

A wide table must scroll inside its own box, not widen the page on a phone:

| model | layer | unit | label | score | runner-up 1 | runner-up 2 | runner-up 3 | images | faded |
|---|---|---|---|---|---|---|---|---|---|
| resnet18_imagenet | layer4 | 7 | chequered-pattern | 0.31 | striped-fabric | honeycomb | grid | 10 | no |
""",
    "catalogue/index.md": """\
# Neuron catalogue

- [Layer 4](layer4.md)
""",
    "catalogue/layer4.md": """\
# Layer 4 neurons

<a id="unit-3"></a>
**unit 3**: striped (score 0.21)

<a id="unit-7"></a>
**unit 7**: periwinkle (score 0.31)
""",
}


def _ramp_png(width: int = 96, height: int = 24) -> bytes:
    """A tiny greyscale-ramp PNG written with the stdlib, so the fixture needs no imaging library."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + bytes(int(255 * x / (width - 1)) for x in range(width)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def write_fixture_project(project_dir: Path, extra_pages: dict[str, str] | None = None) -> Path:
    """Write the fixture MkDocs project (mkdocs.yml, pages, one PNG) and return its mkdocs.yml."""
    docs = project_dir / "docs"
    for name, text in {**_FIXTURE_PAGES, **(extra_pages or {})}.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    (docs / "img").mkdir(exist_ok=True)
    (docs / "img" / "ramp.png").write_bytes(_ramp_png())
    config = project_dir / "mkdocs.yml"
    extra_nav = "".join(f"  - {name}\n" for name in (extra_pages or {}))
    config.write_text(_FIXTURE_MKDOCS_YML + extra_nav, encoding="utf-8")
    return config


def mkdocs_build(config: Path, site_dir: Path, *, strict: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``mkdocs build`` (strict by default) with this interpreter; raises with MkDocs' log on failure.

    Never add ``-q``/``-v``: MkDocs 1.6.1 counts strict-mode warnings through the logger, so ``-q --strict``
    passes a site with broken links and anchors (checked on this fixture), and ``-v`` drops anchor checks.
    """
    command = [sys.executable, "-m", "mkdocs", "build", "-f", str(config), "-d", str(site_dir)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "true"}
    result = subprocess.run(
        command + (["--strict"] if strict else []), capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"mkdocs build failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def build_fixture_site(work_dir: Path, extra_pages: dict[str, str] | None = None) -> Path:
    """Write and strictly build the fixture project under ``work_dir``; return the built site directory."""
    config = write_fixture_project(work_dir / "project", extra_pages)
    site = work_dir / "site"
    mkdocs_build(config, site)
    return site


def main(argv: list[str]) -> int:
    """``python tests/site_checks.py SITE_DIR``: print broken links and missing alt text; exit 1 if any."""
    if len(argv) != 1:
        print("usage: python tests/site_checks.py SITE_DIR", file=sys.stderr)
        return 2
    problems = check_links(argv[0]) + check_image_alt_text(argv[0])
    for problem in problems:
        print(problem)
    pages = len(html_pages(argv[0]))
    print(f"{len(problems)} problem(s) in {pages} page(s) of {argv[0]}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
