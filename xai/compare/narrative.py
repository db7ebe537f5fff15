"""Findings sentences generated from a ``ComparisonSummary`` (no number is written by hand, no invented cut-off).

Every mean is printed with its 95% interval and n; every difference is paired over the same images (exact
Wilcoxon signed-rank, the interval of the mean difference). A claim ("agrees beyond", "more faithful than", a
ranking letter) is made only where its test, Holm-adjusted over its declared family (:mod:`xai.compare.family`),
rejects at ``stats.ALPHA`` and the interval agrees; the adjusted p and the family are printed beside it. Where a
family cannot reach ``ALPHA`` on these images whatever the data, the sentence says so instead of ranking, and the
design sentence gives the smallest effect the images could show.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from xai.compare.faithfulness import RANDOM_METHOD
from xai.compare.family import POWER, smallest_p
from xai.compare.nulls import CENTRE_METHOD
from xai.compare.sanity import CONSTANT_REASON, EDGE_METHOD
from xai.compare.stats import ALPHA, NOT_ENOUGH, exceeds
from xai.compare.summary import ComparisonSummary

RANDOM_WEIGHTS_NOTE = (
    "The model has random weights, so the parameter-randomisation sanity check is meaningless and was not run."
)
NULL_NAMES = {
    "superpixel": "the superpixel null",
    "cross_image": "the cross-image null",
    "location": "the location baseline (its own mean map over the other images)",
}
BASELINE_NAMES = {RANDOM_METHOD: "the smooth random maps", CENTRE_METHOD: "the centre prior"}
ADEBAYO = (
    "Adebayo et al. (2018, Fig. 2) found Guided Backprop's maps almost unchanged by cascading "
    "randomisation and Gradient and Grad-CAM maps changed"
)


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "n/a" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value:.2g}"


def interval(row: Mapping[str, Any], prefix: str, digits: int = 2) -> str:
    """``"0.41 (95% CI 0.33 to 0.50)"``, or the mean alone when the interval is undefined."""
    mean, low, high = row[f"{prefix}_mean"], row[f"{prefix}_low"], row[f"{prefix}_high"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{_fmt(mean, digits)} (no interval: one image has no spread)"
    return f"{_fmt(mean, digits)} (95% CI {_fmt(low, digits)} to {_fmt(high, digits)})"


def counted(row: Mapping[str, Any], prefix: str) -> str:
    """``"n = 10"``, or ``"n = 10, 6 non-zero"`` when the signed-rank test dropped zero differences."""
    n = int(row[f"{prefix}n"])
    nonzero = row.get(f"{prefix}nonzero", n)
    tested = int(nonzero) if isinstance(nonzero, (int, float)) and math.isfinite(nonzero) else n
    return f"n = {n}" if tested == n or not math.isfinite(row[f"{prefix}p"]) else f"n = {n}, {tested} non-zero"


def _adjusted(row: Mapping[str, Any], prefix: str) -> str:
    p_holm, family = row.get(f"{prefix}p_holm", math.nan), row.get(f"{prefix}family", "")
    if not isinstance(p_holm, float) or not math.isfinite(p_holm) or not family:
        return ""
    size = int(row.get(f"{prefix}family_size", 0))
    return f"; Holm-adjusted over the {size} {family} tests: {_p(p_holm)}"


def paired(row: Mapping[str, Any], prefix: str, digits: int = 2) -> str:
    """``"difference +0.12 (95% CI 0.05 to 0.20), exact Wilcoxon signed-rank p = 0.004 (two-sided), 0.002
    (one-sided, greater), n = 10, 6 non-zero; Holm-adjusted over the 12 primary tests: 0.024"``."""
    n, test = int(row[f"{prefix}n"]), str(row[f"{prefix}test"])
    if not math.isfinite(row[f"{prefix}p"]):
        reason = test or NOT_ENOUGH
        return f"difference {_fmt(row[f'{prefix}diff'], digits)}, not tested ({reason}, n = {n})"
    sides = f"p = {_p(row[f'{prefix}p'])} (two-sided), {_p(row[f'{prefix}p_greater'])} (one-sided, greater)"
    if not math.isfinite(row[f"{prefix}diff_low"]):
        spread = "(no interval: one image has no spread)"
    else:
        spread = f"(95% CI {_fmt(row[f'{prefix}diff_low'], digits)} to {_fmt(row[f'{prefix}diff_high'], digits)})"
    return (
        f"difference {row[f'{prefix}diff']:+.{digits}f} {spread}, {test} {sides}, {counted(row, prefix)}"
        f"{_adjusted(row, prefix)}"
    )


def beats(row: Mapping[str, Any], prefix: str) -> bool:
    """One uncorrected test: the one-sided paired test rejects at ``ALPHA`` and the interval lies above 0."""
    return exceeds(row[f"{prefix}p_greater"], row[f"{prefix}diff_low"])


