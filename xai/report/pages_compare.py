"""Task 4 page: the answers first (with the forest plot), then the claims behind them, agreement, complexity,
faithfulness, the sanity check, the powered sample and the side-by-side panels; the full test output in tables.

A builder: it requests the figures, writes the CSV files and hands the template typed objects (tables from
:mod:`xai.report.compare_tests`, figures, the findings of :mod:`xai.compare.narrative`); it computes nothing and
formats no number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.cache import atomic_write_text
from xai.report import compare_tests as tables
from xai.report.blocks import Answer, Answers, FigureRef, Link
from xai.report.figures.jobs import draw
from xai.report.page import Built, Page, Section, Site, placeholder

if TYPE_CHECKING:
    from xai.compare.results import CompareArtifacts
    from xai.compare.sample import SampleResults
    from xai.compare.summary import ComparisonSummary
    from xai.explain.explained import ExplainArtifacts
    from xai.plan import RunPlan

TITLE = "Task 4 · LIME vs CAM"
INDEX = "comparison/index.md"
ASSETS = "assets/comparison"
ANCHORS = {
    "agreement": "agreement",
    "design": "claims",
    "faithfulness": "faithfulness",
    "complexity": "complexity",
    "sanity": "sanity",
    "sample": "sample",
}
"""An answer's topic (:data:`xai.compare.narrative.TOPICS`) -> the section of this page holding its evidence."""


def explained_model(explained: ExplainArtifacts | None) -> dict[str, Any]:
    """How the pages name the explained classifier, from the explain stage's artifacts: display name, torchvision
    architecture, weights (file and hash, checkpoint and sha256, or random), the weights member whose
    preprocessing and categories it uses, the CAM target layer and why."""
    if explained is None:
        return {}
    return {
        "name": explained.model,
        "architecture": explained.architecture or explained.model,
        "weights_description": explained.weights_description,
        "weights_member": explained.weights_member,
        "target_layer": explained.target_layer,
        "target_reason": explained.target_reason,
        "channels": explained.target_channels,
    }


