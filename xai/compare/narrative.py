"""Findings sentences generated from a ``ComparisonSummary`` (no number is written by hand, no invented cut-off).

Every mean is printed with its 95% bootstrap interval and n; every "A agrees more / is more faithful than B"
is a paired test over the same images (exact Wilcoxon signed-rank for n <= 20, with the paired bootstrap
interval of the difference); a claim is worded as a claim only where that test rejects at ``stats.ALPHA``,
and the p-value is printed beside it. Rankings are groups the data separate (``stats.rank_groups``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from xai.compare.faithfulness import RANDOM_METHOD
from xai.compare.nulls import CENTRE_METHOD
from xai.compare.sanity import CONSTANT_REASON, EDGE_METHOD
from xai.compare.stats import ALPHA, NOT_ENOUGH, exceeds
from xai.compare.summary import ComparisonSummary

RANDOM_WEIGHTS_NOTE = (
    "The model has random weights, so the parameter-randomisation sanity check is meaningless and was not run."
)
NULL_NAMES = {"superpixel": "the superpixel null", "cross_image": "the cross-image null", "centre": "the centre prior"}
ADEBAYO = (
    "Adebayo et al. (2018, Fig. 2) found Guided Backprop's maps almost unchanged by cascading "
    "randomisation and Gradient and Grad-CAM maps changed"
)


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2g}"


def interval(row: Mapping[str, Any], prefix: str, digits: int = 2) -> str:
    """``"0.41 (95% CI 0.33–0.50)"``, or the mean alone when the interval is undefined."""
    mean, low, high = row[f"{prefix}_mean"], row[f"{prefix}_low"], row[f"{prefix}_high"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{_fmt(mean, digits)} (no interval: fewer than 3 images)"
    return f"{_fmt(mean, digits)} (95% CI {_fmt(low, digits)} to {_fmt(high, digits)})"


def paired(row: Mapping[str, Any], prefix: str, digits: int = 2) -> str:
    """``"difference +0.12 (95% CI 0.05–0.20), exact Wilcoxon signed-rank p = 0.004, n = 10"``."""
    n, test = int(row[f"{prefix}n"]), str(row[f"{prefix}test"])
    if not math.isfinite(row[f"{prefix}p"]):
        reason = test or NOT_ENOUGH
        return f"difference {_fmt(row[f'{prefix}diff'], digits)}, not tested ({reason}, n = {n})"
    if not math.isfinite(row[f"{prefix}diff_low"]):
        return (
            f"difference {row[f'{prefix}diff']:+.{digits}f} (no interval: fewer than 3 images), {test} "
            f"p = {_p(row[f'{prefix}p'])}, n = {n}"
        )
    return (
        f"difference {row[f'{prefix}diff']:+.{digits}f} (95% CI {_fmt(row[f'{prefix}diff_low'], digits)} to "
        f"{_fmt(row[f'{prefix}diff_high'], digits)}), {test} p = {_p(row[f'{prefix}p'])} (two-sided), "
        f"{_p(row[f'{prefix}p_greater'])} (one-sided, greater), n = {n}"
    )


def beats(row: Mapping[str, Any], prefix: str) -> bool:
    """ "A beats B": the one-sided paired Wilcoxon test rejects and the paired bootstrap interval lies above 0."""
    return exceeds(row[f"{prefix}p_greater"], row[f"{prefix}diff_low"])


def groups_text(
    frame: pd.DataFrame, group_column: str, value_prefix: str, digits: int = 2, order_column: str | None = None
) -> str:
    """``"A 0.41 (a), B 0.40 (ab), C 0.20 (b)"`` in rank order, with each method's compact letters."""
    ranked = frame[frame[group_column].astype(str) != ""]
    if order_column is not None:
        ranked = ranked.sort_values(order_column, kind="stable")
    return ", ".join(
        f"{row['method']} {_fmt(row[f'{value_prefix}_mean'], digits)} ({row[group_column]})"
        for _, row in ranked.iterrows()
    )


