"""Why each prediction, in concepts (issue #21), as the report shows it: a "Concepts" tab on each image page, a
section with the table across images on the Tasks 2-3 page, and a section of the methods page.

Not a builder of its own: its tab lives on the explanation pages and its section on their index, so
:mod:`xai.report.pages_explain` asks :func:`image_tabs` and :func:`section` for them, and the methods page
(:mod:`xai.report.pages_home`) asks :func:`methods_context`. Reads the concepts stage's artifacts and the plan and
hands the templates typed objects: the findings of :mod:`xai.concepts.findings` first, then tables whose columns
name their values; it computes nothing and formats no number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xai.cache import atomic_write_text
from xai.report.blocks import FigureRef, Link, Table, table
from xai.report.page import Site

if TYPE_CHECKING:
    from xai.concepts import ConceptExplanation, ConceptSummary
    from xai.concepts.artifacts import ConceptArtifacts
    from xai.plan import RunPlan

TAB_TITLE = "Concepts"
SUMMARY_CSV = "concepts_summary.csv"
SHARE_TITLES = {
    "top_concept_beats_random": "top concept's units beat random units of its size (p ≤ 0.05, margin)",
    "naming_beats_permutation": "the naming concentrates the evidence (label-permutation p ≤ 0.05)",
    "top_concept_present": "CLIP confirms the top concept on its region",
    "flipped": "removing up to the largest K units changes the top-1 class",
}
GROUP_TITLES = {"all": "All images", "correct": "Correct predictions", "wrong": "Wrong predictions"}
RANDOM_NOTE = (
    "Seeded random weights: these concepts, contributions and checks mean nothing about a trained model; they show "
    "the computation at its real cost."
)


def _artifacts(site: Site) -> ConceptArtifacts | None:
    return site.artifacts.get("concepts")


def _class(index: int, categories: list[str]) -> str:
    return categories[index] if 0 <= index < len(categories) else "unknown"


def _bars(explanation: ConceptExplanation) -> Table:
    """The largest positive bars with their removal against random sets of as many units ("not tested" without)."""
    removals = {removal.concept: removal for removal in explanation.concept_removals}
    rows = []
    for bar in explanation.bars.top(explanation.settings.shown):
        removal = removals.get(bar.concept)
        rows.append(
            {
                "bar": bar,
                "delta": removal.delta_margin if removal else "not tested",
                "random": (removal.random_margin_low, removal.random_margin_high) if removal else None,
                "p": removal.p_margin if removal else "",
            }
        )
    return table(
        rows,
        ("Concept", "bar.concept"),
        ("Units", "bar.n_units"),
        ("Contribution", "bar.contribution", "sig"),
        ("Share of Σ|c_u|", "bar.share", "share"),
        ("Mean label score", "bar.mean_label_score", "sig"),
        ("Δ margin when removed", "delta", "sig"),
        ("Random sets (95%)", "random", "range"),
        ("p", "p", "p", 3),
    )


def _faithfulness(explanation: ConceptExplanation) -> Table:
    """Per K: the top-K units by contribution removed, or kept alone, against random K-unit sets."""
    faith = explanation.faithfulness
    removal, keep = faith.random_removal, faith.random_keep_only
    rows = [
        {
            "k": int(k),
            "delta_probability": float(faith.by_contribution.delta_probability[i]),
            "probability_band": (float(removal.probability_low[i]), float(removal.probability_high[i])),
            "delta_margin": float(faith.by_contribution.delta_margin[i]),
            "margin_band": (float(removal.margin_low[i]), float(removal.margin_high[i])),
            "p_margin": float(faith.p_margin[i]),
            "flipped": bool(faith.by_contribution.flipped[i]),
            "kept": float(faith.keep_only.delta_margin[i]),
            "kept_band": (float(keep.margin_low[i]), float(keep.margin_high[i])),
            "p_kept": float(faith.p_keep_margin[i]),
        }
        for i, k in enumerate(faith.ks)
    ]
    return table(
        rows,
        ("K", "k"),
        ("Δ probability", "delta_probability", "sig"),
        ("Random (95%)", "probability_band", "range"),
        ("Δ margin", "delta_margin", "sig"),
        ("Random (95%)", "margin_band", "range"),
        ("p (margin)", "p_margin", "p", 3),
        ("Top-1 changed", "flipped", "yesno"),
        ("Δ margin, top-K kept alone", "kept", "sig"),
        ("K random kept (95%)", "kept_band", "range"),
        ("p (kept)", "p_kept", "p", 3),
    )


def _presence(explanation: ConceptExplanation) -> Table:
    rows = [
        {
            "presence": presence,
            "rank": "not checked" if presence.excluded else (presence.region_rank, presence.n_concepts),
            "controls": "" if presence.excluded else [int(rank) for rank in presence.random_ranks],
            "confirmed": "" if presence.excluded else presence.confirmed,
            "iou": "" if presence.excluded else presence.random_box_iou,
        }
        for presence in explanation.presence
    ]
    return table(
        rows,
        ("Concept", "presence.concept"),
        ("Rank on its region", "rank", "of"),
        ("Ranks on random crops", "controls", "list"),
        ("Confirmed", "confirmed", "yesno"),
        ("Random crops' IoU with the region", "iou", "num"),
        ("Not checked because", "presence.excluded"),
    )


def _agreement(explanation: ConceptExplanation) -> Table:
    rows = [{"row": row, "null_p": row.null_p if row.method == "lime" else ""} for row in explanation.agreement]
    return table(
        rows,
        ("Concept", "row.concept"),
        ("Map", "row.method"),
        ("ρ", "row.rho", "num"),
        ("IoU", "row.iou", "num"),
        ("Chance IoU", "row.chance_iou", "num"),
        ("Superpixel null p", "null_p", "p", 3),
        ("Not scored because", "row.excluded"),
    )


def image_tabs(site: Site, assets: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The Concepts tab of each explained image (image id -> the tab's context, for the image page's template) and
    the figures written under ``assets/<image id>/`` (relative to the docs directory)."""
    from xai.concepts.findings import bar_sentence, image_answers
    from xai.report.figures.concepts import save_concept_figures

    artifacts = _artifacts(site)
    if artifacts is None:
        return {}, []
    tabs: dict[str, dict[str, Any]] = {}
    written: list[str] = []
    for item in artifacts.images:
        explanation = item.explanation
        paths = save_concept_figures(item.pixels, explanation, site.docs_dir / assets / item.name, artifacts.categories)
        written += [f"{assets}/{item.name}/{path.name}" for path in paths.values()]
        figure = {
            key: f"{assets}/{item.name}/{paths[f'concept_{key}'].name}" for key in ("bars", "maps", "faithfulness")
        }
        tabs[item.name] = {
            "title": TAB_TITLE,
            "random_note": RANDOM_NOTE if artifacts.random_weights else "",
            "answers": image_answers(explanation),
            "bar_sentence": bar_sentence(artifacts, explanation),
            "explanation": explanation,
            "target_class": _class(explanation.target_class, artifacts.categories),
            "true_class": _class(explanation.true_class, artifacts.categories),
            "top": explanation.bars.top(1),
            "figures": {
                "bars": FigureRef(figure["bars"], f"Signed concept bars of {item.name} adding up to the logit"),
                "maps": FigureRef(figure["maps"], f"Concept maps over {item.name} and their sum"),
                "faithfulness": FigureRef(
                    figure["faithfulness"],
                    f"Change of the margin when the top-K units of {item.name} are removed or kept, with the random "
                    "band",
                ),
            },
            "bars": _bars(explanation),
            "faithfulness": _faithfulness(explanation),
            "random_sets": explanation.faithfulness.random_removal.draws,
            "presence": _presence(explanation),
            "agreement": _agreement(explanation),
            "failed": "",
        }
    for name, reason in artifacts.failed:
        tabs[name] = {"title": TAB_TITLE, "failed": reason}
    return tabs, written


