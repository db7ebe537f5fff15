"""Task 1 pages: the dissection overview (statistics, comparison, self-check) and one catalogue page per
model x layer with every neuron, its label, score, runner-ups and top-image strip, anchored ``#unit-N``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.cache import atomic_write_text
from xai.report.figures.jobs import draw
from xai.report.page import Built, Page, Section, Site, fmt_number, fmt_percent, placeholder

if TYPE_CHECKING:
    from xai.dissect.analysis import LayerSummary
    from xai.dissect.artifacts import DissectArtifacts
    from xai.dissect.result import DissectionResult

TITLE = "Task 1 · Network dissection with CLIP-Dissect"
INDEX = "dissection/index.md"
ASSETS = "assets/dissection"
MODEL_TITLES = {"resnet18_imagenet": "ResNet18 (ImageNet)", "resnet18_places365": "ResNet18 (Places365)"}
"""Titles of the paper's models (presets); any other model goes by its display name."""
PRESET_PAIR = ("resnet18_imagenet", "resnet18_places365")


def model_title(model: str) -> str:
    return MODEL_TITLES.get(model, model)


def catalogue_path(model: str, layer: str) -> str:
    return f"dissection/{model}-{layer}.md"


def highlights(dissected: DissectArtifacts) -> list[str]:
    """Per model its deepest conv layer's most frequent concept; the models' overlap; the fc self-checks."""
    from xai.dissect.findings import comparison_findings, self_check_findings

    sentences = []
    for model, summary in dissected.summaries.items():
        final = _final_layer(dissected, model)
        convs = [layer for layer in summary.layers if layer.layer != final] or list(summary.layers)
        layer = convs[-1]
        if layer.top_concepts:
            concept, count = layer.top_concepts[0]
            sentences.append(
                f"{model_title(model)}: the most frequent {layer.layer} concept is '{concept}' "
                f"({count} of {layer.n_units} neurons); {layer.n_distinct} distinct concepts label that layer and "
                f"{fmt_percent(layer.interpretable_fraction)} of its neurons clear the interpretability threshold."
            )
    if dissected.comparison is not None:
        sentences += comparison_findings(dissected.comparison)[-1:]
    for check in dissected.self_checks.values():
        sentences += self_check_findings(check)
    return sentences


def answers(dissected: DissectArtifacts) -> list[dict[str, Any]]:
    """The assignment's three questions, each answered with sentences built from the computed summaries."""
    most, distinct, differ = [], [], []
    for model, summary in dissected.summaries.items():
        title = model_title(model)
        tops = [
            f"{layer.layer}: '{layer.top_concepts[0][0]}' ({layer.top_concepts[0][1]} of {layer.n_units})"
            for layer in summary.layers
            if layer.top_concepts
        ]
        most.append(f"{title}, most frequent label per layer — {'; '.join(tops)}.")
        objects = {layer.layer: dict(layer.category_counts).get("object", 0) for layer in summary.layers}
        distinct.append(
            f"{title}: "
            + "; ".join(
                f"{layer.layer} {layer.n_distinct} distinct concepts ({objects[layer.layer]} neurons labelled with an "
                f"object concept)"
                for layer in summary.layers
            )
            + "."
        )
    if dissected.comparison is not None:
        from xai.dissect.findings import comparison_findings

        overall = next((o for o in dissected.comparison.layers if o.layer == "all"), None)
        if overall is not None:
            distinct.append(
                f"Over all dissected layers: {overall.n_distinct_a} distinct concepts for "
                f"{model_title(dissected.comparison.model_a)} and "
                f"{overall.n_distinct_b} for "
                f"{model_title(dissected.comparison.model_b)}."
            )
        differ += comparison_findings(dissected.comparison)
    for model, summary in dissected.summaries.items():
        shares = []
        for layer in summary.layers:
            counts = dict(layer.category_counts)
            shares.append(
                f"{layer.layer} {fmt_percent(counts.get('scene', 0) / layer.n_units)} scene, "
                f"{fmt_percent(counts.get('object', 0) / layer.n_units)} object"
            )
        differ.append(f"{model_title(model)} label categories: {'; '.join(shares)}.")
    names = tuple(dissected.summaries)[:2]
    if names == PRESET_PAIR:
        differ_question = "How do the ImageNet and Places365 models differ?"
    elif len(names) == 2:
        differ_question = f"How do {model_title(names[0])} and {model_title(names[1])} differ?"
    else:
        differ_question = "Which kinds of concepts do the labels cover?"
    return [
        {"question": "Which concepts do most neurons learn?", "answer": most},
        {"question": "How many different concepts (objects) does each model learn?", "answer": distinct},
        {"question": differ_question, "answer": differ},
    ]


