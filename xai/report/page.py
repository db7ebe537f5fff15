"""What every page builder shares, and the engine needs from none of them: the ``Page`` record, the builder
protocol (``Site`` in, ``Built`` out), the formatting filters and the one configured Jinja2 Environment.

A leaf module: it imports no page builder, so the engine (:mod:`xai.report.render`) and its builders
(``xai.report.pages_*``) both import it and never each other in a cycle.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from xai.resources import template_dir

if TYPE_CHECKING:
    from xai.plan import RunPlan

TEMPLATE_DIR = template_dir()
"""The root ``templates/`` of a checkout, or the installed wheel's copy (:mod:`xai.resources`)."""


@dataclass(frozen=True)
class Page:
    path: str
    """Relative to the docs directory, e.g. ``dissection/index.md``."""
    template: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One task's entry on the home page: its title, its index page and its headline findings."""

    title: str
    link: str
    """The section's index page, relative to the docs directory."""
    findings: list[str] = field(default_factory=list)
    """Empty when the task's stage did not run in this build."""


@dataclass(frozen=True)
class Site:
    """What a page builder reads: the run's plan and artifacts, where files go, the run record, what came before."""

    artifacts: Mapping[str, Any]
    """Stage name -> that stage's artifacts (``DissectArtifacts``, ``ExplainArtifacts``, ``CompareArtifacts``);
    a stage that did not run in this build is absent."""
    docs_dir: Path
    run: dict[str, Any]
    """The run record (:func:`xai.pipeline.run_record`), in every page's context as ``run``."""
    plan: RunPlan
    """The run plan: what the config resolved to (models, weights members, preprocessing, settings)."""
    sections: tuple[Section, ...] = ()
    """The sections the builders before this one produced, in builder order (the home page lists them)."""


@dataclass(frozen=True)
class Built:
    """A builder's output: the pages to render, the files it wrote itself, and its home-page section (if any)."""

    pages: list[Page]
    assets: list[str] = field(default_factory=list)
    """Figures and tables already written, relative to the docs directory."""
    section: Section | None = None


class PageBuilder(Protocol):
    """A page builder (a ``xai.report.pages_*`` module): draws its figures, returns its pages; computes nothing."""

    def build(self, site: Site) -> Built: ...


def placeholder(title: str, index: str, stage: str) -> Built:
    """The section of a stage that did not run in this build: one page saying how to add it, no findings."""
    page = Page(
        index, "placeholder.md.j2", {"title": title, "stage": stage, "reason": "This stage was not part of this build."}
    )
    return Built([page], section=Section(title, index))


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
    return Markup(str(escape(MARKDOWN_SPECIALS.sub(r"\\\1", str(value)))).replace("|", "&#124;").replace("\n", " "))


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
    environment.filters.update(
        num=fmt_number,
        pct=fmt_percent,
        secs=fmt_seconds,
        cell=md_cell,
        slug=slug,
        alt=alt_text,
        yaml_string=yaml_string,
        md_text=md_text,
        verbatim=verbatim,
    )
    return environment
