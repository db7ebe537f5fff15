"""Task 4 page: agreement tables and curves, complexity, faithfulness, sanity check, side-by-side panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from xai.cache import atomic_write_text
from xai.report.render import Page, fmt_number

TITLE = "Task 4 · LIME vs CAM"
INDEX = "comparison/index.md"
ASSETS = "assets/comparison"

AGREEMENT_COLUMNS = {"method": "Method", "k": "LIME top-k", "n_images": "Images", "iou_mean": "IoU mean",
                     "iou_std": "IoU std", "chance_iou_mean": "Chance IoU", "above_chance": "Images above chance",
                     "dice_mean": "Dice mean", "rho_mean": "Spearman ρ (superpixels)"}
RANKING_COLUMNS = {"faithfulness_rank": "Faithfulness rank", "method": "Method", "deletion_auc_mean": "Deletion AUC ↓",
                   "insertion_auc_mean": "Insertion AUC ↑", "score_mean": "Insertion − deletion",
                   "beats_random": "Beats random (images)", "iou_mean": "IoU with LIME",
                   "agreement_rank": "Agreement rank"}
CORRELATION_COLUMNS = {"method": "Method", "k": "LIME top-k", "measure": "Complexity measure", "rho": "Spearman ρ",
                       "p_value": "p", "n": "Images"}


def frame_rows(frame: pd.DataFrame, columns: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Selected columns of a table, renamed and formatted for a Markdown table."""
    present = [c for c in columns if c in frame.columns]
    rows = [[fmt_number(value) if isinstance(value, float) else str(value) for value in row]
            for row in frame[present].itertuples(index=False)]
    return [columns[c] for c in present], rows


def highlights(compared: Any) -> list[str]:
    """The headline sentences: who agrees best, simple vs complex images, faithfulness, the sanity check."""
    from xai.compare.narrative import agreement_findings, faithfulness_findings, sanity_findings

    summary = compared.summary
    agreement = agreement_findings(summary)
    best = agreement[-1:] if len(agreement) > 1 else agreement
    return [*best, summary.complexity_answer, *faithfulness_findings(summary), *sanity_findings(summary)]


def build(artifacts: dict[str, Any], docs_dir: Path, run: dict[str, Any]) -> tuple[list[Page], list[str]]:
    if "compare" not in artifacts:
        return [Page(INDEX, "placeholder.md.j2", {"title": TITLE, "stage": "compare",
                                                 "reason": "This stage was not part of this build."})], []
    from xai.compare import RANDOM_WEIGHTS_NOTE, findings
    from xai.report.figures import compare as figures

    compared = artifacts["compare"]
    summary = compared.summary
    written: list[str] = []

    def asset(name: str) -> Path:
        written.append(f"{ASSETS}/{name}")
        return docs_dir / ASSETS / name

    for name, text in summary.csv_texts().items():
        atomic_write_text(asset(f"{name}.csv"), text)
    ks = sorted(set(summary.agreement["k"])) if len(summary.agreement) else []
    sweeps = [{"k": k, "file": f"iou-threshold-k{k}.png",
               "alt": figures.iou_threshold_figure(summary, asset(f"iou-threshold-k{k}.png"), k=k)} for k in ks]
    scatter = {"file": "complexity.png", "alt": figures.complexity_scatter_figure(summary, asset("complexity.png"))}
    mean_curves = None
    if compared.faithfulness:
        mean_curves = {"file": "faithfulness-mean.png", "alt": figures.mean_faithfulness_curves_figure(
            compared.faithfulness, asset("faithfulness-mean.png"))}
    sanity = None
    if compared.sanity is not None and not compared.sanity.weights_are_random:
        sanity = {"file": "sanity.png", "alt": figures.sanity_figure(compared.sanity, asset("sanity.png"))}
    sanity_note = RANDOM_WEIGHTS_NOTE if run["random_weights"] else (
        "The sanity check was disabled in this run's config (compare.sanity_check)." if sanity is None else "")
    panels = []
    explained = {item.name: item for item in compared.explain.images}
    for faith in compared.faithfulness:
        item = explained[faith.image_id]
        lime = item.explanation.lime
        cams = {cam.method: cam.map for cam in item.explanation.cams}
        panel = f"panel-{item.name}.png"
        curves = f"faithfulness-{item.name}.png"
        panels.append({
            "name": item.name,
            "panel": panel, "panel_alt": figures.comparison_panel_figure(
                item.pixels, lime.segments, lime.weights, cams, asset(panel), k=summary.k, image_id=item.name),
            "curves": curves, "curves_alt": figures.faithfulness_curves_figure(faith, asset(curves)),
        })
    agreement_at_k = summary.agreement_by_method
    context = {
        "title": TITLE, "findings": findings(summary), "k": summary.k, "sweeps": sweeps, "scatter": scatter,
        "complexity_answer": summary.complexity_answer, "mean_curves": mean_curves, "sanity": sanity,
        "sanity_note": sanity_note, "panels": panels, "assets": f"../{ASSETS}",
        "agreement": frame_rows(agreement_at_k, AGREEMENT_COLUMNS),
        "ranking": frame_rows(summary.faithfulness_ranking, RANKING_COLUMNS),
        "correlation": frame_rows(summary.complexity_correlation, CORRELATION_COLUMNS),
        "complexity": frame_rows(summary.complexity, {c: c.replace("_", " ") for c in summary.complexity.columns}),
        "sanity_table": frame_rows(summary.sanity, {c: c.replace("_", " ") for c in summary.sanity.columns}),
        "csvs": sorted(summary.csv_texts()),
        "faithfulness_rho": fmt_number(summary.faithfulness_agreement_rho),
        "faithfulness_p": fmt_number(summary.faithfulness_agreement_p),
        "faithfulness_n": summary.faithfulness_agreement_n,
    }
    return [Page(INDEX, "comparison.md.j2", context)], written