def summary_csv(summary: ConceptSummary) -> str:
    """Every median and share of the summary, one row each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "metric", "group", "value", "low", "high", "n", "count"])
    for row in summary.medians:
        writer.writerow(["median", row.metric, row.group, row.median, row.low, row.high, row.n, ""])
    for share in summary.shares:
        writer.writerow(["share", share.metric, share.group, share.share, share.low, share.high, share.n, share.count])
    return buffer.getvalue()


def summary_metrics(summary: ConceptSummary, ks: list[int]) -> list[tuple[str, str]]:
    """(metric, what it is) of the page's table, in order; metrics no image has are left out."""
    present = {row.metric for row in summary.medians}
    wanted = [
        ("completeness_error", "|completeness error|"),
        ("top_concept_share", "top concept's share of Σ|c_u|"),
        ("top5_share", "top-5 concepts' share"),
        ("unlabelled_share", "unlabelled units' share"),
        *((f"delta_margin@{k}", f"Δ margin, top-{k} units removed") for k in ks),
        *((f"p_margin@{k}", f"p, top-{k} units vs {k} random units") for k in ks),
        ("flip_k", "smallest K that changes top-1"),
        ("top_concept_delta_margin", "Δ margin, top concept's units removed"),
        ("top_concept_p_margin", "p, top concept's units vs random units"),
        ("permutation_p", "p, naming vs shuffled labels"),
        ("presence_rank_gain", "CLIP rank gain of the top concept on its region"),
    ]
    methods = sorted({row.metric.split(":", 1)[1] for row in summary.medians if row.metric.startswith("rho:")})
    wanted += [
        (f"{kind}:{method}", f"top concept's map vs {method}, {kind}") for method in methods for kind in ("rho", "iou")
    ]
    return [(metric, title) for metric, title in wanted if metric in present]