def claimed(row: Mapping[str, Any], prefix: str) -> bool:
    """The family's verdict: the Holm-adjusted one-sided p < ``ALPHA`` and the interval above 0."""
    return bool(row.get(f"{prefix}claim", False))


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


def _design(summary: ComparisonSummary, question: str, family: str) -> Mapping[str, Any] | None:
    design = summary.design
    if design is None or design.empty:
        return None
    rows = design[(design["question"] == question) & (design["family"] == family)]
    return rows.iloc[0].to_dict() if len(rows) else None


def letters_rule(design: Mapping[str, Any]) -> str:
    return (
        f"methods that share a letter are not separated; each pair was tested two-sided (exact paired Wilcoxon), "
        f"Holm-adjusted over the {int(design['tests'])} {design['family']} tests, α = {ALPHA}, with the interval "
        "of the mean difference excluding 0"
    )


def unreachable(design: Mapping[str, Any], what: str) -> str:
    """Why a family's pairs cannot be separated on these images, whatever the data."""
    n, tests = int(design["n_images"]), int(design["tests"])
    return (
        f"{what} cannot be ranked on these {n} image(s): the smallest two-sided exact Wilcoxon p with {n} "
        f"differences is {_p(smallest_p(n, 'two-sided'))}, and Holm over the {tests} {design['family']} tests "
        f"cannot bring a pair below α = {ALPHA} whatever the data (smallest attainable adjusted p "
        f"{_p(design['smallest_adjusted_p_two_sided'])}), so no ranking is claimed."
    )


def design_text(summary: ComparisonSummary, question: str, family: str, unit: str) -> str:
    """What the family's tests could show on these images: smallest adjusted p and smallest detectable effect."""
    design = _design(summary, question, family)
    if design is None:
        return ""
    n, tests = int(design["n_images"]), int(design["tests"])
    parts = []
    for name, label in (("one_sided", "one-sided, against a null"), ("two_sided", "two-sided, between methods")):
        count = int(design[f"{name}_tests"])
        if not count:
            continue
        d, effect = design[f"detectable_d_{name}"], design[f"detectable_{name}"]
        reach = design[f"smallest_adjusted_p_{name}"]
        reached = f"smallest attainable adjusted p {_p(reach)}"
        if not reach < ALPHA:
            parts.append(f"{count} {label}: {reached}, so none can be claimed whatever the data")
        elif not math.isfinite(d):
            parts.append(
                f"{count} {label}: {reached}, reached only after other claims of the family reject; a lone true "
                f"difference cannot reach α / {tests}"
            )
        else:
            size = f"{unit} {_fmt(effect, 3)} at the median observed SD {_fmt(design['sd_median'], 3)}"
            parts.append(f"{count} {label}: {reached}; detectable with {POWER:.0%} power from {d:.2f} SD ({size})")
    return f"Design ({question}, {family} family): n = {n} image(s), {tests} tests, Holm; " + "; ".join(parts) + "."


DETECTABLE_NOTE = (
    "A detectable effect is the smallest true mean difference a lone true claim of its family is found at with "
    f"{POWER:.0%} power (level α / tests; the exact Wilcoxon test and the interval on normal differences), in SDs of "
    "its per-image differences and, at the median observed SD, in the measure's units."
)


def _ranking_sentences(
    summary: ComparisonSummary,
    frame: pd.DataFrame,
    question: str,
    prefix: str,
    intro: str,
    digits: int,
    order_column: str | None,
) -> list[str]:
    """The primary ranking (or why there is none) and the exploratory one, for one question."""
    sentences = []
    primary, exploratory = _design(summary, question, "primary"), _design(summary, question, "exploratory")
    group = "agreement_group" if question == "agreement" else "faithfulness_group"
    if primary is not None and int(primary["two_sided_tests"]) > 0:
        if (frame["primary_group"].astype(str) != "").any():
            sentences.append(
                f"{intro}, primary comparison ({letters_rule(primary)}): "
                f"{groups_text(frame, 'primary_group', prefix, digits, order_column)}."
            )
        else:
            sentences.append(unreachable(primary, f"{intro}: the primary methods"))
    if exploratory is not None and int(exploratory["two_sided_tests"]) > 0:
        if (frame[group].astype(str) != "").any():
            sentences.append(
                f"{intro}, every method (each pair judged in its own family: primary pairs as above, the others "
                f"exploratory, {letters_rule(exploratory)}): "
                f"{groups_text(frame, group, prefix, digits, order_column)}."
            )
        else:
            sentences.append(unreachable(exploratory, f"{intro}: the other methods (exploratory family)"))
    return sentences