def _final_layer(dissected: DissectArtifacts, model: str) -> str | None:
    info = dissected.models.get(model)
    return info.layers.final_layer if info is not None else None


def model_rows(dissected: DissectArtifacts) -> list[list[Any]]:
    """Per model: title, architecture, weights, the weights member with the probe images' preprocessing, dissected
    layers with their pooling, and the final layer."""
    from xai.dissect.layers import pooling_words

    rows = []
    for name, info in dissected.models.items():
        layers = ", ".join(
            f"`{layer}` ({pooling_words(kind, dissected.pool)})"
            for layer, kind in zip(info.layers.layers, info.layers.pooling, strict=True)
        )
        rows.append(
            [
                model_title(name),
                f"`{info.architecture}`",
                info.weights_description,
                f"`{info.weights_member}`: {info.preprocessing}",
                layers,
                f"`{info.layers.final_layer}`" if info.layers.final_layer else "not dissected",
            ]
        )
    return rows


def score_figures(dissected: DissectArtifacts) -> list[dict[str, Any]]:
    """One score histogram per layer (every model has it), or, when the models' layers differ, per position
    aligned from the last layer (as the comparison pairs them): file name, per-model layers, alt text."""
    results = list(dissected.results.values())
    lists = [[layer.layer for layer in result.layers] for result in results]
    figures = []
    if all(names == lists[0] for names in lists):
        for layer in lists[0]:
            figures.append({"file": f"scores-{layer}.png", "layers": [layer] * len(results), "alt": layer})
        return figures
    count = min(len(names) for names in lists)
    for position in range(count):
        layers = [names[len(names) - count + position] for names in lists]
        pairs = ", ".join(f"{r.model_name} {layer}" for r, layer in zip(results, layers, strict=True))
        figures.append({"file": f"scores-{position + 1}-of-{count}.png", "layers": layers, "alt": pairs})
    return figures


def self_check_rows(dissected: DissectArtifacts) -> list[list[Any]]:
    """Our fc self-check next to the paper's row for the same probe, or why no row is comparable."""
    from xai.dissect import paper

    n_probe = len(dissected.probe_paths)
    rows = []
    for check in dissected.self_checks.values():
        row = paper.comparable_row(
            check.model_name,
            dissected.probe_name,
            n_probe,
            similarity=check.similarity,
            scorable_rule=check.scorable_rule,
        )
        if row is None:
            published = ", ".join(f"{r.probe} ({r.n_probe:,} images)" for r in paper.PAPER_FC_ROWS[check.model_name])
            paper_top1 = paper_top5 = "–"
            if check.similarity != paper.PAPER_SIMILARITY:
                why = f"scored with {check.similarity or 'an unrecorded similarity'}, the paper with soft_wpmi"
            elif check.match == "string" and check.scorable_rule != paper.PLACES_SCORABLE_RULE:
                why = (
                    f"scorable classes by {check.scorable_rule or 'an unrecorded rule'}, the paper's by "
                    f"{paper.PLACES_SCORABLE_RULE}"
                )
            else:
                why = f"this probe is {dissected.probe_name} ({n_probe:,} images), the paper's {published}"
            source = f"none comparable: {why}"
        else:
            paper_top1, paper_top5 = fmt_percent(row.top1), fmt_percent(row.top5)
            source = f"{row.model}, probe {row.probe} ({row.source})"
        scored = f"{check.n_scored} of {check.n_units}"
        if check.scorable_rule and check.match == "string":
            scored += f" ({check.scorable_rule})"
        rows.append(
            [
                model_title(check.model_name),
                check.concept_set,
                check.match,
                scored,
                fmt_percent(check.top1_fraction),
                paper_top1,
                fmt_percent(check.top5_fraction),
                fmt_percent(check.top5_notebook_fraction),
                paper_top5,
                source,
            ]
        )
    return rows


