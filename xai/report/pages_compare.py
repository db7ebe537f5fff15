"""Task 4 page: agreement tables and curves, complexity, faithfulness, sanity check, side-by-side panels."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xai.cache import atomic_write_text
from xai.report.compare_tests import (
    agreement_rows,
    design_rows,
    pair_rows,
    ranking_rows,
    sample_context,
    with_interval,
)
from xai.report.figures.jobs import draw
from xai.report.page import Built, Page, Section, Site, fmt_number, placeholder

if TYPE_CHECKING:
    from xai.compare.results import CompareArtifacts
    from xai.compare.summary import ComparisonSummary
    from xai.explain.explained import ExplainArtifacts
    from xai.plan import RunPlan

TITLE = "Task 4 · LIME vs CAM"
INDEX = "comparison/index.md"
ASSETS = "assets/comparison"

CORRELATION_COLUMNS = {
    "method": "Method",
    "k": "LIME top-k",
    "measure": "Complexity measure",
    "rho": "Spearman ρ",
    "rho_low": "ρ 95% CI low",
    "rho_high": "ρ 95% CI high",
    "p_value": "p",
    "n": "Images",
}


def frame_rows(frame: pd.DataFrame, columns: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Selected columns of a table, renamed and formatted for a Markdown table."""
    present = [c for c in columns if c in frame.columns]
    rows = [
        [fmt_number(value) if isinstance(value, float) else str(value) for value in row]
        for row in frame[present].itertuples(index=False)
    ]
    return [columns[c] for c in present], rows


def sanity_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [
        "Method",
        "Randomised down to",
        "Images",
        "Constant maps (not scored)",
        "|Spearman ρ| [95% CI]",
        "Signed ρ [95% CI]",
        "SSIM [95% CI]",
    ]
    rows = [
        [
            str(row.method),
            str(row.step),
            str(row.n_images),
            str(row.n_constant),
            with_interval(row, "spearman_abs"),
            with_interval(row, "spearman"),
            with_interval(row, "ssim"),
        ]
        for row in frame.itertuples(index=False)
    ]
    return header, rows


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


def _preprocessing(plan: RunPlan, explained: ExplainArtifacts | None) -> dict[str, Any]:
    """The explained weights member's transform values (from the artifacts, else from the run plan: no weights are
    loaded) and the lime tutorial's, for the methods page."""
    from xai.data import PREPROCESSING

    if explained is not None and explained.preprocessing is not None:
        found, model, member = explained.preprocessing, explained.architecture, explained.weights_member
    elif plan.explain is not None:
        found, model = plan.explain.preprocessing, plan.explain.model.spec.architecture
        member = plan.explain.model.weights_member
    else:
        return {}
    tutorial = PREPROCESSING["lime_tutorial"]
    return {
        "model": model,
        "member": member,
        "resize": found.resize,
        "crop": found.crop,
        "interpolation": found.interpolation,
        "mean": ", ".join(f"{value:g}" for value in found.mean),
        "std": ", ".join(f"{value:g}" for value in found.std),
        "tutorial_resize": tutorial["resize"],
        "tutorial_crop": tutorial["crop"],
    }


