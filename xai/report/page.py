"""What every page builder shares, and the engine needs from none of them: the ``Page`` record, the builder
protocol (``Site`` in, ``Built`` out), the formatting filters and the one configured Jinja2 Environment.

A leaf module: it imports no page builder, so the engine (:mod:`xai.report.render`) and its builders
(``xai.report.pages_*``) both import it and never each other in a cycle.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from xai.report.blocks import MISSING, Answers, Code, Column, Estimate, Link, Test, value_of
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
    """One task's entry on the home page: its title, its index page and its answers (with their figure)."""

    title: str
    link: str
    """The section's index page, relative to the docs directory."""
    answers: Answers = field(default_factory=Answers)
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


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_number(value: Any, digits: int | None = 3) -> str:
    """Numbers for prose and tables: fixed decimals (3 by default), thousands separated integers, ``n/a`` for missing
    or NaN."""
    if _missing(value):
        return "n/a"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | numpy.bool_):
        return f"{int(value):,}"
    return f"{value:.{3 if digits is None else digits}f}"


def fmt_signed(value: Any, digits: int | None = 3) -> str:
    """A difference, always with its sign: ``+0.120``."""
    return "n/a" if _missing(value) else f"{value:+.{3 if digits is None else digits}f}"


def fmt_percent(value: Any, digits: int | None = 1) -> str:
    if _missing(value):
        return "n/a"
    return f"{100 * value:.{1 if digits is None else digits}f}%"


def fmt_share(value: Any, digits: int | None = 3) -> str:
    """A share as a percentage with significant digits: a random-weight bar can hold 0.035%."""
    return "n/a" if _missing(value) else f"{100 * value:.{3 if digits is None else digits}g}%"


def fmt_significant(value: Any, digits: int | None = 4) -> str:
    """Significant digits, for values that span many scales (contributions, margins: 1e-6 with random weights)."""
    return "n/a" if _missing(value) else f"{value:.{4 if digits is None else digits}g}"


def fmt_p(value: Any, digits: int | None = 2) -> str:
    """A p-value with two significant digits (``0.004``, ``0.12``, ``1``)."""
    return "n/a" if _missing(value) else f"{value:.{2 if digits is None else digits}g}"


def fmt_seconds(value: Any, digits: int | None = None) -> str:
    if value is None:
        return "n/a"
    if value < 0.001:  # a GPU's time per image: sub-millisecond, not "0 ms"
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def fmt_ratio(value: Any, digits: int | None = 2) -> str:
    """``2.31x``; ``n/a`` when there is none."""
    return "n/a" if _missing(value) or not value else f"{value:.{2 if digits is None else digits}f}x"


def fmt_compact(value: Any, digits: int | None = None) -> str:
    """The shortest exact form of a setting's number (``0.485``, ``1e-05``): ``g``."""
    return "n/a" if _missing(value) else f"{value:g}"


def fmt_estimate(value: Estimate, digits: int | None = 3) -> str:
    """``0.41 [0.33, 0.50]``: a mean and its 95% interval (the mean alone when no interval is defined)."""
    if _missing(value.value):
        return "n/a"
    interval = (
        ""
        if _missing(value.low) or _missing(value.high)
        else (f" [{fmt_number(value.low, digits)}, {fmt_number(value.high, digits)}]")
    )
    return f"{fmt_number(value.value, digits)}{interval}"


def fmt_test(value: Test, digits: int | None = 3) -> str:
    """``+0.120 [0.050, 0.200], p = 0.004, Holm 0.02 primary ✓``: the mean difference and its interval, the p of the
    table's side, then the family's Holm-adjusted p where the test is a claim (✓ when it is made); or why there is no
    test."""
    difference = value.difference
    if _missing(difference.value):
        return "n/a"
    signed = fmt_signed(difference.value, digits)
    p_value = value.p_greater if value.one_sided else value.p
    if _missing(p_value):
        return f"{signed} ({value.note})" if value.note else signed
    interval = (
        ""
        if _missing(difference.low) or _missing(difference.high)
        else (f" [{fmt_number(difference.low, digits)}, {fmt_number(difference.high, digits)}]")
    )
    text = f"{signed}{interval}, p = {fmt_p(p_value)}"
    if value.family and not _missing(value.p_holm):
        text += f", Holm {fmt_p(value.p_holm)} {value.family}{' ✓' if value.claimed else ''}"
    return text


def fmt_claim(value: Test, digits: int | None = 3) -> str:
    """A claim's cell: ``✓ +0.120 [0.050, 0.200], Holm 0.02`` (✓ when the claim is made), ``–`` where none was
    tested; the raw p-values are in the table of every test."""
    if not value.family or _missing(value.p_holm):
        return "–" if _missing(value.difference.value) else f"{fmt_signed(value.difference.value, digits)} (no claim)"
    difference = value.difference
    interval = (
        ""
        if _missing(difference.low) or _missing(difference.high)
        else (f" [{fmt_number(difference.low, digits)}, {fmt_number(difference.high, digits)}]")
    )
    mark = "✓ " if value.claimed else ""
    return f"{mark}{fmt_signed(difference.value, digits)}{interval}, Holm {fmt_p(value.p_holm)}"