def build(site: Site) -> Built:
    if "dissect" not in site.artifacts:
        return placeholder(TITLE, INDEX, "dissect")
    from xai.dissect.findings import dissection_findings
    from xai.dissect.result import to_csv_text
    from xai.report.figures import dissect as figures

    dissected: DissectArtifacts = site.artifacts["dissect"]
    docs_dir = site.docs_dir
    assets_dir = docs_dir / ASSETS
    written: list[str] = []

    def asset(name: str) -> Path:
        written.append(f"{ASSETS}/{name}")
        return assets_dir / name

    models = []
    pages: list[Page] = []
    for model, result in dissected.results.items():
        summary = dissected.summaries[model]
        csv_name = f"{model}-descriptions.csv"
        atomic_write_text(asset(csv_name), to_csv_text(result))
        layers = []
        for layer_summary in summary.layers:
            layer = layer_summary.layer
            figure = f"{model}-{layer}-concepts.png"
            draw(figures.concept_frequency_figure, layer_summary, model_title(model), path=asset(figure))
            layers.append(
                {
                    "name": layer,
                    "units": layer_summary.n_units,
                    "distinct": layer_summary.n_distinct,
                    "interpretable": fmt_percent(layer_summary.interpretable_fraction),
                    "threshold": fmt_number(layer_summary.threshold),
                    "redundancy": fmt_percent(layer_summary.duplicate_label_fraction),
                    "figure": figure,
                    "median": fmt_number(dict(layer_summary.score_stats)["median"]),
                    "top": [[concept, count] for concept, count in layer_summary.top_concepts[:20]],
                    "catalogue": catalogue_path(model, layer).removeprefix("dissection/"),
                }
            )
            pages.append(_catalogue_page(model, result, layer, layer_summary, dissected, docs_dir, asset))
        layer_rows = [
            [
                layer["name"],
                layer["units"],
                layer["distinct"],
                layer["interpretable"],
                layer["threshold"],
                layer["median"],
                layer["redundancy"],
                f"[{layer['units']} neurons]({layer['catalogue']})",
            ]
            for layer in layers
        ]
        models.append(
            {
                "name": model,
                "title": model_title(model),
                "csv": csv_name,
                "layers": layers,
                "layer_rows": layer_rows,
                "cross_layer": [[a, b, n, fmt_number(j)] for a, b, n, j in summary.cross_layer],
            }
        )
    scores = score_figures(dissected)
    for figure in scores:
        title = figure["layers"][0] if len(set(figure["layers"])) == 1 else " / ".join(figure["layers"])
        draw(
            figures.score_distribution_figure,
            list(dissected.results.values()),
            figure["layers"],
            path=asset(figure["file"]),
            title=title,
        )
    draw(figures.category_figure, list(dissected.summaries.values()), path=asset("categories.png"))
    comparison_rows = []
    if dissected.comparison is not None:
        draw(figures.overlap_figure, dissected.comparison, path=asset("overlap.png"))
        comparison_rows = [
            [
                o.pair,
                o.n_distinct_a,
                o.n_distinct_b,
                o.n_shared,
                o.n_unique_a,
                o.n_unique_b,
                fmt_number(o.jaccard),
                ", ".join(o.shared[:8]),
            ]
            for o in dissected.comparison.layers
        ]
    checks = self_check_rows(dissected)
    label_checks = [
        [
            model_title(c.model_name),
            dissected.concept_set,
            c.n_scored,
            fmt_percent(c.top1_fraction),
            fmt_percent(c.top5_fraction),
            fmt_number(c.mean_clip_cosine),
        ]
        for c in dissected.label_checks.values()
    ]
    summaries = list(dissected.summaries.values())
    context = {
        "title": TITLE,
        "models": models,
        "model_rows": model_rows(dissected),
        "score_figures": scores,
        "comparison_title": _comparison_title(dissected),
        "no_checks": [
            [model_title(name), info.no_self_check] for name, info in dissected.models.items() if info.no_self_check
        ],
        "any_tokens": any(info.layers.has_tokens for info in dissected.models.values()),
        "pool": dissected.pool,
        "comparison": dissected.comparison,
        "comparison_rows": comparison_rows,
        "checks": checks,
        "label_checks": label_checks,
        "probe": dissected.probe_name,
        "n_probe": len(dissected.probe_paths),
        "concept_set": dissected.concept_set,
        "n_concepts": len(next(iter(dissected.results.values())).concepts),
        "similarity": next(iter(dissected.results.values())).similarity,
        "findings": dissection_findings(summaries, dissected.comparison, list(dissected.self_checks.values())),
        "answers": answers(dissected),
        "assets": f"../{ASSETS}",
    }
    return Built(
        [Page(INDEX, "dissection.md.j2", context), *pages], written, Section(TITLE, INDEX, highlights(dissected))
    )


