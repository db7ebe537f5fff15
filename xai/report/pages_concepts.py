"""Why each prediction, in concepts (issue #21), as the report shows it: a "Concepts" tab on each image page, a
section with the table across images on the Tasks 2-3 page, and a section of the methods page.

Not a builder of its own: its tab lives on the explanation pages and its section on their index, so
:mod:`xai.report.pages_explain` asks :func:`image_tabs` and :func:`section` for them, and the methods page
(:mod:`xai.report.pages_home`) asks :func:`methods_context`. Reads the concepts stage's artifacts and the plan;
computes nothing.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xai.cache import atomic_write_text
from xai.report.page import Site, fmt_number, fmt_percent, fmt_seconds

if TYPE_CHECKING:
    from xai.concepts import ConceptExplanation, ConceptSummary, MedianInterval, ShareInterval
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


def _p(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3g}"


def _num(value: float) -> str:
    """Four significant digits: contributions, margins and medians span many scales (random weights: 1e-6)."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def _share(value: float) -> str:
    """A share as a percentage with three significant digits (a random-weight bar can hold 0.035%)."""
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.3g}%"


def _class(index: int, categories: list[str]) -> str:
    return categories[index] if 0 <= index < len(categories) else "unknown"


def bar_sentence(artifacts: ConceptArtifacts, explanation: ConceptExplanation) -> str:
    """What a bar is, with the numbers of this layer and image (how many units a bar holds)."""
    labels = artifacts.labels
    sizes = sorted(bar.n_units for bar in explanation.bars.bars)
    held = (
        f"here the {len(sizes)} labelled bars hold {sizes[0]} to {sizes[-1]} unit(s) (median {sizes[len(sizes) // 2]})"
        if sizes
        else "here no unit clears it, so every contribution is in the unlabelled bar"
    )
    return (
        f"A bar sums the contributions c_u of the units whose CLIP-Dissect label is that concept and whose label "
        f"score clears Task 1's interpretability threshold for `{artifacts.layer}` ({labels.threshold:.4g}, the "
        f"95th percentile of its scores on shuffled probe images; {int(labels.reliable.sum()):,} of "
        f"{labels.n_units:,} units clear it); {held}. The rest is one bar, the units without a reliable label."
    )


def _facts(artifacts: ConceptArtifacts, explanation: ConceptExplanation) -> list[list[str]]:
    contributions, bars, faith = explanation.contributions, explanation.bars, explanation.faithfulness
    top = bars.top(1)
    permutation = explanation.label_permutation
    return [
        ["Explained class (top-1)", _class(explanation.target_class, artifacts.categories)],
        ["True class", _class(explanation.true_class, artifacts.categories)],
        ["Head after the layer", f"{explanation.head_kind}: {explanation.head_reason}"],
        [
            "Contributions",
            f"{contributions.method}" + (f" ({contributions.steps} nodes)" if contributions.steps else ""),
        ],
        ["Logit z_t", _num(contributions.logit)],
        [f"Offset ({contributions.offset_name})", _num(contributions.offset)],
        ["Completeness error Σ c_u + offset − z_t", f"{contributions.completeness_error:.3g}"],
        ["Top concept's share of Σ|c_u|", f"{top[0].concept}: {_share(top[0].share)}" if top else "none"],
        ["Unlabelled units' share of Σ|c_u|", _share(bars.unlabelled.share)],
        [
            "Smallest K whose removal changes top-1",
            str(faith.flip_k) if faith.flip_k > 0 else f"none up to {faith.flip_search}",
        ],
        [
            "Naming vs shuffled labels (top share, null mean, p)",
            f"{_share(permutation.share)}, {_share(permutation.null_mean)}, {_p(permutation.p_value)}",
        ],
        ["Layers after the target ran", explanation.strategy],
        ["Time", fmt_seconds(explanation.seconds)],
    ]