def methods_context(plan: RunPlan, artifacts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the methods page says about Task 4's protocol, from the run plan, the explain and compare artifacts
    when they exist (the explained model, its preprocessing, the sanity check's cascade, the CAM grid) and the
    committed measurement."""
    from xai.compare.faithfulness import step_error_measurement
    from xai.compare.family import POWER, PRIMARY_CAMS
    from xai.compare.intervals import COVERAGE_FLOOR, STUDENTISED_MIN_N
    from xai.compare.stats import ALPHA
    from xai.data import PREPROCESSING
    from xai.report.blocks import table

    artifacts = artifacts or {}
    compared = artifacts.get("compare")
    explained = artifacts.get("explain") or (compared.explain if compared is not None else None)
    measurement = step_error_measurement()
    compare = plan.config.compare.model_dump()
    return {
        "preprocess": plan.config.explain.preprocess,
        "preprocessing": _preprocessing(plan, explained),
        "tutorial": PREPROCESSING["lime_tutorial"],
        "explained": explained_model(explained),
        "cascade": list(compared.cascade) if compared is not None else [],
        "cam_grid": compared.cam_grid if compared is not None else None,
        "step_error": measurement,
        "step_errors": table(
            measurement["rows"],
            ("Steps", "steps"),
            ("Pixels per step", "pixels_per_step"),
            ("Worst abs AUC error", "max_abs_error", "num", 4),
            ("Worst at temperature", "worst_temperature", "compact"),
            ("Mean abs AUC error", "mean_abs_error", "num", 4),
            ("Curves", "n_curves"),
        ),
        "faithfulness_steps": compare["faithfulness_steps"],
        "random_draws": compare["random_draws"],
        "null_draws": compare["null_draws"],
        "sanity_lime_samples": compare["sanity_lime_samples"],
        "alpha": ALPHA,
        "studentised_min_n": STUDENTISED_MIN_N,
        "coverage_floor": COVERAGE_FLOOR,
        "power": POWER,
        "primary_cams": PRIMARY_CAMS,
        "sample": compare["sample"],
    }


def _preprocessing(plan: RunPlan, explained: ExplainArtifacts | None) -> dict[str, Any]:
    """The explained weights member's transform (from the artifacts, else from the run plan: no weights are
    loaded): architecture, member and the :class:`xai.classifiers.Preprocessing` values."""
    if explained is not None and explained.preprocessing is not None:
        return {"model": explained.architecture, "member": explained.weights_member, "steps": explained.preprocessing}
    if plan.explain is not None:
        model = plan.explain.model
        return {"model": model.spec.architecture, "member": model.weights_member, "steps": plan.explain.preprocessing}
    return {}


def panel_ious(summary: ComparisonSummary, image: str) -> dict[str, float]:
    """The artifact's IoU at ``summary.k`` (the mean over LIME seeds the comparison stored) of each scored CAM on
    ``image``: looked up, not computed."""
    table = summary.agreement
    if table.empty:
        return {}
    rows = table[(table["image"] == image) & (table["k"] == summary.k) & (table["excluded"] == "")]
    return {str(method): float(iou) for method, iou in zip(rows["method"], rows["iou"], strict=True)}


def answers(compared: CompareArtifacts, figure: FigureRef | None) -> Answers:
    """Task 4's answers (:func:`xai.compare.narrative.answers`), each linked to the section holding its evidence."""
    from xai.compare.narrative import answers as found

    sample = compared.sample.summary if compared.sample is not None else None
    lines = [Answer(line, f"{INDEX}#{ANCHORS[topic]}") for topic, line in found(compared.summary, sample)]
    return Answers(tuple(lines), figure)


def summary_context(summary: ComparisonSummary) -> dict[str, Any]:
    """The tables and findings of one comparison summary (the ten images', or the powered sample's)."""
    from xai.compare import narrative

    return {
        "k": summary.k,
        "findings": {
            "agreement": narrative.agreement_findings(summary),
            "complexity": narrative.complexity_findings(summary),
            "faithfulness": narrative.faithfulness_findings(summary),
            "design": narrative.design_findings(summary),
            "sanity": narrative.sanity_findings(summary),
        },
        "agreement": tables.agreement_summary(summary),
        "agreement_claims": tables.agreement_claims(summary),
        "agreement_every_k": tables.agreement_every_k(summary.agreement_by_method),
        "agreement_pairs": tables.pairs_table(summary.agreement_pairs),
        "ranking": tables.ranking_table(summary.faithfulness_ranking),
        "faithfulness_claims": tables.faithfulness_claims(summary),
        "faithfulness_pairs": tables.pairs_table(summary.faithfulness_pairs),
        "excluded": tables.excluded_table(summary),
        "design": tables.design_table(summary.design),
        "primary_cams": summary.primary,
    }


def sample_context(
    sample: SampleResults | None, asset: Callable[[str], Path], figure: Callable[..., FigureRef]
) -> dict[str, Any] | None:
    """The powered sample's section: what was drawn and computed, its tables, findings and figures (CSV files
    prefixed ``sample-``), or None without a sample."""
    from xai.compare.sample import IMAGENET_SOURCE
    from xai.report.figures import evidence

    if sample is None:
        return None
    context: dict[str, Any] = {"sample": sample, "imagenet": sample.plan.source == IMAGENET_SOURCE, "summary": None}
    summary = sample.summary
    if summary is None:
        return context
    csvs = []
    for name, text in summary.csv_texts().items():
        atomic_write_text(asset(f"sample-{name}.csv"), text)
        csvs.append(Link(f"sample-{name}", f"../{ASSETS}/sample-{name}.csv"))
    context.update(
        summary=summary_context(summary),
        csvs=csvs,
        forest=figure(evidence.forest_figure, summary, name="sample-forest.png"),
        differences=figure(evidence.differences_figure, summary, name="sample-differences.png"),
    )
    return context


def build(site: Site) -> Built:
    if "compare" not in site.artifacts:
        return placeholder(TITLE, INDEX, "compare")
    from xai.compare.family import POWER
    from xai.compare.intervals import STUDENTISED_MIN_N
    from xai.compare.narrative import sanity_notes
    from xai.compare.stats import ALPHA
    from xai.report.figures import compare as figures
    from xai.report.figures import evidence

    compared: CompareArtifacts = site.artifacts["compare"]
    summary = compared.summary
    written: list[str] = []

    def asset(name: str) -> Path:
        written.append(f"{ASSETS}/{name}")
        return site.docs_dir / ASSETS / name

    def figure(function: Callable[..., str], *args: Any, name: str, **kwargs: Any) -> FigureRef:
        """Request a figure; its reference (path from the docs directory, alt text once drawn)."""
        return FigureRef(f"{ASSETS}/{name}", draw(function, *args, path=asset(name), **kwargs))

    csvs = []
    for name, text in summary.csv_texts().items():
        atomic_write_text(asset(f"{name}.csv"), text)
        csvs.append(Link(name, f"../{ASSETS}/{name}.csv"))
    forest = figure(evidence.forest_figure, summary, name="forest.png")
    ks = sorted(set(summary.agreement["k"])) if len(summary.agreement) else []
    sanity = compared.sanity
    panels = []
    explained = {item.name: item for item in compared.explain.images}
    for faith in compared.faithfulness:
        item = explained[faith.image_id]
        lime = item.explanation.lime
        cams = {cam.method: cam.map for cam in item.explanation.cams}
        panel = figure(
            figures.comparison_panel_figure, item.pixels, lime.segments, lime.weights, cams,
            name=f"panel-{item.name}.png", k=summary.k, image_id=item.name, ious=panel_ious(summary, item.name),
        )  # fmt: skip
        # never faithfulness-mean.png, whatever the id
        curves = figure(figures.faithfulness_curves_figure, faith, name=f"faithfulness-image-{item.name}.png")
        panels.append({"name": item.name, "panel": panel, "curves": curves})
    found = answers(compared, forest)
    context = {
        "title": TITLE,
        "answers": found,
        **summary_context(summary),
        "differences": figure(evidence.differences_figure, summary, name="differences.png"),
        "sweeps": [figure(figures.iou_threshold_figure, summary, name=f"iou-threshold-k{k}.png", k=k) for k in ks],
        "scatter": figure(figures.complexity_scatter_figure, summary, name="complexity.png"),
        "correlation": tables.correlation_table(summary.complexity_correlation),
        "complexity": tables.complexity_table(summary.complexity),
        "mean_curves": figure(
            figures.mean_faithfulness_curves_figure, compared.faithfulness, name="faithfulness-mean.png"
        )
        if compared.faithfulness
        else None,
        "sanity": figure(figures.sanity_figure, sanity, name="sanity.png")
        if sanity is not None and sanity.steps
        else None,
        "sanity_table": tables.sanity_table(summary.sanity),
        "sanity_notes": sanity_notes(summary),
        "notes": list(summary.notes),
        "panels": panels,
        "csvs": csvs,
        "alpha": ALPHA,
        "studentised_min_n": STUDENTISED_MIN_N,
        "power": POWER,
        "sample": sample_context(compared.sample, asset, figure),
        "explained": explained_model(compared.explain),
        "cascade": list(compared.cascade),
        "cam_grid": compared.cam_grid,
    }
    return Built([Page(INDEX, "comparison.md.j2", context)], written, Section(TITLE, INDEX, found))
