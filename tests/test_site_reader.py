"""What a reader does beyond reading, in headless Chromium on the built report (the smoke site of this test run, or
``XAI_BUILT_SITE``): filter and sort a neuron catalogue, link a filtered view, open a neuron the filter hid; how
much a catalogue page costs to open before scrolling; and print a page.

Results kept for CI's artifacts (``XAI_SCREENSHOTS``, tests/helpers/site_session.py): ``catalogue-filtered.png``,
``catalogue-transfer.json`` (each catalogue page's initial transfer by kind, as served and gzipped) and
``explained-image-print.pdf``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.helpers import site_session
from tests.helpers.site_checks import ServedSite, browser_unavailable_reason
from tests.helpers.site_layout import initial_transfer, print_problems
from tests.helpers.site_session import DESKTOP, PRINT_WIDTH, catalogue_pages

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

_UNAVAILABLE = browser_unavailable_reason()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        _UNAVAILABLE is not None and os.environ.get("XAI_REQUIRE_BROWSER") != "1",
        reason=f"browser checks need Chromium + playwright: {_UNAVAILABLE}",
    ),
]

# The shared fixtures (tests/helpers/site_session.py), under their own names so pytest finds them here.
built_site = site_session.built_site
desktop_context = site_session.desktop_context
page = site_session.page
screenshot_dir = site_session.screenshot_dir
served_site = site_session.served_site

INITIAL_IMAGES_MAX = 60
"""Strips a catalogue page may fetch before the reader scrolls (lazy loading; the 1400x1000 window shows ~12)."""
INITIAL_GZIPPED_MAX = 1_000_000
"""Bytes a catalogue page may cost before scrolling, text gzipped as a static host sends it (~0.45 MB measured
for 512 and 1000 neurons: the page, Material's CSS and JS, the search index and ~30 strips)."""
HTML_PER_NEURON_MAX = 800
"""Bytes of page HTML per neuron card (~700 measured; the old bold paragraphs cost ~500 but loaded every image)."""

_CARDS_JS = """
() => Array.from(document.querySelectorAll('.xai-unit'), card => ({
  unit: Number(card.dataset.unit), label: card.dataset.label, score: Number(card.dataset.score),
  weak: card.classList.contains('xai-unit--weak'), visible: !card.hidden && card.getClientRects().length > 0,
}))
"""


def _cards(page: Page) -> list[dict]:
    return page.evaluate(_CARDS_JS)


def _shown(page: Page) -> list[int]:
    """Units of the visible cards, in page order."""
    return [card["unit"] for card in _cards(page) if card["visible"]]


def _count(page: Page) -> str:
    return page.locator(".xai-count").inner_text()


@pytest.fixture(scope="module")
def catalogue(built_site: Path) -> str:
    """The catalogue page the filter is tried on: the smoke site's ResNet18 layer4 (512 neurons) when present."""
    pages = catalogue_pages(built_site)
    if not pages:
        pytest.skip("no neuron catalogue page in this site")
    preferred = "dissection/resnet18_imagenet-layer4/"
    return preferred if preferred in pages else pages[0]


def test_catalogue_filter_sort_and_linkable_state(
    page: Page, served_site: ServedSite, catalogue: str, screenshot_dir: Path
) -> None:
    url = served_site.base_url + catalogue
    page.goto(url, wait_until="load")
    tools = page.locator(".xai-tools")
    tools.wait_for(state="visible")  # the script unhides the tools; without it they stay hidden
    cards = _cards(page)
    total = len(cards)
    assert total > 1 and _shown(page) == list(range(total)) and _count(page) == f"{total} neurons"

    # Filter by concept text: exactly the cards whose label contains it (case-insensitive), in unit order.
    label = cards[1]["label"]
    query = label[: max(3, len(label) - 1)].upper()
    page.locator(".xai-filter").fill(query)
    expected = [c["unit"] for c in cards if query.lower() in c["label"].lower()]
    assert 1 in expected and _shown(page) == expected
    assert _count(page) == f"{len(expected)} of {total} neurons"
    assert parse_qs(urlsplit(page.url).query)["filter"] == [query]
    page.screenshot(path=str(screenshot_dir / "catalogue-filtered.png"))

    # Sort by score: the same cards, best first (ties by unit).
    page.locator(".xai-sort").select_option("score")
    scores = {c["unit"]: c["score"] for c in cards}
    assert _shown(page) == sorted(expected, key=lambda unit: (-scores[unit], unit))

    # A unit number finds its card; a filter that matches nothing says so.
    page.locator(".xai-filter").fill("#7")
    assert _shown(page) == [7] and _count(page) == f"1 of {total} neurons"
    page.locator(".xai-filter").fill("no concept is called this")
    assert _shown(page) == [] and _count(page) == f"0 of {total} neurons"

    # Hide the faded neurons: only those above the layer's threshold remain.
    page.locator(".xai-filter").fill("")
    page.locator(".xai-hide-weak").check()
    strong = sorted((c for c in cards if not c["weak"]), key=lambda c: (-c["score"], c["unit"]))
    assert _shown(page) == [c["unit"] for c in strong]
    page.locator(".xai-hide-weak").uncheck()
    page.locator(".xai-sort").select_option("unit")
    assert _shown(page) == list(range(total))

    # The address holds the view: reloading with ?filter= and &sort= shows the same cards in the same order.
    page.goto(f"{url}?filter={quote(label)}&sort=score", wait_until="load")
    tools.wait_for(state="visible")
    same = sorted((c for c in cards if label.lower() in c["label"].lower()), key=lambda c: (-c["score"], c["unit"]))
    assert _shown(page) == [c["unit"] for c in same]

    # A chip of the most frequent labels filters by that label.
    chip = page.locator("[data-xai-filter]").first
    if chip.count():
        concept = chip.get_attribute("data-xai-filter")
        chip.click()
        assert page.locator(".xai-filter").input_value() == concept
        assert all(concept.lower() in c["label"].lower() for c in _cards(page) if c["visible"])


def test_opening_a_neuron_the_filter_hides_shows_it(page: Page, served_site: ServedSite, catalogue: str) -> None:
    url = served_site.base_url + catalogue
    page.goto(url, wait_until="load")
    page.locator(".xai-tools").wait_for(state="visible")
    cards = _cards(page)
    other = next(c for c in cards if c["label"] != cards[0]["label"])
    page.locator(".xai-filter").fill(other["label"])
    assert 0 not in _shown(page)
    page.evaluate("() => { window.location.hash = 'unit-0'; }")
    page.locator("#unit-0").wait_for(state="visible")
    assert page.locator(".xai-filter").input_value() == "" and 0 in _shown(page)


def test_catalogue_pages_load_little_before_the_reader_scrolls(
    chromium: Browser, served_site: ServedSite, built_site: Path, screenshot_dir: Path
) -> None:
    """Each catalogue page's initial transfer at 1400x1000: the strips load lazily (a few dozen, not every neuron's)
    and the whole stays under budget. The numbers go to catalogue-transfer.json for CI's artifacts."""
    pages = catalogue_pages(built_site)
    if not pages:
        pytest.skip("no neuron catalogue page in this site")
    records = []
    for relative in pages:
        context = chromium.new_context(viewport=DESKTOP)  # a fresh cache: a first visit
        try:
            page = context.new_page()
            transfer = initial_transfer(page, served_site.base_url + relative)
            neurons = page.locator(".xai-unit").count()
        finally:
            context.close()
        record = {**transfer.as_record(), "url": relative, "neurons": neurons}
        records.append(record)
    (screenshot_dir / "catalogue-transfer.json").write_text(json.dumps(records, indent=1))
    for record in records:
        where = f"{record['url']} ({record['neurons']} neurons)"
        assert 0 < record["images"] <= min(INITIAL_IMAGES_MAX, record["neurons"] // 2 or 1), f"{where}: {record}"
        assert record["total_gzipped"] <= INITIAL_GZIPPED_MAX, f"{where}: {record}"
        assert record["by_kind"]["html"] <= HTML_PER_NEURON_MAX * record["neurons"] + 100_000, f"{where}: {record}"


@pytest.fixture
def print_page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": PRINT_WIDTH, "height": 1000})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _first_page(built_site: Path, prefix: str) -> str | None:
    from tests.helpers.site_checks import crawl_pages, page_url

    return next((u for u in (page_url(built_site, f) for f in crawl_pages(built_site)) if u.startswith(prefix)), None)


def test_printing_gives_a_clean_document(
    print_page: Page, served_site: ServedSite, built_site: Path, screenshot_dir: Path
) -> None:
    """Under print media at a paper's width: no navigation, header or footer, every tab's content laid out, nothing
    wider than the paper; the explained-image page (tabs) and the comparison (wide tables). Saves that page's PDF."""
    checked = 0
    for prefix in ("explanations/image-", "comparison/"):
        relative = _first_page(built_site, prefix)
        if relative is None:
            continue
        print_page.goto(served_site.base_url + relative, wait_until="load")
        problems = print_problems(print_page)
        assert not problems, f"{relative} in print: {problems}"
        checked += 1
        if prefix == "explanations/image-":
            tabs = print_page.locator(".tabbed-block").count()
            assert tabs > 1, "the explained-image page has no tabs to print"
            print_page.pdf(path=str(screenshot_dir / "explained-image-print.pdf"), format="A4")
    if not os.environ.get("XAI_BUILT_SITE"):
        assert checked == 2
