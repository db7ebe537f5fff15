"""Zensical, Material for MkDocs' successor (Material's end of life: 2027-05-05), builds the smoke site from the same
mkdocs.yml, and the built site passes the offline link check: moving is then a one-line change.

Today every Zensical release from 0.0.74 on requires ``zensical-ui``, which the package index lacks, so it cannot be
installed and this test skips saying so. CI (.ci/run) tries the install on every run and sets
``XAI_REQUIRE_ZENSICAL=1`` when it succeeds, so the test runs, and must pass, from the day it installs.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from tests.helpers.site_fixture import ZENSICAL_REQUIREMENT, build_docs_site_zensical
from tests.helpers.site_links import check_links, html_pages
from tests.helpers.smoke import SmokeSite

pytestmark = [pytest.mark.slow]


def test_zensical_builds_the_smoke_site(smoke_site: SmokeSite) -> None:
    if importlib.util.find_spec("zensical") is None:
        reason = f"zensical is not installed (pip install '{ZENSICAL_REQUIREMENT}'; it needs zensical-ui)"
        if os.environ.get("XAI_REQUIRE_ZENSICAL") == "1":
            pytest.fail(f"XAI_REQUIRE_ZENSICAL=1 but {reason}")
        pytest.skip(reason)
    site = build_docs_site_zensical(smoke_site.docs)
    mkdocs_pages = {page.relative_to(smoke_site.site.resolve()) for page in html_pages(smoke_site.site)}
    zensical_pages = {page.relative_to(site.resolve()) for page in html_pages(site)}
    assert mkdocs_pages - {p for p in mkdocs_pages if p.name == "404.html"} <= zensical_pages
    catalogue = (site / "dissection" / "resnet18_imagenet-layer4" / "index.html").read_text()
    assert all(f'id="unit-{unit}"' in catalogue for unit in (0, 511)) and "report.js" in catalogue
    assert check_links(site) == []