def _bar_rows(explanation: ConceptExplanation) -> list[list[str]]:
    removals = {removal.concept: removal for removal in explanation.concept_removals}
    rows = []
    for bar in explanation.bars.top(explanation.settings.shown):
        removal = removals.get(bar.concept)
        rows.append(
            [
                bar.concept,
                str(bar.n_units),
                _num(bar.contribution),
                _share(bar.share),
                _num(float(bar.label_scores.mean())),
                _num(removal.delta_margin) if removal else "not tested",
                f"[{_num(removal.random_margin_low)}, {_num(removal.random_margin_high)}]" if removal else "",
                _p(removal.p_margin) if removal else "",
            ]
        )
    return rows


def _faithfulness_rows(explanation: ConceptExplanation) -> list[list[str]]:
    faith = explanation.faithfulness
    band, keep_band = faith.random_removal, faith.random_keep_only
    rows = []
    for i, k in enumerate(faith.ks):
        rows.append(
            [
                str(int(k)),
                _num(float(faith.by_contribution.delta_probability[i])),
                f"[{_num(float(band.probability_low[i]))}, {_num(float(band.probability_high[i]))}]",
                _num(float(faith.by_contribution.delta_margin[i])),
                f"[{_num(float(band.margin_low[i]))}, {_num(float(band.margin_high[i]))}]",
                _p(float(faith.p_margin[i])),
                "yes" if faith.by_contribution.flipped[i] else "no",
                _num(float(faith.keep_only.delta_margin[i])),
                f"[{_num(float(keep_band.margin_low[i]))}, {_num(float(keep_band.margin_high[i]))}]",
                _p(float(faith.p_keep_margin[i])),
            ]
        )
    return rows


def _presence_rows(explanation: ConceptExplanation) -> list[list[str]]:
    rows = []
    for presence in explanation.presence:
        if presence.excluded:
            rows.append([presence.concept, "not checked", "", "", "", presence.excluded])
            continue
        controls = ", ".join(str(int(rank)) for rank in presence.random_ranks) or "none"
        rows.append(
            [
                presence.concept,
                f"{presence.region_rank:,} of {presence.n_concepts:,}",
                controls,
                "yes" if presence.confirmed else "no",
                fmt_number(presence.random_box_iou),
                "",
            ]
        )
    return rows


def _agreement_rows(explanation: ConceptExplanation) -> list[list[str]]:
    return [
        [
            row.concept,
            row.method,
            fmt_number(row.rho),
            fmt_number(row.iou),
            fmt_number(row.chance_iou),
            _p(row.null_p) if row.method == "lime" else "",
            row.excluded,
        ]
        for row in explanation.agreement
    ]


