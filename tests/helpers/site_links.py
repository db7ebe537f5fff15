"""A built static site, offline and over http: a local recording server and a stdlib-only link checker.

* :func:`serve` serves a built site on ``127.0.0.1`` (http, not ``file://``: Material's search worker and
  instant navigation need http) and records every request with its status, so a 404 cannot go unseen.
* :func:`check_links` walks the built HTML offline (stdlib only): every internal ``href``/``src``/``srcset``
  must resolve to a file, a directory ``index.html`` or a page, and every ``#fragment`` must exist as an
  ``id`` (or ``<a name>``) in its target page. External ``http(s)`` links are skipped: the check is offline.
  MkDocs' own ``validation`` only sees links written in Markdown syntax; raw-HTML ``<img>`` emitted by
  templates is not validated by ``mkdocs build --strict``, hence this checker over the *built* site.

Public names are re-exported by :mod:`tests.helpers.site_checks`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

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
