"""Tasks 2-3 pages: an overview (grid, predictions, LIME fit and stability, timings) and one page per image
with a tab per method (the tabs follow the method registry's order)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.report.figures.jobs import draw
from xai.report.gallery import build_gallery
from xai.report.page import Built, Page, Section, Site, fmt_number, fmt_seconds, md_text, placeholder

if TYPE_CHECKING:
    from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult
    from xai.explain.explained import ExplainArtifacts, ExplainedImage

TITLE = "Tasks 2–3 · LIME and the CAM family"
INDEX = "explanations/index.md"
ASSETS = "assets/explanations"


def image_page(image_id: str) -> str:
    """The page of one image; ``image_id`` is already a slug (``xai.data.image_ids``), used as is everywhere.

    Prefixed so that no image (``index.png``) can take the section's own ``index.md``. Its figures need no
    prefix: they go in the folder ``assets/explanations/<id>/`` and the section's own assets are files with a
    suffix (``grid.png``), which no id (letters, digits and ``-``) can name."""
    return f"explanations/image-{image_id}.md"


def _prediction_label(item: ExplainedImage, categories: list[str]) -> tuple[str, float]:
    prediction = item.explanation.prediction
    return categories[prediction.top1], float(prediction.probabilities[0])


def highlights(explained: ExplainArtifacts) -> list[str]:
    """Sentences from the numbers: what was explained, LIME's fit and stability, the cost of each method."""
    if not explained.images:
        return ["No image could be explained."]
    sentences = []
    first = explained.images[0]
    label, probability = _prediction_label(first, explained.categories)
    sentences.append(
        f"{len(explained.images)} image(s) explained with {len(explained.methods)} methods; "
        f"for example {first.name} is predicted as '{label}' (p = {fmt_number(probability)})."
    )
    limes = [item.explanation.lime for item in explained.images if item.explanation.lime is not None]
    if limes:
        r2 = sum(lime.score for lime in limes) / len(limes)
        sentences.append(
            f"LIME's surrogate explains its own samples with a mean weighted R² of {fmt_number(r2)} "
            f"over {len(limes)} image(s)."
        )
        stabilities = [item.explanation.stability for item in explained.images if item.explanation.stability]
        if stabilities:
            k = stabilities[0].ks[0]
            mean = sum(s.mean_jaccard[k] for s in stabilities) / len(stabilities)
            sentences.append(
                f"Across sampling seeds LIME's top-{k} superpixels overlap with a mean Jaccard index of "
                f"{fmt_number(mean)}."
            )
    timings = _method_timings(explained)
    if timings:
        slowest = max(timings, key=lambda row: row[1])
        sentences.append(
            f"The most expensive method is {slowest[0]}: {fmt_seconds(slowest[1])} and "
            f"{slowest[2]:,} forward passes per image on average."
        )
    return sentences


def _result(explanation: ImageExplanation, method: str) -> LimeResult | CamMap | None:
    """The LimeResult or CamMap of ``method`` (both carry ``seconds`` and ``forward_passes``), or None."""
    return explanation.result(method)


def _seconds(explanation: ImageExplanation, method: str) -> str:
    found = _result(explanation, method)
    return fmt_seconds(found.seconds) if found is not None else "n/a"


def _method_timings(explained: ExplainArtifacts) -> list[tuple[str, float, int, str]]:
    """(method title, mean seconds, mean forward passes, method name) per method over the images."""
    from xai.explain.registry import METHODS

    rows = []
    for method in explained.methods:
        runs = []
        for item in explained.images:
            found = _result(item.explanation, method)
            if found is not None:
                runs.append((found.seconds, found.forward_passes))
        if runs:
            rows.append(
                (
                    METHODS[method].title,
                    sum(r[0] for r in runs) / len(runs),
                    round(sum(r[1] for r in runs) / len(runs)),
                    method,
                )
            )
    return rows


def cost_rows(explained: ExplainArtifacts) -> tuple[list[list[str]], dict[str, Any] | None]:
    """The cost table (time, forward passes, floor, time/floor per method) and the batch size behind it, as the
    explain stage recorded them (:func:`xai.explain.explained.method_costs`): rendering computes nothing."""
    from xai.explain.registry import METHODS

    rows = [
        [
            METHODS[cost.method].title,
            fmt_seconds(cost.seconds),
            f"{cost.forward_passes:,}",
            fmt_seconds(cost.floor_s),
            f"{cost.ratio:.2f}x" if cost.ratio else "n/a",
        ]
        for cost in explained.costs
    ]
    behind = next((cost for cost in explained.costs if cost.batch_size is not None), None)
    batch = {"batch_size": behind.batch_size, "per_image_s": behind.per_image_s} if behind else None
    return rows, batch


