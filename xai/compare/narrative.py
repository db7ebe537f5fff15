"""Findings sentences generated from a ``ComparisonSummary`` (no number is written by hand)."""

from __future__ import annotations

import math

import numpy as np

from xai.compare.faithfulness import RANDOM_METHOD
from xai.compare.summary import ComparisonSummary

RANDOM_WEIGHTS_NOTE = (
    "The model has random weights, so the parameter-randomisation sanity check is meaningless and was "
    "not run."
)


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def agreement_findings(summary: ComparisonSummary) -> list[str]:
    """Per-method agreement against chance at ``summary.k``, and the best-agreeing method."""
    at_k = summary.agreement_by_method[summary.agreement_by_method["k"] == summary.k]
    sentences = []
    for row in at_k.itertuples(index=False):
        spread = f" ± {_fmt(row.iou_std)}" if math.isfinite(row.iou_std) else ""
        relation = "above" if row.iou_mean > row.chance_iou_mean else "not above"
        sentences.append(
            f"{row.method}: mean area-matched IoU with LIME's top-{summary.k} mask is "
            f"{_fmt(row.iou_mean)}{spread} over {row.n_images} image(s), {relation} the chance level of "
            f"{_fmt(row.chance_iou_mean)}; it beats chance on {round(row.above_chance * row.n_images)} of "
            f"{row.n_images} image(s). Superpixel rank "
            f"correlation with LIME: mean ρ = {_fmt(row.rho_mean)}."
        )
    finite = at_k[np.isfinite(at_k["iou_mean"])]
    if len(finite) > 1:
        best = finite.loc[finite["iou_mean"].idxmax()]
        worst = finite.loc[finite["iou_mean"].idxmin()]
        sentences.append(
            f"{best['method']} agrees best with LIME (mean IoU {_fmt(best['iou_mean'])}) and "
            f"{worst['method']} least ({_fmt(worst['iou_mean'])})."
        )
    return sentences


def faithfulness_findings(summary: ComparisonSummary) -> list[str]:
    """The faithfulness ranking, methods not beating the random map, and faithfulness vs agreement."""
    ranking = summary.faithfulness_ranking
    if ranking.empty:
        return []
    order = " > ".join(f"{row.method} ({_fmt(row.score_mean, 3)})" for row in ranking.itertuples(index=False))
    sentences = [
        "Ranked by faithfulness to the model (mean insertion AUC − deletion AUC, higher is better): "
        + order
        + "."
    ]
    if RANDOM_METHOD in set(ranking["method"]):
        random_score = float(ranking.loc[ranking["method"] == RANDOM_METHOD, "score_mean"].iloc[0])
        losers = [
            str(row.method)
            for row in ranking.itertuples(index=False)
            if row.method != RANDOM_METHOD and not row.score_mean > random_score
        ]
        if losers:
            sentences.append(
                f"No better than the random map ({_fmt(random_score, 3)}) on average: {', '.join(losers)}."
            )
        else:
            sentences.append(f"Every explanation beats the random map ({_fmt(random_score, 3)}) on average.")
    rho, n = summary.faithfulness_agreement_rho, summary.faithfulness_agreement_n
    if n >= 3 and math.isfinite(rho):
        if abs(rho) < 0.3:
            relation = "are unrelated to"
        elif rho > 0:
            relation = "tend to be the ones that agree most with"
        else:
            relation = "tend to be the ones that agree least with"
        sentences.append(
            f"Across the {n} CAM methods, the most faithful {relation} LIME (Spearman ρ between "
            f"faithfulness and IoU = {_fmt(rho)}, p = {summary.faithfulness_agreement_p:.2g}; with {n} "
            "methods this is indicative only)."
        )
    elif n > 0:
        sentences.append(f"With {n} CAM method(s), faithfulness and agreement rankings cannot be correlated.")
    return sentences


def sanity_findings(summary: ComparisonSummary) -> list[str]:
    """Pass/fail of each method in the cascading randomisation check (or the random-weights note)."""
    result = summary.sanity_result
    if result is None:
        return []
    if result.weights_are_random:
        return [RANDOM_WEIGHTS_NOTE]
    sentences = []
    images = f" (mean over {result.n_images} images)" if result.n_images > 1 else ""
    for row, method in enumerate(result.methods):
        verdict = "passes" if result.passed[row] else "fails"
        sentences.append(
            f"{method} {verdict} the parameter-randomisation check: after randomising {result.steps[-1]} and "
            f"everything above it, its map's |Spearman ρ| with the original is "
            f"{_fmt(float(result.spearman_abs[row, -1]))}{images} (SSIM {_fmt(float(result.ssim[row, -1]))}; "
            f"pass means |ρ| < {_fmt(result.threshold)})."
        )
    return sentences


def findings(summary: ComparisonSummary) -> list[str]:
    """All findings, in report order: agreement, complexity answer, faithfulness, sanity."""
    return [
        *agreement_findings(summary),
        summary.complexity_answer,
        *faithfulness_findings(summary),
        *sanity_findings(summary),
    ]