def image_tabs(site: Site, assets: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The Concepts tab of each explained image (image id -> the tab's context, for the image page's template) and
    the figures written under ``assets/<image id>/`` (relative to the docs directory)."""
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
        tabs[item.name] = {
            "title": TAB_TITLE,
            "random_note": RANDOM_NOTE if artifacts.random_weights else "",
            "bar_sentence": bar_sentence(artifacts, explanation),
            "figures": {
                "bars": (paths["concept_bars"].name, f"Signed concept bars of {item.name} adding up to the logit"),
                "maps": (paths["concept_maps"].name, f"Concept maps over {item.name} and their sum"),
                "faithfulness": (
                    paths["concept_faithfulness"].name,
                    f"Change of the margin when the top-K units of {item.name} are removed or kept, "
                    "with the random band",
                ),
            },
            "facts": _facts(artifacts, explanation),
            "bar_rows": _bar_rows(explanation),
            "faithfulness_rows": _faithfulness_rows(explanation),
            "random_sets": explanation.faithfulness.random_removal.draws,
            "presence_rows": _presence_rows(explanation),
            "agreement_rows": _agreement_rows(explanation),
            "failed": "",
        }
    for name, reason in artifacts.failed:
        tabs[name] = {"title": TAB_TITLE, "failed": reason}
    return tabs, written


def _median_cell(row: MedianInterval | None) -> str:
    if row is None or row.n == 0:
        return "n/a"
    if math.isnan(row.low):
        return f"{_num(row.median)} (n = {row.n}; no interval below 6 images)"
    return f"{_num(row.median)} [{_num(row.low)}, {_num(row.high)}] (n = {row.n})"


def _share_cell(row: ShareInterval | None) -> str:
    if row is None or row.n == 0:
        return "n/a"
    return f"{fmt_percent(row.share)} [{fmt_percent(row.low)}, {fmt_percent(row.high)}] ({row.count}/{row.n})"


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


def section(site: Site, assets: str, link: Callable[[str], str]) -> tuple[dict[str, Any] | None, list[str]]:
    """The Tasks 2-3 page's concepts section (None when the stage did not run) and the CSV it wrote; ``link(image
    id)`` is the image page's link from that page."""
    artifacts = _artifacts(site)
    if artifacts is None or artifacts.summary is None:
        return None, []
    summary = artifacts.summary
    groups = [group for group in GROUP_TITLES if any(row.group == group for row in summary.medians)]
    ks = [int(k) for k in artifacts.images[0].explanation.faithfulness.ks] if artifacts.images else []

    def median(metric: str, group: str) -> MedianInterval | None:
        return next((row for row in summary.medians if row.metric == metric and row.group == group), None)

    def share(metric: str, group: str) -> ShareInterval | None:
        return next((row for row in summary.shares if row.metric == metric and row.group == group), None)

    atomic_write_text(site.docs_dir / assets / SUMMARY_CSV, summary_csv(summary))
    per_image = []
    for item in artifacts.images:
        explanation = item.explanation
        top = explanation.bars.top(1)
        removal = explanation.concept_removals[0] if explanation.concept_removals else None
        presence = explanation.presence[0] if explanation.presence else None
        correct = explanation.correct
        per_image.append(
            [
                f"[{item.name}]({link(item.name)})",
                _class(explanation.predicted_class, artifacts.categories),
                "unknown" if correct is None else "yes" if correct else "no",
                f"{top[0].concept} ({top[0].n_units})" if top else "none",
                _share(top[0].share) if top else "n/a",
                _share(explanation.bars.unlabelled.share),
                str(explanation.faithfulness.flip_k) if explanation.faithfulness.flip_k > 0 else "none",
                _p(removal.p_margin) if removal else "n/a",
                _p(explanation.label_permutation.p_value),
                ("yes" if presence.confirmed else "no") if presence and not presence.excluded else "n/a",
            ]
        )
    context = {
        "random_note": RANDOM_NOTE if artifacts.random_weights else "",
        "model": artifacts.model,
        "layer": artifacts.layer,
        "target_layer": artifacts.target_layer,
        "n_images": summary.n_images,
        "true_class_known": artifacts.true_class_known,
        "n_correct": summary.n_correct,
        "n_wrong": summary.n_wrong,
        "per_image": per_image,
        "group_titles": [GROUP_TITLES[group] for group in groups],
        "median_rows": [
            [title, *(_median_cell(median(metric, group)) for group in groups)]
            for metric, title in summary_metrics(summary, ks)
        ],
        "share_rows": [
            [title, *(_share_cell(share(metric, group)) for group in groups)] for metric, title in SHARE_TITLES.items()
        ],
        "csv": f"../{assets}/{SUMMARY_CSV}",
        "failed": [list(row) for row in artifacts.failed],
    }
    return context, [f"{assets}/{SUMMARY_CSV}"]


def methods_context(plan: RunPlan, artifacts: ConceptArtifacts | None) -> dict[str, Any]:
    """What the methods page's concepts section reads: this run's settings (when the stage is planned) and the
    dissected layer's facts (when it ran)."""
    from xai.concepts import ConceptSettings

    planned = plan.concepts
    settings = planned.settings if planned is not None else None
    fractions = settings or ConceptSettings()
    return {
        "top_fraction": fmt_percent(fractions.top_fraction, 0),
        "rank_fraction": fmt_percent(fractions.rank_fraction, 0),
        "planned": planned is not None,
        "settings_rows": [
            [name, ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)]
            for name, value in vars(settings).items()
        ]
        if settings is not None
        else [],
        "layer": artifacts.layer if artifacts else "",
        "threshold": fmt_number(artifacts.labels.threshold, 4) if artifacts else "",
        "reliable": f"{int(artifacts.labels.reliable.sum()):,} of {artifacts.labels.n_units:,}" if artifacts else "",
        "probe": f"{artifacts.probe} ({artifacts.n_probe:,} images)" if artifacts else "",
        "concept_set": artifacts.concept_set if artifacts else "",
    }