def fmt_effect(value: Any, digits: int | None = 2) -> str:
    """A detectable effect: ``–`` where the family has no test of that side, ``none`` where no effect is detectable
    (the design cannot reach α), else the value."""
    if value is None:
        return "–"
    return "none" if not math.isfinite(value) else fmt_number(value, digits)


def fmt_list(value: Any, digits: int | None = None) -> str:
    """Items joined by commas (numbers with ``num``), ``none`` when empty."""
    items = [fmt_auto(item, digits) for item in value]
    return ", ".join(str(item) for item in items) if items else "none"


def fmt_median(value: Any, digits: int | None = 4) -> str:
    """A median over images with its order-statistic interval and n (``MedianInterval``): ``0.12 [0.05, 0.3] (n =
    10)``; ``n/a`` without images."""
    if value is None or not value.n:
        return "n/a"
    median = fmt_significant(value.median, digits)
    if _missing(value.low):
        return f"{median} (n = {value.n}; no interval below 6 images)"
    return f"{median} [{fmt_significant(value.low, digits)}, {fmt_significant(value.high, digits)}] (n = {value.n})"


def fmt_share_interval(value: Any, digits: int | None = 1) -> str:
    """A share of images with its Clopper-Pearson interval and count (``ShareInterval``): ``40.0% [12.2%, 73.8%]
    (4/10)``; ``n/a`` without images."""
    if value is None or not value.n:
        return "n/a"
    low, high = fmt_percent(value.low, digits), fmt_percent(value.high, digits)
    return f"{fmt_percent(value.share, digits)} [{low}, {high}] ({value.count}/{value.n})"


def fmt_range(value: Any, digits: int | None = 4) -> str:
    """A band ``(low, high)``, e.g. the 2.5% and 97.5% points of random draws: ``[-0.98, 0.0082]`` (significant
    digits); empty without one."""
    if value is None:
        return ""
    low, high = value
    return f"[{fmt_significant(low, digits)}, {fmt_significant(high, digits)}]"


def fmt_of(value: Any, digits: int | None = None) -> str:
    """A count out of a total ``(count, total)``: ``3 of 1,198``."""
    if value is None:
        return ""
    count, total = value
    return f"{fmt_number(count)} of {fmt_number(total)}"


def fmt_group(value: Any, digits: int | None = None) -> str:
    """Compact letters (methods sharing a letter are not separated); a dash where the method was not ranked."""
    return value if isinstance(value, str) and value else "–"


def fmt_yes_no(value: Any, digits: int | None = None) -> str:
    return "n/a" if value is None else "yes" if value else "no"


def fmt_auto(value: Any, digits: int | None = None) -> Any:
    """Format by type: links and code as Markdown, estimates and tests with their intervals, booleans as yes/no,
    numbers with ``num``, text as it is (escaped by ``cell``)."""
    if isinstance(value, Link):
        return Markup(f"[{md_text(value.text)}]({value.href})")
    if isinstance(value, Code):
        return Markup(f"`{escape(value.text)}`")
    if isinstance(value, Estimate):
        return fmt_estimate(value, digits)
    if isinstance(value, Test):
        return fmt_test(value, digits)
    if isinstance(value, bool | numpy.bool_):
        return fmt_yes_no(value)
    if isinstance(value, numbers.Integral):
        return fmt_number(int(value), digits)
    if isinstance(value, numbers.Real) or value is None:
        return fmt_number(None if value is None else float(value), digits)
    return value


FORMATS = {
    "auto": fmt_auto,
    "num": fmt_number,
    "signed": fmt_signed,
    "pct": fmt_percent,
    "share": fmt_share,
    "sig": fmt_significant,
    "p": fmt_p,
    "secs": fmt_seconds,
    "ratio": fmt_ratio,
    "compact": fmt_compact,
    "ci": fmt_estimate,
    "test": fmt_test,
    "claim": fmt_claim,
    "effect": fmt_effect,
    "group": fmt_group,
    "yesno": fmt_yes_no,
    "list": fmt_list,
    "range": fmt_range,
    "of": fmt_of,
    "median": fmt_median,
    "share_interval": fmt_share_interval,
}
"""A table column's ``format`` -> the filter that formats its values (each takes the value and ``digits``)."""


def cell_of(row: Any, column: Column) -> Markup:
    """The Markdown table cell of ``row`` under ``column``: its value, formatted by the column's filter, escaped."""
    value = value_of(row, column.key)
    if value is MISSING:
        raise KeyError(f"the row has no value for column {column.key!r}: {row!r}")
    if isinstance(value, str) and column.format not in ("auto", "group"):
        return md_cell(value)  # a word where a number would be ("not tested", "none"): shown as it is
    return md_cell(FORMATS[column.format](value, column.digits))


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
        signed=fmt_signed,
        pct=fmt_percent,
        share=fmt_share,
        sig=fmt_significant,
        p=fmt_p,
        secs=fmt_seconds,
        ratio=fmt_ratio,
        compact=fmt_compact,
        ci=fmt_estimate,
        test=fmt_test,
        claim=fmt_claim,
        effect=fmt_effect,
        group=fmt_group,
        yesno=fmt_yes_no,
        median=fmt_median,
        share_interval=fmt_share_interval,
        cell_of=cell_of,
        cell=md_cell,
        slug=slug,
        alt=alt_text,
        yaml_string=yaml_string,
        md_text=md_text,
        verbatim=verbatim,
    )
    return environment
