"""Browser probes of a served site: Debian's Chromium driven through Playwright's sync API.

Chromium is started with ``executable_path`` (no browser download). :func:`check_page` reports console
errors, failed and non-local requests, HTTP errors, images that did not load and images without alt text;
:func:`search` types into Material's search box. Playwright is imported lazily, so importing this module
needs only the stdlib.

Public names are re-exported by :mod:`tests.helpers.site_checks`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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


# ----------------------------------------------------------------------------------------------------
# Browser helpers (Playwright sync API, imported lazily so the link checker needs only the stdlib)
# ----------------------------------------------------------------------------------------------------


def browser_unavailable_reason() -> str | None:
    """Why the browser checks cannot run here, or None when they can."""
    if not CHROMIUM_PATH.is_file():
        return (
            f"no Chromium at {CHROMIUM_PATH} (apt-get install -y --no-install-recommends chromium, or set XAI_CHROMIUM)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright is not installed (pip install playwright; no browser download needed)"
    return None


def launch(playwright: Playwright) -> Browser:
    """Start headless system Chromium (Playwright adds a fresh user-data dir for each launch)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_ARGS))


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
  // A page of a thousand neuron strips, all asked for at once on a loaded CI machine, needs more than a few
  // seconds: the wait grows with the images (it ends as soon as every one has loaded or failed).
  const limitMs = timeoutMs + 50 * images.length;
  await Promise.race([Promise.all(loaded), new Promise(done => setTimeout(done, limitMs))]);
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
    The check waits for the load event, for every image (at most ``settle_timeout_s`` plus 50 ms per image), and
    until no request is in flight (at most ``settle_timeout_s``), so errors from the search worker's index fetch
    are caught too.

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
        # ERR_ABORTED is the browser cancelling a request (e.g. the favicon when the next page starts loading);
        # a missing file still shows up as an HTTP >= 400 response below.
        if "ERR_ABORTED" not in str(request.failure):
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
