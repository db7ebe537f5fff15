"""Layout probes of a page open in the browser: what a reader at a given window size cannot see or reach.

* :func:`layout_problems`: elements that reach past the viewport without a scrolling frame of their own (the reader
  would have to scroll the whole page sideways, or never sees them), and tables wider than their column that are
  clipped: a wide table must scroll inside a visible frame (a border), keep its first column in view (sticky) and
  keep the frame's horizontal scroll bar reachable (a frame no taller than the window).
* :func:`print_problems`: the page laid out for print (``print`` media at a paper-like width): navigation, header
  and footer gone, every tab's content shown, nothing wider than the paper.
* :func:`initial_transfer`: what loading a page costs before the reader scrolls: each response's size by kind.

Playwright is only used through the ``page`` objects the callers pass in, so importing this needs the stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Page

_LAYOUT_JS = """
() => {
  const width = document.documentElement.clientWidth, height = window.innerHeight;
  const problems = [];
  const classes = el => typeof el.className === 'string' ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes(el).map(c => '.' + c).join('');
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const clips = el => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  const shown = el => { const s = getComputedStyle(el);
      return s.visibility !== 'hidden' && s.display !== 'none' && el.getClientRects().length > 0; };
  const inView = r => r.left >= -1 && r.right <= width + 1;
  // Material's own overlays and drawers sit off screen by design until opened.
  const OFF_PAGE = '[hidden], .md-search, .md-sidebar, .md-dialog, .md-tooltip2, .glightbox-container';
  // 1. Nothing reaches past the viewport unless an ancestor inside the viewport clips it (a scroll frame).
  for (const el of document.body.querySelectorAll('*')) {
    if (!shown(el) || el.closest(OFF_PAGE)) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || inView(box)) continue;
    let ancestor = el.parentElement, framed = false;
    while (ancestor && ancestor !== document.body) {
      if (clips(ancestor) && inView(ancestor.getBoundingClientRect())) { framed = true; break; }
      ancestor = ancestor.parentElement;
    }
    if (!framed) problems.push(`${name(el)} spans ${Math.round(box.left)}..${Math.round(box.right)} px ` +
                               `of a ${width} px window`);
  }
  // 2. A table wider than the space it has scrolls in a visible frame, first column sticky, scroll bar on screen.
  for (const table of document.querySelectorAll('article table')) {
    if (!shown(table)) continue;
    let frame = table.parentElement;
    while (frame && frame !== document.body && !clips(frame)) frame = frame.parentElement;
    const what = `table "${(table.querySelector('th, td') || table).textContent.trim().slice(0, 40)}"`;
    if (!frame || frame === document.body) {
      if (table.getBoundingClientRect().right > width + 1) problems.push(`${what} runs off the page, no frame`);
      continue;
    }
    if (table.offsetWidth <= frame.clientWidth + 1) continue;  // fits: nothing hidden
    const style = getComputedStyle(frame);
    if (!scrolls(frame)) {
      problems.push(`${what} is clipped by ${name(frame)} (overflow ${style.overflowX})`);
      continue;
    }
    if (frame.scrollWidth + 1 < table.offsetWidth)
      problems.push(`${what}: its frame scrolls only ${frame.scrollWidth} of its ${table.offsetWidth} px`);
    const border = ['Top', 'Right', 'Bottom', 'Left'].some(side => parseFloat(style['border' + side + 'Width']) > 0);
    if (!border) problems.push(`${what} scrolls in a frame without a visible edge (${name(frame)} has no border)`);
    const first = table.querySelector('tbody tr td:first-child') || table.querySelector('tr > :first-child');
    if (first && getComputedStyle(first).position !== 'sticky')
      problems.push(`${what}: its first column scrolls away (not sticky)`);
    if (frame.getBoundingClientRect().height > height + 1)
      problems.push(`${what}: its frame is taller than the window, so its scroll bar is off screen`);
  }
  return problems;
}
"""


def layout_problems(page: Page) -> list[str]:
    """What the reader of ``page`` (already loaded, at its viewport size) cannot see or reach; empty when fine."""
    return list(page.evaluate(_LAYOUT_JS))


_PRINT_JS = """
() => {
  const problems = [];
  const visible = el => { const s = getComputedStyle(el);
      return s.display !== 'none' && s.visibility !== 'hidden' && el.getClientRects().length > 0; };
  for (const selector of ['.md-header', '.md-sidebar--primary', '.md-footer', '.md-search', '.xai-tools']) {
    for (const el of document.querySelectorAll(selector)) if (visible(el)) problems.push(`${selector} is printed`);
  }
  document.querySelectorAll('.tabbed-block').forEach((block, index) => {
    if (!visible(block)) problems.push(`tab content ${index + 1} is not printed`);
  });
  const width = document.documentElement.clientWidth;
  for (const el of document.querySelectorAll('article *')) {
    const box = el.getBoundingClientRect();
    if (visible(el) && box.width > 0 && box.right > width + 1) {
      problems.push(`${el.tagName.toLowerCase()} reaches ${Math.round(box.right)} px on a ${width} px page`);
      break;
    }
  }
  return problems;
}
"""


def print_problems(page: Page) -> list[str]:
    """``page`` under ``print`` media: navigation, header and footer hidden, every tab's content laid out, nothing
    wider than the page. The caller sets a paper-like viewport width (A4 at 96 dpi minus margins: ~720 px)."""
    page.emulate_media(media="print")
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    try:
        return list(page.evaluate(_PRINT_JS))
    finally:
        page.emulate_media(media="screen")


@dataclass
class Transfer:
    """The responses of one page load until the network settled: bytes per kind of resource, each URL once (the
    browser asks for some stylesheets twice and serves the second from its cache)."""

    url: str
    by_kind: dict[str, int] = field(default_factory=dict)
    """Bytes as served by the test server (it does not compress)."""
    gzipped: dict[str, int] = field(default_factory=dict)
    """The same gzip-compressed (level 6), as a static host such as GitHub Pages sends text; images as they are."""
    seen: set[str] = field(default_factory=set)
    images: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    @property
    def total_gzipped(self) -> int:
        return sum(self.gzipped.values())

    def as_record(self) -> dict[str, Any]:
        return {"url": self.url, "total": self.total, "total_gzipped": self.total_gzipped, "requests": len(self.seen),
                "images": self.images, "by_kind": dict(sorted(self.by_kind.items())),
                "gzipped_by_kind": dict(sorted(self.gzipped.items()))}  # fmt: skip


def _kind(resource_type: str, path: str) -> str:
    if "search_index" in path:
        return "search"
    if resource_type == "image":
        return "image"
    if resource_type == "document":
        return "html"
    if resource_type == "stylesheet" or path.endswith(".css"):
        return "css"
    if resource_type == "script" or path.endswith(".js"):
        return "js"
    return "other"


def initial_transfer(page: Page, url: str, *, settle_ms: int = 1500) -> Transfer:
    """Load ``url`` in ``page`` without scrolling and add up the body size of every response until the network is
    idle and ``settle_ms`` more have passed (the search worker fetches its index after the load event); lazy images
    below the fold stay unloaded. Kinds: ``html``, ``css``, ``js``, ``search`` (the search index), ``image``,
    ``other`` (sitemap, favicon)."""
    import gzip

    transfer = Transfer(url)
    origin = urlsplit(url).netloc

    def on_finished(request: Any) -> None:
        if urlsplit(request.url).netloc != origin or request.url in transfer.seen:
            return
        transfer.seen.add(request.url)  # before body(): waiting for it lets the same URL's second event in
        response = request.response()
        try:
            body = response.body() if response is not None else None
        except Exception:  # a redirect or an aborted request has no body
            body = None
        if body is None:
            return
        kind = _kind(request.resource_type, urlsplit(request.url).path)
        transfer.images += kind == "image"
        packed = len(body) if kind == "image" else len(gzip.compress(body, compresslevel=6, mtime=0))
        transfer.by_kind[kind] = transfer.by_kind.get(kind, 0) + len(body)
        transfer.gzipped[kind] = transfer.gzipped.get(kind, 0) + packed

    page.on("requestfinished", on_finished)
    try:
        page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(settle_ms)
    finally:
        page.remove_listener("requestfinished", on_finished)
    return transfer
