"""Fixtures shared by the browser tests of the built report (tests/test_site_browser.py, tests/test_site_reader.py):
the site under test, served once per worker, a desktop browser context at the size a reader's laptop has, the
screenshot folder, and what kind of page a URL is. Test modules import the fixtures they use by name.

Environment:

* ``XAI_BUILT_SITE``: built site to check instead of the smoke site this test run builds.
* ``XAI_SCREENSHOTS``: folder for the screenshots, the print PDF and the transfer measurements (CI keeps it as an
  artifact; default: a pytest temporary folder).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers.site_checks import ServedSite, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

DESKTOP = {"width": 1400, "height": 1000}
"""The window the issue's reader used: the report must use it (no ~680 px column) and clip nothing."""
PHONE = {
    "viewport": {"width": 412, "height": 892},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
PRINT_WIDTH = 720
"""A4 at 96 dpi less the default margins (~19 cm): the width a printed page lays out at."""

PAGE_TYPES = (
    ("home", re.compile(r"^$")),
    ("dissection", re.compile(r"^dissection/$")),
    ("catalogue", re.compile(r"^dissection/[^/]+/$")),
    ("explanations", re.compile(r"^explanations/$")),
    ("explained-image", re.compile(r"^explanations/image-[^/]+/$")),
    ("comparison", re.compile(r"^comparison/$")),
    ("methods", re.compile(r"^methods/$")),
)


def page_type(relative_url: str) -> str:
    """The kind of report page at ``relative_url`` (relative to the site root): ``home``, ``catalogue``, ... or
    ``other-<path>`` for a page of no known kind."""
    for name, pattern in PAGE_TYPES:
        if pattern.match(relative_url):
            return name
    return "other-" + (re.sub(r"[^a-z0-9]+", "-", relative_url.lower()).strip("-") or "page")


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


def catalogue_pages(built_site: Path) -> list[str]:
    """Relative URLs of the neuron catalogue pages (one per model and layer), sorted."""
    from tests.helpers.site_checks import neuron_pages, page_url

    return sorted(page_url(built_site, file) for file in neuron_pages(built_site))