LETTERS_RULE = (
    "methods that share a letter are not separated by the data; every pair was tested (two-sided "
    f"paired Wilcoxon, Holm-corrected over all pairs, α = {ALPHA}, and the paired bootstrap interval "
    "of the difference excluding 0)"
)


def seeds_text(summary: ComparisonSummary, method: str) -> str:
    """How many LIME seeds each image's IoU averages, from the scored rows (they can differ between images)."""
    table = summary.agreement
    rows = table[(table["method"] == method) & (table["k"] == summary.k) & (table["excluded"] == "")]
    counts = sorted(int(n) for n in rows["n_seeds"]) if len(rows) else [1]
    if counts[0] == counts[-1]:
        return f"each the mean over {counts[0]} LIME seed(s)"
    fewest = sum(1 for n in counts if n == counts[0])
    return (
        f"each the mean over the LIME seeds computed for that image ({counts[0]} to {counts[-1]}; "
        f"{fewest} image(s) with {counts[0]})"
    )


def agreement_findings(summary: ComparisonSummary) -> list[str]:
    """Per-method agreement at ``summary.k`` against the three nulls, the groups, and excluded maps."""
    by_method = summary.agreement_by_method
    if by_method.empty:
        return []
    at_k = by_method[by_method["k"] == summary.k]
    sentences = []
    for _, row in at_k.iterrows():
        if int(row["n_images"]) == 0:
            sentences.append(f"{row['method']}: not scored on any image ({row['excluded']}).")
            continue
        head = (
            f"{row['method']}: mean area-matched IoU with LIME's top-{summary.k} mask "
            f"{interval(row, 'iou')} over {int(row['n_images'])} image(s), {seeds_text(summary, row['method'])} "
            f"(average seed-to-seed SD {_fmt(row['iou_seed_std_mean'])})."
        )
        if row["method"] == CENTRE_METHOD:
            sentences.append(head.replace(f"{CENTRE_METHOD}:", "Centre prior (a centred Gaussian, no model):", 1))
            continue
        versus = "; ".join(
            f"vs {NULL_NAMES[name]}: {paired(row, f'{name}_', 3)}" for name in ("superpixel", "cross_image", "centre")
        )
        per_image = (
            f" The per-image superpixel permutation test gives p < {ALPHA} on "
            f"{int(row['images_beating_superpixel'])} of {int(row['n_images'])} image(s) "
            "(each p uncorrected for the number of images and methods)."
        )
        beaten = [NULL_NAMES[name] for name in NULL_NAMES if beats(row, f"{name}_")]
        missing = [NULL_NAMES[name] for name in NULL_NAMES if not beats(row, f"{name}_")]
        if not missing:
            verdict = (
                f" It agrees with LIME beyond all three nulls (each one-sided paired Wilcoxon p < {ALPHA} "
                "and paired bootstrap interval above 0)."
            )
        else:
            shown = (
                (
                    f" It agrees beyond {', '.join(beaten)} (one-sided paired Wilcoxon p < {ALPHA} and paired "
                    "bootstrap interval above 0), but the"
                )
                if beaten
                else " The"
            )
            verdict = f"{shown} data do not show it agreeing beyond {', '.join(missing)}."
        sentences.append(f"{head} Paired over images, {versus}.{per_image}{verdict}")
    if len(at_k) > 1:
        sentences.append(
            f"Agreement groups at k = {summary.k} (mean IoU, compact letters; {LETTERS_RULE}): "
            f"{groups_text(at_k, 'agreement_group', 'iou', order_column='agreement_order')}."
        )
    for _, row in at_k[(at_k["excluded"].astype(str) != "") & (at_k["n_images"] > 0)].iterrows():
        sentences.append(f"Excluded from {row['method']} (not scored): {row['excluded']}.")
    return sentences


