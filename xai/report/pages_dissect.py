"""Task 1 pages: the dissection overview (answers, statistics, comparison, self-check) and one catalogue page per
model x layer with every neuron, its label, score, runner-ups and top-image strip, anchored ``#unit-N``.

The overview's builder requests figures, writes the CSV files and hands the template typed objects (tables of the
summaries, the findings of :mod:`xai.dissect.findings`); it computes nothing and formats no number.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.cache import atomic_write_text
from xai.dissect.findings import MODEL_TITLES, model_title
from xai.report.blocks import Answer, Answers, Code, FigureRef, Link, table
from xai.report.figures.jobs import draw
from xai.report.page import Built, Page, Section, Site, fmt_number, fmt_percent, placeholder, slug

if TYPE_CHECKING:
    from xai.dissect.analysis import LayerSummary
    from xai.dissect.artifacts import DissectArtifacts
    from xai.dissect.result import DissectionResult

TITLE = "Task 1 · Network dissection with CLIP-Dissect"
INDEX = "dissection/index.md"
ASSETS = "assets/dissection"
PRESET_PAIR = ("resnet18_imagenet", "resnet18_places365")
ANCHORS = {"comparison": "comparison", "categories": "categories", "self_check": "self-check"}
"""An answer's topic -> the section of the overview holding its evidence (``model:<name>``: that model's section)."""
__all__ = ["MODEL_TITLES", "build", "catalogue_path", "model_title"]


def catalogue_path(model: str, layer: str) -> str:
    return f"dissection/{model}-{layer}.md"


def _anchor(topic: str) -> str:
    return slug(topic.removeprefix("model:")) if topic.startswith("model:") else ANCHORS[topic]


def answers(dissected: DissectArtifacts, figure: FigureRef | None) -> Answers:
    """Task 1's answers (:func:`xai.dissect.findings.answers`), each linked to the section with its evidence."""
    from xai.dissect.findings import answers as found

    finals = {name: info.layers.final_layer for name, info in dissected.models.items()}
    lines = found(dissected.summaries, finals, dissected.comparison, list(dissected.self_checks.values()))
    return Answers(tuple(Answer(line, f"{INDEX}#{_anchor(topic)}") for topic, line in lines), figure)


def model_rows(dissected: DissectArtifacts) -> list[dict[str, Any]]:
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
            {
                "title": model_title(name),
                "architecture": Code(info.architecture),
                "weights": info.weights_description,
                "member": f"`{info.weights_member}`: {info.preprocessing}",
                "layers": layers,
                "final": Code(info.layers.final_layer) if info.layers.final_layer else "not dissected",
            }
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
    # from the last layer, as the comparison pairs them; zip stops at the shortest list
    aligned = list(zip(*(names[::-1] for names in lists), strict=False))[::-1]
    for position, layers in enumerate(aligned):
        pairs = ", ".join(f"{r.model_name} {layer}" for r, layer in zip(results, layers, strict=True))
        figures.append({"file": f"scores-{position + 1}-of-{len(aligned)}.png", "layers": list(layers), "alt": pairs})
    return figures


def self_check_rows(dissected: DissectArtifacts) -> list[dict[str, Any]]:
    """Our fc self-check next to the paper's row for the same probe, or why no row is comparable."""
    from xai.dissect.findings import paper_row

    n_probe = len(dissected.probe_paths)
    rows = []
    for check in dissected.self_checks.values():
        row, source = paper_row(check, dissected.probe_name, n_probe)
        rows.append(
            {
                "check": check,
                "title": model_title(check.model_name),
                "rule": check.scorable_rule if check.scorable_rule and check.match == "string" else "",
                "paper_top1": row.top1 if row is not None else None,
                "paper_top5": row.top5 if row is not None else None,
                "source": source,
            }
        )
    return rows


def _layer_rows(model: str, summaries: tuple[LayerSummary, ...]) -> list[dict[str, Any]]:
    return [
        {
            "summary": layer,
            "median": dict(layer.score_stats)["median"],
            "catalogue": Link("all neurons", catalogue_path(model, layer.layer).removeprefix("dissection/")),
        }
        for layer in summaries
    ]


