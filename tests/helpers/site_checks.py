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

Run as a script for CI without pytest: ``python -m tests.helpers.site_checks site/`` prints the link problems and
exits non-zero when there are any.

The implementation lives in :mod:`site_links` (server and link checker), :mod:`site_browser_tools` (browser
helpers) and :mod:`site_fixture` (fixture site); this module re-exports their public names.
"""

from __future__ import annotations

import sys

from tests.helpers.site_browser_tools import (
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    SearchHit,
    browser_unavailable_reason,
    check_page,
    has_horizontal_scroll,
    launch,
    open_browser,
    search,
)
from tests.helpers.site_fixture import (
    FIXTURE_NEURON_PAGE,
    FIXTURE_SEARCH_WORD,
    _ramp_png,
    build_fixture_site,
    mkdocs_build,
    write_fixture_project,
)
from tests.helpers.site_links import (
    NEURON_ANCHOR,
    ServedSite,
    check_image_alt_text,
    check_links,
    crawl_pages,
    html_pages,
    is_neuron_page,
    neuron_pages,
    page_url,
    serve,
)

__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_PATH",
    "FIXTURE_NEURON_PAGE",
    "FIXTURE_SEARCH_WORD",
    "NEURON_ANCHOR",
    "SearchHit",
    "ServedSite",
    "_ramp_png",
    "browser_unavailable_reason",
    "build_fixture_site",
    "check_image_alt_text",
    "check_links",
    "check_page",
    "crawl_pages",
    "has_horizontal_scroll",
    "html_pages",
    "is_neuron_page",
    "launch",
    "main",
    "mkdocs_build",
    "neuron_pages",
    "open_browser",
    "page_url",
    "search",
    "serve",
    "write_fixture_project",
]


def main(argv: list[str]) -> int:
    """``python -m tests.helpers.site_checks SITE_DIR`` (from the repository root): print broken links and
    missing alt text; exit 1 if any."""
    if len(argv) != 1:
        print("usage: python -m tests.helpers.site_checks SITE_DIR", file=sys.stderr)
        return 2
    problems = check_links(argv[0]) + check_image_alt_text(argv[0])
    for problem in problems:
        print(problem)
    pages = len(html_pages(argv[0]))
    print(f"{len(problems)} problem(s) in {pages} page(s) of {argv[0]}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