def faithfulness_findings(summary: ComparisonSummary) -> list[str]:
    """Faithfulness groups, each method against the smooth random maps and the centre prior, and vs agreement."""
    ranking = summary.faithfulness_ranking
    if ranking.empty:
        return []
    n = int(ranking["n_images"].max())
    sentences = [
        f"Faithfulness groups (mean insertion AUC − deletion AUC, higher is better, compact letters; {LETTERS_RULE}; "
        f"n = {n} image(s)): " + groups_text(ranking, "faithfulness_group", "score", 3) + "."
    ]
    for _, row in ranking.iterrows():
        if row["method"] in (RANDOM_METHOD, CENTRE_METHOD):
            continue
        sentences.append(
            f"{row['method']}: score {interval(row, 'score', 3)}; vs the smooth random maps "
            f"{paired(row, f'vs_{RANDOM_METHOD}_', 3)}; vs the centre prior "
            f"{paired(row, f'vs_{CENTRE_METHOD}_', 3)}."
        )
    for _, row in ranking[ranking["excluded"].astype(str) != ""].iterrows():
        sentences.append(f"Excluded from {row['method']}'s faithfulness (not scored): {row['excluded']}.")
    random_rows = ranking[ranking["method"] == RANDOM_METHOD]
    if len(random_rows):
        row = random_rows.iloc[0]
        sentences.append(
            f"Smooth random maps: score {interval(row, 'score', 3)}; standard deviation over the "
            f"draws of one image, averaged over images: {_fmt(row['random_std_mean'], 3)}."
        )
    rho, n_methods = summary.faithfulness_agreement_rho, summary.faithfulness_agreement_n
    if n_methods >= 3 and math.isfinite(rho):
        sentences.append(
            f"Across the {n_methods} CAM methods, Spearman ρ between mean faithfulness score and mean "
            f"IoU with LIME = {_fmt(rho)} (p = {_p(summary.faithfulness_agreement_p)}, "
            f"n = {n_methods} methods)."
        )
    elif n_methods > 0:
        sentences.append(f"With {n_methods} CAM method(s), faithfulness and agreement cannot be correlated.")
    return sentences


def sanity_findings(summary: ComparisonSummary) -> list[str]:
    """Similarity to the original map after full cascading randomisation, with the reference points."""
    result = summary.sanity_result
    if result is None:
        return []
    if result.weights_are_random:
        return [RANDOM_WEIGHTS_NOTE]
    if not result.steps:
        return [f"The sanity check was not run ({result.skip_reason})."]
    table = summary.sanity
    last = table[table["step_index"] == len(result.steps) - 1]
    sentences = []
    for _, row in last.iterrows():
        abs_row = {
            "x_mean": row["spearman_abs_mean"],
            "x_low": row["spearman_abs_low"],
            "x_high": row["spearman_abs_high"],
        }
        ssim_row = {"x_mean": row["ssim_mean"], "x_low": row["ssim_low"], "x_high": row["ssim_high"]}
        constant = int(row["n_constant"])
        left_out = f" ({constant} map(s) constant, not scored: {CONSTANT_REASON})" if constant else ""
        sentences.append(
            f"{row['method']}: after randomising {result.steps[-1]} and every layer above it, mean "
            f"|Spearman ρ| with its original map {interval(abs_row, 'x')}, SSIM "
            f"{interval(ssim_row, 'x')}, n = {int(row['n_images'])} image(s){left_out}."
        )
    references = f"Reference points: {ADEBAYO}."
    if EDGE_METHOD in set(last["method"]):
        references += (
            f" The {EDGE_METHOD}, which never sees the model, stays at |ρ| = "
            f"{_fmt(float(last.loc[last['method'] == EDGE_METHOD, 'spearman_abs_mean'].iloc[0]))}."
        )
    sentences.append(references)
    if result.warnings:
        sentences.append(
            "Warnings raised while explaining the randomised models: "
            + "; ".join(f"{state}: {text}" for state, text in result.warnings)
            + "."
        )
    if result.budgets:
        sentences.append(
            "Cheaper budgets under randomisation: "
            + "; ".join(f"{method}: {note}" for method, note in result.budgets)
            + "."
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