def build(site: Site) -> Built:
    if "explain" not in site.artifacts:
        return placeholder(TITLE, INDEX, "explain")
    from xai.explain.registry import METHODS
    from xai.report import pages_concepts
    from xai.report.figures import explain as figures

    explained: ExplainArtifacts = site.artifacts["explain"]
    docs_dir = site.docs_dir
    categories = explained.categories
    written: list[str] = []
    pages: list[Page] = []
    concept_tabs, concept_assets = pages_concepts.image_tabs(site, ASSETS)  # issue #21's tab, when it ran
    written += concept_assets
    rows, lime_rows, image_links = [], [], []
    for item in explained.images:
        directory = docs_dir / ASSETS / item.name
        calls = figures.image_figure_calls(item.pixels, item.explanation, directory, categories=categories)
        for call in calls.values():
            draw(call.function, *call.args, path=call.path, **call.kwargs)
        paths = {name: call.path for name, call in calls.items()}
        written += [f"{ASSETS}/{item.name}/{path.name}" for path in paths.values()]
        label, probability = _prediction_label(item, categories)
        page = image_page(item.name)
        image_links.append(f"[{item.name}]({page.removeprefix('explanations/')})")
        rows.append([f"[{item.name}]({page.removeprefix('explanations/')})", label, fmt_number(probability)])
        lime = item.explanation.lime
        stability = item.explanation.stability
        if lime is not None:
            lime_rows.append(
                [
                    item.name,
                    categories[lime.label],
                    fmt_number(lime.score),
                    fmt_number(lime.local_pred),
                    fmt_number(lime.model_probability),
                    int(lime.weights.size),
                    *(fmt_number(stability.mean_jaccard[k]) if stability else "n/a" for k in lime.ks),
                ]
            )
        pages.append(_image_page(item, paths, explained, explained.methods, concept_tabs.get(item.name)))
    links = {item.name: image_page(item.name).removeprefix("explanations/") for item in explained.images}
    grid, gallery_files = build_gallery(explained, docs_dir / ASSETS, links)  # images x methods, one file per panel
    written += [f"{ASSETS}/{name}" for name in gallery_files]
    ks = explained.images[0].explanation.lime.ks if explained.images and explained.images[0].explanation.lime else ()
    titles = [METHODS[m].title for m in explained.methods]
    per_image = [[item.name, *(_seconds(item.explanation, m) for m in explained.methods)] for item in explained.images]
    timings, batch = cost_rows(explained)
    concepts, concept_csv = pages_concepts.section(
        site, ASSETS, lambda name: image_page(name).removeprefix("explanations/")
    )
    written += concept_csv
    context = {
        "concepts": concepts,
        "per_image_columns": ["Image", *titles],
        "per_image_timings": per_image,
        "title": TITLE,
        **model_facts(explained),
        "methods": [METHODS[m].title for m in explained.methods],
        "rows": rows,
        "lime_rows": lime_rows,
        "lime_columns": [
            "Image",
            "Explained class",
            "Surrogate R²",
            "Local prediction",
            "Model probability",
            "Superpixels",
            *(f"Stability top-{k} (Jaccard)" for k in ks),
        ],
        "timings": timings,
        "batch": batch,
        "grid": grid,
        "assets": f"../{ASSETS}",
        "failed": [list(row) for row in explained.failed],
        "findings": highlights(explained),
    }
    return Built(
        [Page(INDEX, "explanations.md.j2", context), *pages], written, Section(TITLE, INDEX, context["findings"])
    )


