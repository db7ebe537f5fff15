"""Home and methods pages: each task's answers first, then what was run (run metadata), how to reproduce; the
methods page with every method, this run's parameters and each task's protocol."""

from __future__ import annotations

from typing import Any

from xai.report.blocks import table
from xai.report.page import Built, Page, Site
from xai.report.pages_compare import methods_context
from xai.report.pages_concepts import methods_context as concepts_methods

BATCH_SOURCES = {
    "configured": "config",
    "measured": "auto (measured in this run)",
    "cached": "auto (cached, measured earlier)",
}
"""How a batch size was chosen (:data:`xai.batching.Source`), as the home page says it."""


def classifier_names(run: dict[str, Any]) -> list[str]:
    """The classifiers this run loaded (display names, explained model first, then the dissected ones), from the
    run record's weights table; CLIP is a tool of dissection, not a model the report explains."""
    return [name for name in run.get("weights_ids", {}) if name != "clip"]


def spoken_list(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def home_title(run: dict[str, Any]) -> str:
    """``Explaining resnet50, resnet18_imagenet and resnet18_places365: dissection, LIME and CAMs``."""
    names = classifier_names(run)
    return f"Explaining {spoken_list(names) if names else 'image classifiers'}: dissection, LIME and CAMs"


def build(site: Site) -> Built:
    """The home page lists the sections the builders before it produced (``site.sections``), in their order: each
    task's answers with their figure, then the run record (the template reads it: formatting is the template's)."""
    from xai.explain.registry import METHODS

    home = Page(
        "index.md",
        "home.md.j2",
        {
            "title": home_title(site.run),
            "explained": site.artifacts.get("explain"),
            "sections": site.sections,
            "batch_sources": BATCH_SOURCES,
        },
    )
    config = site.run["config"]
    methods = Page(
        "methods.md",
        "methods.md.j2",
        {
            "title": "Methods and limitations",
            "methods": table(
                list(METHODS.values()),
                ("Method", "title"),
                ("Family", "family"),
                ("Needs gradients", "needs_gradients", "yesno"),
                ("Required by the assignment", "required", "yesno"),
                ("Cost per image", "cost"),
                ("What it computes", "summary"),
                ("Paper", "paper"),
            ),
            "parameters": table(
                _flatten(config, ("explain", "compare", "dissect")), ("Parameter", "parameter"), ("Value", "value")
            ),
            "similarity": config["dissect"]["similarity"],
            **methods_context(site.plan, site.artifacts),
            "concepts": concepts_methods(site.plan, site.artifacts.get("concepts")),
        },
    )
    return Built([home, methods])


def _flatten(config: dict[str, Any], sections: tuple[str, ...]) -> list[dict[str, str]]:
    """Every setting under ``sections``: its dotted key and its value as a config writes it."""
    rows = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        else:
            rows.append(
                {"parameter": prefix, "value": ", ".join(map(str, value)) if isinstance(value, list) else str(value)}
            )

    for section in sections:
        walk(section, config[section])
    return rows
