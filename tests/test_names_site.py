"""File names that break naive sites: HTML and Markdown specials, ``&``, ``#``, ``%``, spaces, unicode, a leading
dot, a 255-byte name and names that collide once slugged. The report of such a folder builds with
``mkdocs build --strict``, every link resolves, and no raw file name reaches the HTML unescaped."""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from xai.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow]

NAMES = [
    "<img src=x onerror=alert(1)> & #1 %20=.png",
    "*b* _i_ [l](y) {a} `c` !.png",
    "a b.png",
    "a_b.png",
    ".Über café 日本.png",
    "L" * 251 + ".png",
    "Case.png",
    "case.jpg",
    "index.png",
    "mean.jpg",  # ids that would name the section index and the mean-curves figure
]
LATIN1 = b"caf\xe9 latin1.png"
"""Not UTF-8 (a file copied from a Latin-1 system): explained, and shown as ``caf\\xe9 latin1.png``."""
BROKEN = "*x* <i>junk [a](b).jpg"
"""Listed among the skipped inputs, by name, escaped."""


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.helpers.site_checks import mkdocs_build

    work = tmp_path_factory.mktemp("names")
    images = work / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in NAMES:
        assert len(name.encode()) <= 255
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(images / name)
    (images / BROKEN).write_bytes(b"not an image")
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
        os.fsdecode(os.fsencode(images) + b"/" + LATIN1), format="PNG"
    )
    (images / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    docs = work / "docs"
    config = {
        "name": "names",
        "weights": "random",
        "stages": ["explain", "compare"],
        "output_dir": str(docs),
        "cache_dir": str(work / "cache"),
        "explain": {
            "methods": ["lime", "gradcam"],
            "batch_size": 16,
            "lime": {"num_samples": 10, "stability_seeds": 1},
        },
        "compare": {"faithfulness_steps": 2, "sanity_check": False},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["--config", str(work / "config.yaml"), "--images", str(images), "--quiet"]) == 0
    mkdocs_yaml = yaml.safe_load((REPO / "mkdocs.yml").read_text().replace("!ENV", ""))
    mkdocs_yaml.update(docs_dir=str(docs), site_url="http://127.0.0.1/")
    shutil.copytree(REPO / "docs" / "stylesheets", docs / "stylesheets", dirs_exist_ok=True)
    (work / "mkdocs.yml").write_text(yaml.safe_dump(mkdocs_yaml, allow_unicode=True))
    mkdocs_build(work / "mkdocs.yml", work / "site", strict=True)  # raises on any warning
    return {"docs": docs, "site": work / "site"}


def test_every_name_gets_its_own_page(site: dict[str, Path]) -> None:
    pages = [p for p in (site["docs"] / "explanations").glob("*.md") if p.name != "index.md"]
    assert len(pages) == len(NAMES) + 1  # and the Latin-1 name
    panels = list((site["docs"] / "assets" / "comparison").glob("panel-*.png"))
    assert len(panels) == len(NAMES) + 1
    curves = list((site["docs"] / "assets" / "comparison").glob("faithfulness-*.png"))
    assert len(curves) == len(NAMES) + 2  # one per image and the mean curves, none overwritten
    index = (site["docs"] / "explanations" / "index.md").read_text()
    assert "Tasks 2–3" in index and all(f"image-{i}.md" in index for i in ("index", "mean"))


def test_all_links_resolve(site: dict[str, Path]) -> None:
    from tests.helpers.site_checks import check_image_alt_text, check_links

    assert check_links(site["site"]) == []
    assert check_image_alt_text(site["site"]) == []


def test_no_raw_name_in_the_html_and_each_shown_escaped(site: dict[str, Path]) -> None:
    html = {p: p.read_text() for p in site["site"].rglob("*.html")}
    raw = NAMES[0].rsplit(".", 1)[0]
    assert not [p for p, text in html.items() if raw in text or "<img src=x" in text or "<i>junk" in text]
    sources = [src for text in html.values() for src in (_parse(text))]
    assert "x" not in sources  # the file name's <img> never became an element
    home = (site["site"] / "index.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; #1 %20=.png" in home  # shown, as text
    assert "*b* _i_ [l](y) {a} `c` !.png" in home  # literally: no emphasis, link or code span made of it
    assert ".Über café 日本.png" in home
    assert "*x* &lt;i&gt;junk [a](b).jpg: not an image" in home  # the skipped file, shown as text
    assert "caf\\xe9 latin1.png" in home and "1 file-manager file(s)" in home
    assert str(site["docs"].parent / "images") + "/" not in home  # skipped files shown relative to the folder


def _parse(text: str) -> list[str]:
    parser = _Images()
    parser.feed(text)
    return parser.sources