def model_facts(explained: ExplainArtifacts) -> dict[str, Any]:
    """What the pages say about the explained classifier, all from the artifacts: display name, architecture,
    weights, target layer (and why), its reshape, the preprocessing."""
    steps = explained.preprocessing
    facts = {
        "model": explained.model,
        "architecture": explained.architecture or explained.model,
        "weights_member": explained.weights_member,
        "weights_description": md_text(explained.weights_description),
        "target_layer": explained.target_layer,
        "target_reason": explained.target_reason,
        "target_channels": explained.target_channels,
        "reshape": explained.reshape,
        "classes": len(explained.categories),
        "preprocessing": (
            f"shorter side resized to {steps.resize} px ({steps.interpolation}, antialiased), centre crop "
            f"{steps.crop} px, normalised with mean {_values(steps.mean)} and std {_values(steps.std)}"
            if steps
            else ""
        ),
    }
    rows = [
        ["Model", explained.model],
        ["Architecture (torchvision)", facts["architecture"]],
        ["Weights enum member (architecture, classes, preprocessing)", explained.weights_member or "n/a"],
        # the description may hold a user's file name
        ["Weights", md_text(explained.weights_description) if explained.weights_description else "n/a"],
        ["Classes", f"{facts['classes']:,}"],
        ["CAM target layer", explained.target_layer],
        ["Why this layer", explained.target_reason or "set in the config"],
        ["Channels at the target layer", f"{explained.target_channels:,}" if explained.target_channels else "n/a"],
        [
            "Reshape before the CAM",
            f"{explained.reshape} (grad-cam's reshape_transform)"
            if explained.reshape
            else "none: the layer outputs maps",
        ],
        ["Preprocessing", facts["preprocessing"] or "n/a"],
    ]
    return {**facts, "model_rows": rows}


def _values(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{value:g}" for value in values) + ")"


def _image_page(
    item: ExplainedImage,
    paths: dict[str, Path],
    explained: ExplainArtifacts,
    methods: tuple[str, ...],
    concepts: dict[str, Any] | None = None,
) -> Page:
    from xai.explain.registry import METHODS

    categories = explained.categories
    explanation = item.explanation
    prediction = explanation.prediction
    top5 = [
        [categories[int(label)], fmt_number(float(p))]
        for label, p in zip(prediction.labels, prediction.probabilities, strict=True)
    ]
    tabs = []
    for method in methods:
        info = METHODS[method]
        if info.family == "lime" and explanation.lime is not None:
            lime = explanation.lime
            stability = explanation.stability
            tabs.append(
                {
                    "title": info.title,
                    "lime": True,
                    "summary": info.summary,
                    "figures": [
                        (
                            paths["lime_boundaries"].name,
                            f"LIME's top-{', '.join(map(str, lime.ks))} positive superpixels "
                            f"outlined in yellow on {item.name}",
                        ),
                        (
                            paths["lime_pros_cons"].name,
                            f"Superpixels for (green) and against (red) the class on {item.name}",
                        ),
                        (paths["lime_weights"].name, f"Heatmap of every superpixel's LIME weight on {item.name}"),
                    ],
                    "facts": [
                        ["Surrogate R² (weighted, on its samples)", fmt_number(lime.score)],
                        ["Surrogate local prediction", fmt_number(lime.local_pred)],
                        ["Model probability", fmt_number(lime.model_probability)],
                        ["Samples", f"{lime.num_samples:,}"],
                        ["Superpixels", int(lime.weights.size)],
                        *(
                            [
                                [
                                    f"Top-{k} stability across seeds {stability.seeds} (mean Jaccard)",
                                    fmt_number(stability.mean_jaccard[k]),
                                ]
                                for k in stability.ks
                            ]
                            if stability
                            else []
                        ),
                        ["Time", fmt_seconds(lime.seconds)],
                        ["Forward passes", f"{lime.forward_passes:,}"],
                    ],
                }
            )
        elif method in paths:
            cam = explanation.cam(method)
            tabs.append(
                {
                    "title": info.title,
                    "lime": False,
                    "summary": info.summary,
                    "figures": [
                        (
                            paths[method].name,
                            f"{info.title} map of class '{categories[cam.target_class]}' over {item.name}",
                        )
                    ],
                    "facts": [
                        ["Explained class", categories[cam.target_class]],
                        ["Time", fmt_seconds(cam.seconds)],
                        ["Forward passes", f"{cam.forward_passes:,}"],
                    ],
                }
            )
    return Page(
        image_page(item.name),
        "explained_image.md.j2",
        {
            "title": f"{item.name}: explanations",
            "name": item.name,
            "original": paths["original"].name,
            "file": md_text(getattr(item, "display", "") or item.name),
            "top5": top5,
            "tabs": tabs,
            "concepts": concepts,
            "assets": f"../{ASSETS}/{item.name}",
            **model_facts(explained),
        },
    )