def methods_context(plan: RunPlan, artifacts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the methods page says about Task 4's protocol, from the run plan, the explain and compare artifacts
    when they exist (the explained model, its preprocessing, the sanity check's cascade, the CAM grid) and the
    committed measurement."""
    from xai.compare.faithfulness import step_error_measurement
    from xai.compare.family import POWER, PRIMARY_CAMS
    from xai.compare.intervals import COVERAGE_FLOOR, STUDENTISED_MIN_N
    from xai.compare.stats import ALPHA

    artifacts = artifacts or {}
    compared = artifacts.get("compare")
    explained = artifacts.get("explain") or (compared.explain if compared is not None else None)
    measurement = step_error_measurement()
    compare = plan.config.compare.model_dump()
    return {
        "preprocess": plan.config.explain.preprocess,
        "preprocessing": _preprocessing(plan, explained),
        "explained": explained_model(explained),
        "cascade": list(compared.cascade) if compared is not None else [],
        "cam_grid": grid_text(compared.cam_grid) if compared is not None else "",
        "step_error": measurement,
        "step_error_rows": [
            [
                str(row["steps"]),
                f"{row['pixels_per_step']:,}",
                f"{row['max_abs_error']:.4f}",
                f"{row['worst_temperature']:g}",
                f"{row['mean_abs_error']:.4f}",
                str(row["n_curves"]),
            ]
            for row in measurement["rows"]
        ],
        "faithfulness_steps": compare["faithfulness_steps"],
        "random_draws": compare["random_draws"],
        "null_draws": compare["null_draws"],
        "sanity_lime_samples": compare["sanity_lime_samples"],
        "alpha": ALPHA,
        "studentised_min_n": STUDENTISED_MIN_N,
        "coverage_floor": COVERAGE_FLOOR,
        "power": f"{POWER:.0%}",
        "primary_cams": ", ".join(PRIMARY_CAMS),
        "sample": compare["sample"],
    }


def grid_text(grid: tuple[int, int] | None) -> str:
    """``7x7`` (the CAM target layer's map), or empty when unknown."""
    return f"{grid[0]}x{grid[1]}" if grid else ""


def _headline(summary: ComparisonSummary) -> list[str]:
    """The primary rankings (or why there are none) and the primary family's design: no vacuous letters."""
    from xai.compare.narrative import agreement_findings, design_text, faithfulness_findings

    agreement = [s for s in agreement_findings(summary) if s.startswith("Agreement at")][:1]
    faithful = [s for s in faithfulness_findings(summary) if s.startswith("Faithfulness (")][:1]
    design = design_text(summary, "agreement", "primary", "IoU difference")
    return [*agreement, *faithful, *([design] if design else [])]


def highlights(compared: CompareArtifacts) -> list[str]:
    """The headline sentences: the primary comparisons of the ten images (and of the powered sample beside them),
    what the design can show, simple vs complex images, the faithfulness-agreement correlation, the sanity check."""
    from xai.compare.narrative import faithfulness_findings, sanity_findings

    summary = compared.summary
    found = _headline(summary)
    sample = getattr(compared, "sample", None)
    if sample is not None and sample.summary is not None:
        found += [f"Powered sample ({len(sample.images)} images): {line}" for line in _headline(sample.summary)]
    correlation = [s for s in faithfulness_findings(summary) if s.startswith(("Across the", "With "))]
    return [*found, summary.complexity_answer, *correlation, *sanity_findings(summary)]


def panel_ious(summary: ComparisonSummary, image: str) -> dict[str, float]:
    """The artifact's IoU at ``summary.k`` (mean over LIME seeds) of each scored CAM on ``image``."""
    table = summary.agreement
    if table.empty:
        return {}
    rows = table[(table["image"] == image) & (table["k"] == summary.k) & (table["excluded"] == "")]
    return {str(method): float(iou) for method, iou in zip(rows["method"], rows["iou"], strict=True)}


def build(site: Site) -> Built:
    if "compare" not in site.artifacts:
        return placeholder(TITLE, INDEX, "compare")
    from xai.compare import RANDOM_WEIGHTS_NOTE, findings
    from xai.compare.family import POWER
    from xai.compare.intervals import STUDENTISED_MIN_N
    from xai.compare.stats import ALPHA
    from xai.report.figures import compare as figures

    compared: CompareArtifacts = site.artifacts["compare"]
    docs_dir, run = site.docs_dir, site.run
    summary = compared.summary
    written: list[str] = []

    def asset(name: str) -> Path:
        written.append(f"{ASSETS}/{name}")
        return docs_dir / ASSETS / name

    for name, text in summary.csv_texts().items():
        atomic_write_text(asset(f"{name}.csv"), text)
    ks = sorted(set(summary.agreement["k"])) if len(summary.agreement) else []
    sweeps = [
        {
            "k": k,
            "file": f"iou-threshold-k{k}.png",
            "alt": draw(figures.iou_threshold_figure, summary, path=asset(f"iou-threshold-k{k}.png"), k=k),
        }
        for k in ks
    ]
    scatter = {
        "file": "complexity.png",
        "alt": draw(figures.complexity_scatter_figure, summary, path=asset("complexity.png")),
    }
    mean_curves = None
    if compared.faithfulness:
        mean_curves = {
            "file": "faithfulness-mean.png",
            "alt": draw(
                figures.mean_faithfulness_curves_figure, compared.faithfulness, path=asset("faithfulness-mean.png")
            ),
        }
    sanity = None
    if compared.sanity is not None and compared.sanity.steps:
        sanity = {"file": "sanity.png", "alt": draw(figures.sanity_figure, compared.sanity, path=asset("sanity.png"))}
    reason = compared.sanity.skip_reason if compared.sanity is not None else "not run"
    sanity_note = (
        RANDOM_WEIGHTS_NOTE
        if run["random_weights"]
        else (f"The sanity check was not run ({reason}; see compare.sanity_check)." if sanity is None else "")
    )
    panels = []
    explained = {item.name: item for item in compared.explain.images}
    for faith in compared.faithfulness:
        item = explained[faith.image_id]
        lime = item.explanation.lime
        cams = {cam.method: cam.map for cam in item.explanation.cams}
        panel = f"panel-{item.name}.png"
        curves = f"faithfulness-image-{item.name}.png"  # never faithfulness-mean.png, whatever the id
        panels.append(
            {
                "name": item.name,
                "panel": panel,
                "panel_alt": draw(
                    figures.comparison_panel_figure,
                    item.pixels,
                    lime.segments,
                    lime.weights,
                    cams,
                    path=asset(panel),
                    k=summary.k,
                    image_id=item.name,
                    ious=panel_ious(summary, item.name),
                ),
                "curves": curves,
                "curves_alt": draw(figures.faithfulness_curves_figure, faith, path=asset(curves)),
            }
        )
    agreement_at_k = summary.agreement_by_method
    context = {
        "title": TITLE,
        "findings": findings(summary),
        "k": summary.k,
        "sweeps": sweeps,
        "scatter": scatter,
        "complexity_answer": summary.complexity_answer,
        "mean_curves": mean_curves,
        "sanity": sanity,
        "sanity_note": sanity_note,
        "panels": panels,
        "assets": f"../{ASSETS}",
        "agreement": agreement_rows(agreement_at_k) if len(agreement_at_k) else ([], []),
        "ranking": ranking_rows(summary.faithfulness_ranking) if len(summary.faithfulness_ranking) else ([], []),
        "sanity_warnings": [f"{state}: {text}" for state, text in compared.sanity.warnings]
        if compared.sanity is not None
        else [],
        "notes": list(summary.notes),
        "budgets": [f"{m}: {n}" for m, n in compared.sanity.budgets] if compared.sanity is not None else [],
        "correlation": frame_rows(summary.complexity_correlation, CORRELATION_COLUMNS),
        "complexity": frame_rows(summary.complexity, {c: c.replace("_", " ") for c in summary.complexity.columns}),
        "sanity_table": sanity_rows(summary.sanity),
        "csvs": sorted(summary.csv_texts()),
        "faithfulness_rho": fmt_number(summary.faithfulness_agreement_rho),
        "faithfulness_p": fmt_number(summary.faithfulness_agreement_p),
        "faithfulness_n": summary.faithfulness_agreement_n,
        "alpha": ALPHA,
        "studentised_min_n": STUDENTISED_MIN_N,
        "power": f"{POWER:.0%}",
        "primary_cams": ", ".join(summary.primary),
        "design": design_rows(summary.design),
        "agreement_pairs": pair_rows(summary.agreement_pairs),
        "faithfulness_pairs": pair_rows(summary.faithfulness_pairs),
        "sample": sample_context(compared.sample, asset),
        "explained": explained_model(compared.explain),
        "cascade": list(compared.cascade),
        "cam_grid": grid_text(compared.cam_grid),
    }
    return Built([Page(INDEX, "comparison.md.j2", context)], written, Section(TITLE, INDEX, highlights(compared)))
