"""A small MkDocs Material fixture site to prove the site checks on (stand-in for the real report).

Public names are re-exported by :mod:`tests.helpers.site_checks`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def build_docs_site(docs: Path, site: Path) -> None:
    """``mkdocs build --strict`` of generated site sources in ``docs`` into ``site``, with the repository's
    mkdocs.yml and stylesheet (its ``!ENV`` tags dropped); fails with MkDocs' log on any warning."""
    import shutil

    import yaml

    repo = Path(__file__).resolve().parents[2]
    mkdocs_yaml = yaml.safe_load((repo / "mkdocs.yml").read_text().replace("!ENV", ""))
    mkdocs_yaml.update(docs_dir=str(docs), site_url="http://127.0.0.1/")
    mkdocs_yaml["extra_css"] = ["stylesheets/extra.css"]
    shutil.copytree(repo / "docs" / "stylesheets", docs / "stylesheets", dirs_exist_ok=True)
    config = docs.parent / "mkdocs.yml"
    config.write_text(yaml.safe_dump(mkdocs_yaml, allow_unicode=True))
    built = mkdocs_build(config, site, strict=True)
    assert built.returncode == 0, built.stdout + built.stderr


ZENSICAL_REQUIREMENT = "zensical>=0.1.3"
"""Zensical, Material for MkDocs' successor (Material reaches end of life on 2027-05-05): it builds a site from the
same mkdocs.yml. Every release from 0.0.74 on requires ``zensical-ui``, which the package index lacks today."""


def build_docs_site_zensical(docs: Path, site_name: str = "site-zensical") -> Path:
    """Zensical's strict build of the generated site sources in ``docs`` with the repository's mkdocs.yml (as
    :func:`build_docs_site` writes it for MkDocs), into ``docs.parent / site_name`` (Zensical keeps the site inside
    the project folder). Returns the built site; raises with Zensical's output on failure."""
    import shutil

    import yaml

    repo = Path(__file__).resolve().parents[2]
    mkdocs_yaml = yaml.safe_load((repo / "mkdocs.yml").read_text().replace("!ENV", ""))
    mkdocs_yaml.update(docs_dir=docs.name, site_dir=site_name, site_url="http://127.0.0.1/")
    shutil.copytree(repo / "docs" / "stylesheets", docs / "stylesheets", dirs_exist_ok=True)
    config = docs.parent / "zensical-mkdocs.yml"
    config.write_text(yaml.safe_dump(mkdocs_yaml, allow_unicode=True))
    command = [sys.executable, "-m", "zensical", "build", "--strict", "-f", str(config)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=docs.parent, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"zensical build failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return docs.parent / site_name