def section(site: Site, assets: str, link: Callable[[str], str]) -> tuple[dict[str, Any] | None, list[str]]:
    """The Tasks 2-3 page's concepts section (None when the stage did not run) and the CSV it wrote; ``link(image
    id)`` is the image page's link from that page."""
    from xai.concepts.findings import summary_answers

    artifacts = _artifacts(site)
    if artifacts is None or artifacts.summary is None:
        return None, []
    summary = artifacts.summary
    groups = [group for group in GROUP_TITLES if any(row.group == group for row in summary.medians)]
    ks = [int(k) for k in artifacts.images[0].explanation.faithfulness.ks] if artifacts.images else []
    medians = {(row.metric, row.group): row for row in summary.medians}
    shares = {(row.metric, row.group): row for row in summary.shares}
    atomic_write_text(site.docs_dir / assets / SUMMARY_CSV, summary_csv(summary))
    per_image = []
    for item in artifacts.images:
        explanation = item.explanation
        top = explanation.bars.top(1)
        removal = explanation.concept_removals[0] if explanation.concept_removals else None
        presence = explanation.presence[0] if explanation.presence else None
        flip_k = explanation.faithfulness.flip_k
        per_image.append(
            {
                "image": Link(item.name, link(item.name)),
                "predicted": _class(explanation.predicted_class, artifacts.categories),
                "correct": "unknown" if explanation.correct is None else explanation.correct,
                "top": f"{top[0].concept} ({top[0].n_units})" if top else "none",
                "share": top[0].share if top else "n/a",
                "unlabelled": explanation.bars.unlabelled.share,
                "flip_k": flip_k if flip_k > 0 else "none",
                "p_removal": removal.p_margin if removal else "n/a",
                "p_naming": explanation.label_permutation.p_value,
                "confirmed": presence.confirmed if presence and not presence.excluded else "n/a",
            }
        )
    group_columns = [(GROUP_TITLES[group], group) for group in groups]
    context = {
        "random_note": RANDOM_NOTE if artifacts.random_weights else "",
        "answers": summary_answers(summary),
        "model": artifacts.model,
        "layer": artifacts.layer,
        "target_layer": artifacts.target_layer,
        "n_images": summary.n_images,
        "true_class_known": artifacts.true_class_known,
        "n_correct": summary.n_correct,
        "n_wrong": summary.n_wrong,
        "per_image": table(
            per_image,
            ("Image", "image"),
            ("Predicted class", "predicted"),
            ("Correct", "correct", "yesno"),
            ("Top concept (units)", "top"),
            ("Its share", "share", "share"),
            ("Unlabelled share", "unlabelled", "share"),
            ("Smallest K changing top-1", "flip_k"),
            ("Top concept vs random units p", "p_removal", "p", 3),
            ("Naming vs shuffled p", "p_naming", "p", 3),
            ("CLIP confirms it", "confirmed", "yesno"),
        ),
        "medians": table(
            [
                {"title": title, **{group: medians.get((metric, group)) for group in groups}}
                for metric, title in summary_metrics(summary, ks)
            ],
            ("Per-image number", "title"),
            *((title, group, "median") for title, group in group_columns),
        ),
        "shares": table(
            [
                {"title": title, **{group: shares.get((metric, group)) for group in groups}}
                for metric, title in SHARE_TITLES.items()
            ],
            ("Share of images where", "title"),
            *((title, group, "share_interval") for title, group in group_columns),
        ),
        "csv": Link(SUMMARY_CSV, f"../{assets}/{SUMMARY_CSV}"),
        "failed": table(
            [{"image": image, "reason": reason} for image, reason in artifacts.failed],
            ("Image", "image"),
            ("Reason", "reason"),
        ),
    }
    return context, [f"{assets}/{SUMMARY_CSV}"]


def methods_context(plan: RunPlan, artifacts: ConceptArtifacts | None) -> dict[str, Any]:
    """What the methods page's concepts section reads: this run's settings (when the stage is planned) and the
    dissected layer's facts (when it ran)."""
    from xai.concepts import ConceptSettings

    planned = plan.concepts
    settings = planned.settings if planned is not None else None
    return {
        "fractions": settings or ConceptSettings(),
        "planned": planned is not None,
        "settings": table(
            [
                {"setting": name, "value": ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)}
                for name, value in vars(settings).items()
            ]
            if settings is not None
            else [],
            ("Setting", "setting"),
            ("Value", "value"),
        ),
        "artifacts": artifacts,
    }
