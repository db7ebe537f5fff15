"""Tasks 2-3 pages: an overview (answers, predictions, LIME fit and stability, costs, the concepts section) and one
page per image with a tab per method (the tabs follow the method registry's order).

The builder requests the figures and hands the templates typed objects (the explanations themselves, tables whose
columns name their values, the findings of :mod:`xai.explain.findings`); it computes nothing and formats no number.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.report.blocks import Answer, Answers, FigureRef, Link, Table, table
from xai.report.figures.jobs import draw
from xai.report.gallery import build_gallery
from xai.report.page import Built, Page, Section, Site, placeholder

if TYPE_CHECKING:
    from xai.explain.explained import ExplainArtifacts, ExplainedImage

TITLE = "Tasks 2–3 · LIME and the CAM family"
INDEX = "explanations/index.md"
ASSETS = "assets/explanations"
ANCHORS = {"predictions": "predictions", "lime": "lime", "cost": "cost"}
"""An answer's topic (:data:`xai.explain.findings.TOPICS`) -> the section of the overview holding its evidence."""


def image_page(image_id: str) -> str:
    """The page of one image; ``image_id`` is already a slug (``xai.data.image_ids``), used as is everywhere.

    Prefixed so that no image (``index.png``) can take the section's own ``index.md``. Its figures need no
    prefix: they go in the folder ``assets/explanations/<id>/`` and the section's own assets are files with a
    suffix (``grid-legend.png``), which no id (letters, digits and ``-``) can name."""
    return f"explanations/image-{image_id}.md"


def answers(explained: ExplainArtifacts, concepts: dict[str, Any] | None) -> Answers:
    """Tasks 2-3's answers (:func:`xai.explain.findings.answers`, then the concepts section's), each linked to the
    section holding its evidence. No figure: the page's gallery shows every image x method panel, each opening in
    the lightbox, which one thumbnail grid could not."""
    from xai.explain.findings import answers as found

    lines = [Answer(line, f"{INDEX}#{ANCHORS[topic]}") for topic, line in found(explained)]
    if concepts is not None:
        lines += [Answer(line, f"{INDEX}#concepts") for line in concepts["answers"][:2]]
    return Answers(tuple(lines))


def cost_table(explained: ExplainArtifacts) -> Table:
    """The cost table as the explain stage recorded it (:func:`xai.explain.explained.method_costs`)."""
    from xai.explain.registry import METHODS

    return table(
        [{"title": METHODS[cost.method].title, "cost": cost} for cost in explained.costs],
        ("Method", "title"),
        ("Time per image", "cost.seconds", "secs"),
        ("Forward passes per image", "cost.forward_passes"),
        ("Floor", "cost.floor_s", "secs"),
        ("Time / floor", "cost.ratio", "ratio"),
    )