def agreement_findings(summary: ComparisonSummary) -> list[str]:
    """Per-method agreement at ``summary.k`` against the three nulls, the rankings, the design, excluded maps."""
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
            reference = "Centre prior (1 − distance to the centre, no model; a reference):"
            sentences.append(head.replace(f"{CENTRE_METHOD}:", reference, 1))
            continue
        versus = "; ".join(f"vs {NULL_NAMES[name]}: {paired(row, f'{name}_', 3)}" for name in NULL_NAMES)
        per_image = (
            f" The per-image superpixel permutation test gives p < {ALPHA} on "
            f"{int(row['images_beating_superpixel'])} of {int(row['n_images'])} image(s) "
            "(each p uncorrected for the number of images and methods)."
        )
        design = _design(summary, "agreement", str(row.get("superpixel_family", "")))
        sentences.append(f"{head} Paired over images, {versus}.{per_image}{_verdict(row, design)}")
    sentences += _ranking_sentences(
        summary, at_k, "agreement", "iou", f"Agreement at k = {summary.k} (mean IoU)", 2, "agreement_order"
    )
    for _, row in at_k[(at_k["excluded"].astype(str) != "") & (at_k["n_images"] > 0)].iterrows():
        sentences.append(f"Excluded from {row['method']} (not scored): {row['excluded']}.")
    return sentences


def _verdict(row: Mapping[str, Any], design: Mapping[str, Any] | None) -> str:
    """The family's verdict on "agrees beyond" each null, worded as what each null tests."""
    family = str(row.get("superpixel_family", ""))
    if not family:
        return " No claim is made (no family at this k)."
    if design is not None and not design["smallest_adjusted_p_one_sided"] < ALPHA:
        return (
            f" No claim is possible on these {int(design['n_images'])} image(s) in the {family} family: its smallest "
            f"attainable adjusted p is {_p(design['smallest_adjusted_p_one_sided'])}."
        )
    size = int(row.get("superpixel_family_size", 0))
    rule = f"one-sided, Holm-adjusted over the {size} {family} tests, adjusted p < {ALPHA} and the interval above 0"
    beaten = [NULL_NAMES[name] for name in NULL_NAMES if claimed(row, f"{name}_")]
    missing = [NULL_NAMES[name] for name in NULL_NAMES if not claimed(row, f"{name}_")]
    if not missing:
        return f" It agrees with LIME beyond all three nulls ({rule})."
    shown = f" It agrees with LIME beyond {', '.join(beaten)} ({rule}), but the" if beaten else " The"
    return f"{shown} data do not show it agreeing beyond {', '.join(missing)} ({family} family)."


def faithfulness_findings(summary: ComparisonSummary) -> list[str]:
    """Faithfulness rankings, each method against the smooth random maps and the centre prior, and vs agreement."""
    ranking = summary.faithfulness_ranking
    if ranking.empty:
        return []
    n = int(ranking["n_images"].max())
    intro = f"Faithfulness (mean insertion AUC − deletion AUC, higher is better, n = {n} image(s))"
    sentences = _ranking_sentences(summary, ranking, "faithfulness", "score", intro, 3, None)
    for _, row in ranking.iterrows():
        if row["method"] in BASELINE_NAMES:
            continue
        versus = "; ".join(
            f"vs {BASELINE_NAMES[name]} {paired(row, f'vs_{name}_', 3)}" for name in (RANDOM_METHOD, CENTRE_METHOD)
        )
        beaten = [BASELINE_NAMES[name] for name in BASELINE_NAMES if claimed(row, f"vs_{name}_")]
        family = str(row.get(f"vs_{RANDOM_METHOD}_family", ""))
        verdict = (
            f" It is more faithful than {' and '.join(beaten)} (one-sided, Holm-adjusted over the "
            f"{int(row.get(f'vs_{RANDOM_METHOD}_family_size', 0))} {family} tests, adjusted p < {ALPHA})."
            if beaten
            else f" The data do not show it more faithful than either baseline ({family or 'no'} family)."
        )
        sentences.append(f"{row['method']}: score {interval(row, 'score', 3)}; {versus}.{verdict}")
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
            f"IoU with LIME = {_fmt(rho)} (p = {_p(summary.faithfulness_agreement_p)} two-sided, "
            f"n = {n_methods} methods)."
        )
    elif n_methods > 0:
        sentences.append(f"With {n_methods} CAM method(s), faithfulness and agreement cannot be correlated.")
    return sentences


def design_findings(summary: ComparisonSummary) -> list[str]:
    """What these images can show: per question and family, smallest adjusted p and detectable effect."""
    found = [
        design_text(summary, question, family, unit)
        for question, unit in (("agreement", "IoU difference"), ("faithfulness", "score difference"))
        for family in ("primary", "exploratory")
    ]
    found = [sentence for sentence in found if sentence]
    return [*found, DETECTABLE_NOTE] if found else []


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
    """All findings, in report order: agreement, complexity answer, faithfulness, design, sanity."""
    return [
        *agreement_findings(summary),
        summary.complexity_answer,
        *faithfulness_findings(summary),
        *design_findings(summary),
        *sanity_findings(summary),
    ]