def _comparison_title(dissected: DissectArtifacts) -> str:
    comparison = dissected.comparison
    if comparison is None:
        return ""
    if (comparison.model_a, comparison.model_b) == PRESET_PAIR:
        return "ImageNet vs Places365"
    return f"{model_title(comparison.model_a)} vs {model_title(comparison.model_b)}"


def _catalogue_page(
    model: str,
    result: DissectionResult,
    layer: str,
    layer_summary: LayerSummary,
    dissected: DissectArtifacts,
    docs_dir: Path,
    asset: Callable[[str], Path],
) -> Page:
    from xai.report.figures import dissect as figures

    # one folder per model: two models may both have a layer3
    folder = docs_dir / ASSETS / "strips" / model
    dissection = result.layer(layer)
    strips = [figures.strip_name(layer, unit) for unit in range(dissection.n_units)]
    top, paths = figures.strip_inputs(result, layer, dissected.probe_paths)
    draw(figures.write_strips, top, paths, layer, folder, outputs=[folder / strip for strip in strips])
    for strip in strips:
        asset(f"strips/{model}/{strip}")
    threshold = layer_summary.threshold
    neurons = []
    for unit in range(dissection.n_units):
        concepts = [result.concepts[i] for i in dissection.concept_ids[unit]]
        scores = dissection.scores[unit]
        score = float(scores[0])
        neurons.append(
            {
                "unit": unit,
                "label": concepts[0],
                "score": fmt_number(score),
                "weak": not (score > threshold) if threshold == threshold else False,
                "runner_ups": [f"{c} ({fmt_number(float(s))})" for c, s in zip(concepts[1:], scores[1:], strict=True)],
                "strip": strips[unit],
                "top_images": [result.probe_ids[i] for i in dissection.top_images[unit][:5]],
            }
        )
    title = f"{model_title(model)} · {layer} neurons"
    # Each strip's size, so the lazy-loaded images keep their place in the grid before they arrive.
    shown = min(figures.STRIP_IMAGES, int(dissection.top_images.shape[1]))
    layers = [
        {"name": other.layer, "page": catalogue_path(model, other.layer).removeprefix("dissection/"),
         "current": other.layer == layer}
        for other in dissected.summaries[model].layers
    ]  # fmt: skip
    return Page(
        catalogue_path(model, layer),
        "catalogue.md.j2",
        {
            "title": title,
            "model": model,
            "layer": layer,
            "neurons": neurons,
            "threshold": fmt_number(threshold),
            "interpretable": fmt_percent(layer_summary.interpretable_fraction),
            "strips": f"../{ASSETS}/strips/{model}",
            "strip_width": shown * figures.THUMBNAIL_PX + (shown - 1) * figures.STRIP_GAP_PX,
            "strip_height": figures.THUMBNAIL_PX,
            "similarity": result.similarity,
            "model_title": model_title(model),
            "about": _model_about(dissected, model, layer),
            "layers": layers,
            "frequent": [(concept, count) for concept, count in layer_summary.top_concepts[:8] if count > 1],
        },
    )


def _model_about(dissected: DissectArtifacts, model: str, layer: str) -> str:
    """``resnet18, weights IMAGENET1K_V1; pooled: mean over all tokens`` for the catalogue's first line."""
    from xai.dissect.layers import pooling_words

    info = dissected.models.get(model)
    if info is None:
        return ""
    pooling = dict(zip(info.layers.layers, info.layers.pooling, strict=True)).get(layer)
    about = f"`{info.architecture}`, weights {info.weights_description}"
    return about + (f"; pooled per neuron: {pooling_words(pooling, dissected.pool)}" if pooling else "")
