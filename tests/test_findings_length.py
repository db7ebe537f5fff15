"""Every finding is at most two lines of the report (issue #23): on the pages rendered from the golden artifacts
(tests/golden/, kept equal to the real builders' output by tests/test_golden_pages.py and
tests/test_concepts_pages.py) and on the smoke site's pages.

A finding is a list item of a generated page (an answer with its "Evidence" link, a finding, a caveat); the methods
page's list items are hand-written protocol, not findings. Its length is what the reader sees: links as their text,
Markdown escapes and HTML entities resolved. A line is :data:`LINE_CHARS` characters: the text column of the
report at 1400x1000 in Chromium holds about 76 characters of a list item (measured on the smoke site with Material's
default width), so two lines are :data:`FINDING_CHARS`.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests.helpers.smoke import SmokeSite

GOLDEN = Path(__file__).resolve().parent / "golden"
LINE_CHARS = 76
FINDING_CHARS = 2 * LINE_CHARS
ITEM = re.compile(r"^\s*- (.+)$")
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
PROTOCOL_PAGES = ("methods", "catalogue", "placeholder")
"""Pages whose list items are hand-written (the methods page's protocol), or that have none."""


def visible(item: str) -> str:
    """A list item as the reader sees it: links as their text, no emphasis or code marks, escapes resolved."""
    text = LINK.sub(r"\1", item)
    text = re.sub(r"\\(.)", r"\1", text).replace("**", "").replace("`", "")
    return html.unescape(text).strip()


def findings(markdown: str) -> list[str]:
    """Every list item of a generated page, as the reader sees it (fenced code left out)."""
    items, fenced = [], False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
        elif not fenced and (found := ITEM.match(line)):
            items.append(visible(found.group(1)))
    return items


def too_long(pages: dict[str, str]) -> list[str]:
    return [
        f"{name}: {len(item)} characters: {item}"
        for name, text in pages.items()
        for item in findings(text)
        if len(item) > FINDING_CHARS
    ]


def test_the_measure_reads_what_the_reader_sees() -> None:
    item = "  - Grad-CAM: IoU 0.47 &#39;a&#39; \\(x\\) `c` [Evidence](../comparison/index.md#agreement)"
    assert findings(f"text\n{item}\n```\n- not an item\n```\n") == ["Grad-CAM: IoU 0.47 'a' (x) c Evidence"]


def test_every_finding_of_the_golden_pages_fits_two_lines() -> None:
    pages = {path.name: path.read_text() for path in GOLDEN.glob("*.md") if not path.name.startswith(PROTOCOL_PAGES)}
    assert {"index__all_stages.md", "comparison__index.md", "dissection__index.md"} <= set(pages)
    assert sum(len(findings(text)) for text in pages.values()) > 50  # the pages do hold findings
    assert not too_long(pages)


@pytest.mark.slow
def test_every_finding_of_the_smoke_site_fits_two_lines(smoke_site: SmokeSite) -> None:
    pages = {
        str(path.relative_to(smoke_site.docs)): path.read_text()
        for path in smoke_site.docs.rglob("*.md")
        if not path.name.startswith(PROTOCOL_PAGES)
    }
    assert sum(len(findings(text)) for text in pages.values()) > 20
    assert not too_long(pages)
