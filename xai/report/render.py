"""Render artifacts into the site's Markdown: one Jinja2 Environment, small templates, no computation.

The engine: it runs the page builders in :data:`BUILDERS` (each a ``xai.report.pages_*`` module with
``build(site) -> Built``, see :class:`xai.report.page.PageBuilder`), renders their pages, writes them atomically and
removes files a previous run generated that this run did not. Adding a page is one builder module plus one entry in
:data:`BUILDERS`. What builders share (``Page``, the filters, the Environment) lives in the leaf
:mod:`xai.report.page`, so no builder imports this module.

Figures: the builders request them through :func:`xai.report.figures.jobs.draw`; the render opens the figure queue
around the builders, so a figure whose inputs did not change is not drawn again and the others are drawn in
worker processes while the builders go on (:mod:`xai.report.figures.jobs`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment

from xai.cache import atomic_write_text
from xai.report import pages_compare, pages_dissect, pages_explain, pages_home
from xai.report.figures.jobs import QueueStats, figure_queue, resolve
from xai.report.page import Page, PageBuilder, Section, Site, make_environment

if TYPE_CHECKING:
    from xai.plan import RunPlan

GENERATED_LIST = ".generated.json"
"""Lists the files the last render wrote, so the next one can remove stale pages without touching others."""

BUILDERS: tuple[PageBuilder, ...] = (pages_dissect, pages_explain, pages_compare, pages_home)
"""In order: each builder sees the sections of those before it, so the home page (which lists them) comes last."""


def render_pages(
    pages: Iterable[Page], docs_dir: Path, run: dict[str, Any], environment: Environment | None = None
) -> list[str]:
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


@dataclass(frozen=True)
class Rendered:
    written: list[str]
    """Relative paths written: pages, then the assets the builders wrote (figures included)."""
    figures: QueueStats
    """How many figures were requested, found cached, drawn, and with how many workers."""


def render(
    run: dict[str, Any],
    artifacts: Mapping[str, Any],
    docs_dir: Path,
    plan: RunPlan,
    builders: Iterable[PageBuilder] = BUILDERS,
    *,
    workers: int | None = None,
    figure_cache: bool = True,
) -> Rendered:
    """:func:`render_report`, also returning the figure queue's counts.

    Args:
        workers: figure-drawing processes (None: every CPU this process may use; 1: serially in this process).
        figure_cache: False redraws every figure (the manifest is still written for the next render).
    """
    docs_dir.mkdir(parents=True, exist_ok=True)
    pages: list[Page] = []
    assets: list[str] = []
    sections: list[Section] = []
    with figure_queue(docs_dir, workers=workers, cache=figure_cache) as queue:
        for builder in builders:
            built = builder.build(Site(artifacts, docs_dir, run, plan, tuple(sections)))
            pages += built.pages
            assets += built.assets
            if built.section is not None:
                sections.append(built.section)
    pages = [Page(page.path, page.template, resolve(page.context)) for page in pages]
    written = render_pages(pages, docs_dir, run) + assets
    remove_stale(docs_dir, written)
    return Rendered(written, queue.stats)


def render_report(
    run: dict[str, Any],
    artifacts: Mapping[str, Any],
    docs_dir: Path,
    plan: RunPlan,
    builders: Iterable[PageBuilder] = BUILDERS,
    *,
    workers: int | None = None,
    figure_cache: bool = True,
) -> list[str]:
    """Draw figures and write every page of the report for ``artifacts`` (stage name -> that stage's artifacts) of
    the run ``plan`` into ``docs_dir``; return the relative paths written (pages, then the assets the builders
    wrote). Figures whose inputs did not change since the last render into ``docs_dir`` are not drawn again (see
    :func:`render`)."""
    return render(run, artifacts, docs_dir, plan, builders, workers=workers, figure_cache=figure_cache).written