def build(site: Site) -> Built:
    if "dissect" not in site.artifacts:
        return placeholder(TITLE, INDEX, "dissect")
    from xai.dissect.findings import comparison_findings, model_findings, self_check_findings
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
                    "summary": layer_summary,
                    "figure": FigureRef(
                        f"{ASSETS}/{figure}",
                        f"Bar chart of the 20 most frequent concepts among {model_title(model)} {layer} neurons",
                    ),
                    "top": table(
                        [{"concept": c, "count": n} for c, n in layer_summary.top_concepts[:20]],
                        ("Concept", "concept"),
                        ("Neurons", "count"),
                    ),
                    "catalogue": catalogue_path(model, layer).removeprefix("dissection/"),
                }
            )
            pages.append(_catalogue_page(model, result, layer, layer_summary, dissected, docs_dir, asset))
        models.append(
            {
                "name": model,
                "anchor": slug(model),
                "title": model_title(model),
                "csv": Link(csv_name, f"../{ASSETS}/{csv_name}"),
                "layers": layers,
                "findings": model_findings(summary),
                "layer_table": table(
                    _layer_rows(model, summary.layers),
                    ("Layer", "summary.layer"),
                    ("Neurons", "summary.n_units"),
                    ("Distinct concepts", "summary.n_distinct"),
                    ("Interpretable", "summary.interpretable_fraction", "pct"),
                    ("Threshold", "summary.threshold", "num"),
                    ("Median score", "median", "num"),
                    ("Neurons sharing a label", "summary.duplicate_label_fraction", "pct"),
                    ("Catalogue", "catalogue"),
                ),
                "cross_layer": table(
                    [{"a": a, "b": b, "shared": n, "jaccard": j} for a, b, n, j in summary.cross_layer],
                    ("Layer", "a"),
                    ("Layer", "b"),
                    ("Shared concepts", "shared"),
                    ("Jaccard", "jaccard", "num"),
                ),
            }
        )
    scores = score_figures(dissected)
    score_refs = []
    for figure in scores:
        title = figure["layers"][0] if len(set(figure["layers"])) == 1 else " / ".join(figure["layers"])
        draw(
            figures.score_distribution_figure,
            list(dissected.results.values()),
            figure["layers"],
            path=asset(figure["file"]),
            title=title,
        )
        score_refs.append(
            FigureRef(
                f"{ASSETS}/{figure['file']}", f"Histogram of best-concept scores per model: {figure['alt']} neurons"
            )
        )
    draw(figures.category_figure, list(dissected.summaries.values()), path=asset("categories.png"))
    categories = FigureRef(
        f"{ASSETS}/categories.png",
        "Neurons per concept category (colour, texture, scene, object, other) per model and layer",
    )
    comparison = dissected.comparison
    comparison_table = None
    if comparison is not None:
        draw(figures.overlap_figure, comparison, path=asset("overlap.png"))
        comparison_table = table(
            [{"overlap": o, "shared": ", ".join(o.shared[:8])} for o in comparison.layers],
            ("Layer", "overlap.pair"),
            (f"Distinct ({comparison.model_a})", "overlap.n_distinct_a"),
            (f"Distinct ({comparison.model_b})", "overlap.n_distinct_b"),
            ("Shared", "overlap.n_shared"),
            (f"Only {comparison.model_a}", "overlap.n_unique_a"),
            (f"Only {comparison.model_b}", "overlap.n_unique_b"),
            ("Jaccard", "overlap.jaccard", "num"),
            ("Most frequent shared", "shared"),
        )
    found = answers(dissected, categories)
    context = {
        "title": TITLE,
        "answers": found,
        "models": models,
        "model_table": table(
            model_rows(dissected),
            ("Model", "title"),
            ("Architecture", "architecture"),
            ("Weights", "weights"),
            ("Weights member: probe preprocessing", "member"),
            ("Dissected layers (pooling)", "layers"),
            ("Final layer", "final"),
        ),
        "score_figures": score_refs,
        "categories": categories,
        "overlap": FigureRef(
            f"{ASSETS}/overlap.png", "Distinct, shared and unique concepts per layer for the two models"
        )
        if comparison is not None
        else None,
        "comparison_title": _comparison_title(dissected),
        "no_checks": table(
            [{"model": model_title(n), "why": i.no_self_check} for n, i in dissected.models.items() if i.no_self_check],
            ("Model", "model"),
            ("Why not", "why"),
        ),
        "any_tokens": any(info.layers.has_tokens for info in dissected.models.values()),
        "pool": dissected.pool,
        "comparison": comparison,
        "comparison_table": comparison_table,
        "comparison_findings": comparison_findings(comparison) if comparison is not None else [],
        "checks": table(
            self_check_rows(dissected),
            ("Model", "title"),
            ("Concept set", "check.concept_set"),
            ("Matching", "check.match"),
            ("Neurons scored", "check.n_scored"),
            ("Output neurons", "check.n_units"),
            ("Scorable classes", "rule"),
            ("Label = own class", "check.top1_fraction", "pct"),
            ("Paper", "paper_top1", "pct"),
            ("Own class in top-5 (once per neuron)", "check.top5_fraction", "pct"),
            ("Top-5, notebook rule", "check.top5_notebook_fraction", "pct"),
            ("Paper top-5 (notebook rule)", "paper_top5", "pct"),
            ("Paper row", "source"),
        ),
        "check_findings": [line for check in dissected.self_checks.values() for line in self_check_findings(check)],
        "label_checks": table(
            [
                {"title": model_title(c.model_name), "concept_set": dissected.concept_set, "check": c}
                for c in dissected.label_checks.values()
            ],
            ("Model", "title"),
            ("Concept set", "concept_set"),
            ("Neurons scored", "check.n_scored"),
            ("Label = own class", "check.top1_fraction", "pct"),
            ("Own class in top-5", "check.top5_fraction", "pct"),
            ("Mean CLIP cosine(label, class)", "check.mean_clip_cosine", "num"),
        ),
        "probe": dissected.probe_name,
        "n_probe": len(dissected.probe_paths),
        "concept_set": dissected.concept_set,
        "n_concepts": len(next(iter(dissected.results.values())).concepts),
        "similarity": next(iter(dissected.results.values())).similarity,
    }
    return Built([Page(INDEX, "dissection.md.j2", context), *pages], written, Section(TITLE, INDEX, found))


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
