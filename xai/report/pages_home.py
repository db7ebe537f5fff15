"""Home and methods pages: what was run, the key findings of each task, run metadata, how to reproduce."""

from __future__ import annotations

from typing import Any

from xai.report.page import Built, Page, Site, fmt_seconds, md_text
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


def explained_row(site: Site) -> list[list[str]]:
    """The run-metadata row naming the explained model, its weights member and CAM target layer (when it ran)."""
    explained = site.artifacts.get("explain")
    if explained is None:
        return []
    architecture = f" (torchvision {explained.architecture})" if explained.architecture != explained.model else ""
    return [
        [
            "Explained model",
            f"{explained.model}{architecture}, weights {explained.weights_description}, preprocessing of "
            f"{explained.weights_member}, CAM target layer {explained.target_layer}",
        ]
    ]


def build(site: Site) -> Built:
    """The home page lists the sections the builders before it produced (``site.sections``), in their order."""
    from xai.explain.registry import METHODS

    run = site.run
    random_flag = " --weights random" if run["random_weights"] else ""
    home = Page(
        "index.md",
        "home.md.j2",
        {
            "title": home_title(run),
            "explained_row": explained_row(site),
            "sections": site.sections,
            "timings": [[stage, fmt_seconds(seconds)] for stage, seconds in run["timings"].items()],
            "batch_rows": [
                [
                    label,
                    choice["batch_size"],
                    BATCH_SOURCES.get(choice["source"], choice["source"]),
                    fmt_seconds(choice["per_image_s"]),
                    ", ".join(f"{size}: {fmt_seconds(sec)}" for size, sec in choice["timings"].items()),
                ]
                for label, choice in run.get("batch_sizes", {}).items()
            ],
            "torch_threads": run.get("torch_threads"),
            "images": [
                [image["name"], md_text(image.get("file", image["name"])), image["sha256"]] for image in run["images"]
            ],
            "skipped_rows": [[md_text(skipped["path"]), md_text(skipped["reason"])] for skipped in run["skipped"]],
            "reproduce_command": f"pip install -e . && python generate.py --config configs/{run['config_name']}.yaml"
            f"{random_flag}",
        },
    )
    config = run["config"]
    methods = Page(
        "methods.md",
        "methods.md.j2",
        {
            "title": "Methods and limitations",
            "method_rows": [
                [
                    info.title,
                    info.family,
                    "yes" if info.needs_gradients else "no",
                    "yes" if info.required else "no",
                    info.cost,
                    info.summary,
                    info.paper,
                ]
                for info in METHODS.values()
            ],
            "parameter_rows": _flatten(config, ("explain", "compare", "dissect")),
            "similarity": config["dissect"]["similarity"],
            **methods_context(site.plan, site.artifacts),
            "concepts": concepts_methods(site.plan, site.artifacts.get("concepts")),
        },
    )
    return Built([home, methods])


def _flatten(config: dict[str, Any], sections: tuple[str, ...]) -> list[list[str]]:
    rows = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        else:
            rows.append([prefix, ", ".join(map(str, value)) if isinstance(value, list) else str(value)])

    for section in sections:
        walk(section, config[section])
    return rows