def _lime_table(explained: ExplainArtifacts) -> Table:
    """LIME's fit and stability per image: surrogate R², local prediction, model probability, superpixels, the
    top-k Jaccard across seeds."""
    rows = []
    for item in explained.images:
        lime, stability = item.explanation.lime, item.explanation.stability
        if lime is None:
            continue
        rows.append(
            {
                "image": item.name,
                "lime": lime,
                "label": explained.categories[lime.label],
                "superpixels": int(lime.weights.size),
                **{f"k{k}": stability.mean_jaccard[k] if stability else None for k in lime.ks},
            }
        )
    ks = explained.images[0].explanation.lime.ks if rows else ()
    return table(
        rows,
        ("Image", "image"),
        ("Explained class", "label"),
        ("Surrogate R²", "lime.score", "num"),
        ("Local prediction", "lime.local_pred", "num"),
        ("Model probability", "lime.model_probability", "num"),
        ("Superpixels", "superpixels"),
        *((f"Stability top-{k} (Jaccard)", f"k{k}", "num") for k in ks),
    )


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
    predictions, timings = [], []
    for item in explained.images:
        directory = docs_dir / ASSETS / item.name
        calls = figures.image_figure_calls(item.pixels, item.explanation, directory, categories=categories)
        for call in calls.values():
            draw(call.function, *call.args, path=call.path, **call.kwargs)
        paths = {name: call.path for name, call in calls.items()}
        written += [f"{ASSETS}/{item.name}/{path.name}" for path in paths.values()]
        prediction = item.explanation.prediction
        link = Link(item.name, image_page(item.name).removeprefix("explanations/"))
        predictions.append(
            {"image": link, "label": categories[prediction.top1], "probability": float(prediction.probabilities[0])}
        )
        found = {method: item.explanation.result(method) for method in explained.methods}
        timings.append({"image": item.name, **{m: r.seconds if r is not None else None for m, r in found.items()}})
        pages.append(_image_page(item, paths, explained, concept_tabs.get(item.name)))
    links = {item.name: image_page(item.name).removeprefix("explanations/") for item in explained.images}
    gallery, gallery_files = build_gallery(explained, docs_dir / ASSETS, links)  # images x methods, a file per panel
    written += [f"{ASSETS}/{name}" for name in gallery_files]
    concepts, concept_csv = pages_concepts.section(
        site, ASSETS, lambda name: image_page(name).removeprefix("explanations/")
    )
    written += concept_csv
    behind = next((cost for cost in explained.costs if cost.batch_size is not None), None)
    found_answers = answers(explained, concepts)
    context = {
        "title": TITLE,
        "answers": found_answers,
        "explained": explained,
        "methods": [METHODS[m].title for m in explained.methods],
        "predictions": table(
            predictions,
            ("Image", "image"),
            ("Predicted class", "label"),
            ("Probability", "probability", "num"),
        ),
        "lime": _lime_table(explained),
        "costs": cost_table(explained),
        "batch": behind,
        "timings": table(
            timings,
            ("Image", "image"),
            *((METHODS[m].title, m, "secs") for m in explained.methods),
        ),
        "gallery": gallery,
        "assets": f"../{ASSETS}",
        "concepts": concepts,
        "failed": table(
            [{"image": image, "error": error} for image, error in explained.failed],
            ("Image", "image"),
            ("Error", "error"),
        ),
    }
    return Built([Page(INDEX, "explanations.md.j2", context), *pages], written, Section(TITLE, INDEX, found_answers))


def _image_page(
    item: ExplainedImage,
    paths: dict[str, Path],
    explained: ExplainArtifacts,
    concepts: dict[str, Any] | None = None,
) -> Page:
    """One image's page: the image and its top-5, a tab per method (its figures and the result itself, whose facts
    the template lists), the Concepts tab when that stage ran."""
    from xai.explain.registry import METHODS

    categories = explained.categories
    explanation = item.explanation
    prediction = explanation.prediction
    folder = f"{ASSETS}/{item.name}"
    tabs = []
    for method in explained.methods:
        info = METHODS[method]
        if info.family == "lime" and explanation.lime is not None:
            lime = explanation.lime
            ks = ", ".join(map(str, lime.ks))
            figures = [
                FigureRef(
                    f"{folder}/{paths['lime_boundaries'].name}",
                    f"LIME's top-{ks} positive superpixels outlined in yellow on {item.name}",
                ),
                FigureRef(
                    f"{folder}/{paths['lime_pros_cons'].name}",
                    f"Superpixels for (green) and against (red) the class on {item.name}",
                ),
                FigureRef(
                    f"{folder}/{paths['lime_weights'].name}",
                    f"Heatmap of every superpixel's LIME weight on {item.name}",
                ),
            ]
            tabs.append(
                {
                    "info": info,
                    "lime": lime,
                    "stability": explanation.stability,
                    "superpixels": int(lime.weights.size),
                    "figures": figures,
                }
            )
        elif method in paths:
            cam = explanation.cam(method)
            label = categories[cam.target_class]
            figure = FigureRef(
                f"{folder}/{paths[method].name}", f"{info.title} map of class '{label}' over {item.name}"
            )
            tabs.append({"info": info, "cam": cam, "label": label, "figures": [figure]})
    return Page(
        image_page(item.name),
        "explained_image.md.j2",
        {
            "title": f"{item.name}: explanations",
            "name": item.name,
            "original": FigureRef(
                f"{folder}/{paths['original'].name}", f"The image {item.name} and the model's top-5 probabilities"
            ),
            "file": getattr(item, "display", "") or item.name,
            "top5": table(
                [
                    {"label": categories[int(label)], "probability": float(probability)}
                    for label, probability in zip(prediction.labels, prediction.probabilities, strict=True)
                ],
                ("Top-5 class", "label"),
                ("Probability", "probability", "num"),
            ),
            "tabs": tabs,
            "concepts": concepts,
            "explained": explained,
        },
    )
