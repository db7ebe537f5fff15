"""Render artifacts into the site's Markdown: one Jinja2 Environment, small templates, no computation.

Pages are produced by page builders (``xai.report.pages_*``): each takes artifacts, draws its figures with the
figure makers and returns ``Page`` objects (output path, template, context). This module owns the Environment,
the filters, writing (atomic), and removing files a previous run generated that this run did not.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from xai.cache import atomic_write_text

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"
GENERATED_LIST = ".generated.json"
"""Lists the files the last render wrote, so the next one can remove stale pages without touching others."""


@dataclass(frozen=True)
class Page:
    path: str
    """Relative to the docs directory, e.g. ``dissection/index.md``."""
    template: str
    context: dict[str, Any] = field(default_factory=dict)


def fmt_number(value: Any, digits: int = 3) -> str:
    """Numbers for prose and tables: fixed significant decimals, ``n/a`` for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def fmt_percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def fmt_seconds(value: Any) -> str:
    if value is None:
        return "n/a"
    if value < 0.001:  # a GPU's time per image: sub-millisecond, not "0 ms"
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()])")
"""The inline Markdown characters (emphasis, code, links, attribute lists), backslash-escaped. ``md_text`` is only
used inline, where ``#``, ``+``, ``-``, ``.`` and ``!`` (without a ``[``) mean nothing; ``<``, ``>`` and ``&`` are
HTML-escaped."""


def md_text(value: Any) -> Markup:
    """User text (a file name) shown literally: Markdown specials backslash-escaped, then HTML-escaped.

    ``<b>*a*_[x](y).png`` renders as those characters, never as markup, a link or emphasis."""
    return Markup(str(escape(MARKDOWN_SPECIALS.sub(r"\\\1", str(value)))).replace("|", "&#124;")
                  .replace("\n", " "))


def md_cell(value: Any) -> Markup:
    """Escape for HTML and for a Markdown table cell (pipes and newlines would break the row); already-escaped
    Markup (``md_text``) passes through."""
    text = str(escape(value if isinstance(value, Markup) else str(value)))
    return Markup(text.replace("|", "&#124;").replace("\n", " "))


def alt_text(value: Any) -> Markup:
    """Alt text inside ``![...]``: brackets would end the link early and newlines the paragraph."""
    text = str(escape(str(value)))
    return Markup(text.replace("[", "(").replace("]", ")").replace("\n", " "))


def yaml_string(value: Any) -> Markup:
    """A double-quoted scalar for the page's YAML front matter (a colon in a title would break plain YAML)."""
    return Markup(json.dumps(str(value), ensure_ascii=False))


def verbatim(value: Any) -> Markup:
    """Text for a fenced code block, where Markdown shows characters literally and escaping would show ``&amp;``."""
    return Markup(str(value))


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "item"


def make_environment(template_dir: Path = TEMPLATE_DIR) -> Environment:
    """The one configured Environment: a missing value fails the build; values are HTML-escaped."""
    environment = Environment(
        loader=FileSystemLoader(str(template_dir)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("md.j2", "html.j2"), default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(num=fmt_number, pct=fmt_percent, secs=fmt_seconds, cell=md_cell, slug=slug, alt=alt_text,
                               yaml_string=yaml_string, md_text=md_text,
                               verbatim=verbatim)
    return environment


def render_pages(pages: Iterable[Page], docs_dir: Path, run: dict[str, Any],
                 environment: Environment | None = None) -> list[str]:
    """Render every page with ``run`` in its context; return the relative paths written."""
    environment = environment or make_environment()
    written = []
    for page in pages:
        depth = page.path.count("/")
        context = {"run": run, "root": "../" * depth, **page.context}
        text = environment.get_template(page.template).render(context)
        atomic_write_text(docs_dir / page.path, text.rstrip("\n") + "\n")
        written.append(page.path)
    return written


def remove_stale(docs_dir: Path, written: list[str]) -> None:
    """Delete files the previous render generated that this one did not (never files we did not write)."""
    listing = docs_dir / GENERATED_LIST
    previous = set(json.loads(listing.read_text())) if listing.is_file() else set()
    for relative in sorted(previous - set(written)):
        (docs_dir / relative).unlink(missing_ok=True)
    atomic_write_text(listing, json.dumps(sorted(written), indent=0))


def render_report(run: dict[str, Any], artifacts: dict[str, Any], docs_dir: Path) -> list[str]:
    """Draw figures and write every page of the report for ``artifacts`` into ``docs_dir``."""
    from xai.report import pages_compare, pages_dissect, pages_explain, pages_home

    docs_dir.mkdir(parents=True, exist_ok=True)
    pages: list[Page] = []
    assets: list[str] = []
    for builder in (pages_dissect, pages_explain, pages_compare):
        built_pages, built_assets = builder.build(artifacts, docs_dir, run)
        pages += built_pages
        assets += built_assets
    pages += pages_home.build(artifacts, run, pages)
    written = render_pages(pages, docs_dir, run) + assets
    remove_stale(docs_dir, written)
    return written
