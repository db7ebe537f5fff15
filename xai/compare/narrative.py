"""Task 4's findings: short sentences generated from a ``ComparisonSummary`` (no number written by hand, no invented
cut-off), each at most two lines of the report.

A sentence carries the number that answers its question with its 95% interval and n; the full test output (mean
differences and their intervals, both p-values, how many differences were tested, the Holm-adjusted p and its
family) is in the page's tables, not in prose. A claim ("agrees beyond", "more faithful than", a ranking letter) is
made only where its test, Holm-adjusted over its declared family (:mod:`xai.compare.family`), rejects at
``stats.ALPHA`` and the interval agrees. Where a family cannot reach ``ALPHA`` on these images whatever the data, the
sentence says so instead of ranking: that is an answer in its own right. The shared wording is in
:mod:`xai.compare.wording`.

* :func:`answers`: the lines the home page and the top of the Task 4 page open with, each with its topic (which
  section holds its evidence): the assignment's CAMs against the nulls, their ranking, faithfulness, complexity and
  the sanity check, then the same for the powered sample.
* :func:`findings`: every finding in report order (agreement, complexity, faithfulness, design, sanity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from xai.compare.complexity import COMPLEXITY_MEASURES
from xai.compare.faithfulness import RANDOM_METHOD
from xai.compare.family import POWER
from xai.compare.nulls import CENTRE_METHOD
from xai.compare.per_image import LIME_METHOD
from xai.compare.sanity import EDGE_METHOD
from xai.compare.stats import ALPHA
from xai.compare.summary import ComparisonSummary
from xai.compare.wording import (
    BASELINE_NAMES,
    agreement_line,
    beats,
    claimed,
    decimals,
    design_of,
    estimate,
    finite,
    holm_bound,
    no_claim,
    p_text,
    ranking_line,
    reachable,
    scored_at_k,
    seeds_text,
    title,
)

__all__ = ["RANDOM_WEIGHTS_NOTE", "answers", "beats", "claimed", "findings", "seeds_text", "title"]

RANDOM_WEIGHTS_NOTE = (
    "The model has random weights, so the parameter-randomisation sanity check is meaningless and was not run."
)
ADEBAYO = (
    "Reference (Adebayo et al. 2018, Fig. 2): randomisation barely changes Guided Backprop's maps and changes "
    "Gradient and Grad-CAM maps."
)
TOPICS = ("agreement", "faithfulness", "complexity", "sanity", "design")
"""What an answer is about: the section of the Task 4 page that holds its evidence."""


def _primary_rows(summary: ComparisonSummary) -> list[Mapping[str, Any]]:
    """The assignment's CAMs scored at k (every scored CAM when none of them ran), best agreement first."""
    at_k = scored_at_k(summary)
    if at_k.empty:
        return []
    scored = at_k[(at_k["n_images"] > 0) & (at_k["method"] != CENTRE_METHOD)]
    primary = scored[scored["method"].isin(summary.primary)]
    return [row.to_dict() for _, row in (primary if len(primary) else scored.head(3)).iterrows()]


def _faithfulness_answer(summary: ComparisonSummary) -> list[str]:
    ranking = summary.faithfulness_ranking
    if ranking.empty:
        return []
    members = [LIME_METHOD, *summary.primary]
    scored = ranking[ranking["method"].isin(members) & (ranking["n_images"] > 0)]
    if scored.empty:
        return []
    best = scored.iloc[0]
    design = design_of(summary, "faithfulness", "primary")
    beaten = [
        title(row["method"])
        for _, row in scored.iterrows()
        if all(claimed(row, f"vs_{name}_") for name in BASELINE_NAMES)
    ]
    if design is not None and not reachable(design, "one_sided"):
        verdict = no_claim(design, "one_sided")
    elif beaten:
        verdict = f"more faithful than both baselines: {', '.join(beaten)}"
    else:
        verdict = f"none of the {len(scored)} shown more faithful than both baselines"
    return [
        f"Most faithful (insertion − deletion AUC, n = {int(best['n_images'])}): {title(best['method'])} "
        f"{estimate(best, 'score', 3)}; {verdict}."
    ]


def _last_step(summary: ComparisonSummary) -> tuple[list[str], pd.DataFrame | None]:
    """The sanity check's rows at the cascade's last step, or (without them) the sentence saying why there are
    none."""
    result = summary.sanity_result
    if result is None:
        return [], None
    if result.weights_are_random:
        return [RANDOM_WEIGHTS_NOTE], None
    if not result.steps:
        return [f"The sanity check was not run ({result.skip_reason})."], None
    return [], summary.sanity[summary.sanity["step_index"] == len(result.steps) - 1]


def _sanity_answer(summary: ComparisonSummary) -> list[str]:
    said, last = _last_step(summary)
    if last is None:
        return said
    shown = [LIME_METHOD, *summary.primary, EDGE_METHOD]
    parts = [
        f"{title(row['method'])} {decimals(row['spearman_abs_mean'])}"
        for _, row in last.iterrows()
        if row["method"] in shown
    ]
    return [f"Similarity (|ρ|) to the original map after randomising every layer: {', '.join(parts)}."]


def answers(summary: ComparisonSummary, sample: ComparisonSummary | None = None) -> list[tuple[str, str]]:
    """(topic, finding) pairs answering Task 4, in order: the assignment's CAMs against the nulls, their ranking,
    faithfulness and its ranking, complexity, the sanity check; then the powered sample's (prefixed)."""
    found: list[tuple[str, str]] = []
    rows = _primary_rows(summary)
    found += [("agreement", agreement_line(summary, row)) for row in rows]
    at_k = scored_at_k(summary)
    if rows:
        family = str(rows[0].get("superpixel_family", "")) or "primary"
        what = "The assignment's CAMs by IoU" if family == "primary" else "The CAMs by IoU"
        line = ranking_line(summary, at_k, "agreement", family, what, "iou")
        found += [("design", line)] if line else []
    found += [("faithfulness", line) for line in _faithfulness_answer(summary)]
    if not summary.faithfulness_ranking.empty:
        what = "By faithfulness, LIME and the assignment's CAMs"
        line = ranking_line(summary, summary.faithfulness_ranking, "faithfulness", "primary", what, "score")
        found += [("design", line)] if line else []
    found.append(("complexity", complexity_line(summary)))
    found += [("sanity", line) for line in _sanity_answer(summary)]
    if sample is not None:
        prefix = "Powered sample: "  # every line gives its n
        found += [("sample", prefix + line) for topic, line in answers(sample) if topic != "sanity"]
    return found


def complexity_line(summary: ComparisonSummary) -> str:
    """Do simple images agree more than complex ones? The pooled rank correlation of mean IoU with the primary
    complexity measure, with its interval, p and n."""
    pooled = _pooled(summary)
    measure = summary.primary_measure
    label = measure.replace("_", " ")
    if measure not in pooled.index or not finite(pooled.at[measure, "rho"]) or int(pooled.at[measure, "n"]) < 3:
        n = int(pooled.at[measure, "n"]) if measure in pooled.index else 0
        return f"Complexity ({label}) vs agreement cannot be tested on {n} images: a rank correlation needs 3."
    row = pooled.loc[measure]
    rho = decimals(row["rho"])
    if finite(row.get("rho_low")) and finite(row.get("rho_high")):
        rho += f" [{decimals(row['rho_low'])}, {decimals(row['rho_high'])}]"
    stat = f"Spearman ρ = {rho}, p = {p_text(row['p_value'])}, n = {int(row['n'])}"
    if row["p_value"] < ALPHA:
        direction = "less" if row["rho"] < 0 else "more"
        return f"More complex images ({label}) agree {direction} between LIME and the CAMs: {stat}."
    return f"No relation shown between image complexity ({label}) and agreement: {stat}."


def _pooled(summary: ComparisonSummary) -> pd.DataFrame:
    correlations = summary.complexity_correlation
    if correlations.empty:
        return pd.DataFrame(columns=["rho", "p_value", "n"])
    return correlations[(correlations["method"] == "all") & (correlations["k"] == summary.k)].set_index("measure")


def complexity_findings(summary: ComparisonSummary) -> list[str]:
    """The answer, the simplest and most complex image with their IoU, and the other measures' correlations."""
    sentences = [complexity_line(summary)]
    measure, pooled = summary.primary_measure, _pooled(summary)
    agreement, complexity = summary.agreement, summary.complexity
    if measure not in pooled.index or agreement.empty or complexity.empty:
        return sentences
    scored = agreement[(agreement["k"] == summary.k) & (agreement["method"] != CENTRE_METHOD)]
    scored = scored[scored["excluded"] == ""]
    mean_iou = scored.groupby("image", sort=False)["iou"].mean()
    values = complexity.set_index("image")[measure].reindex(mean_iou.index).dropna()
    if len(values) >= 2:
        low, high = values.idxmin(), values.idxmax()
        label = measure.replace("_", " ")
        sentences.append(
            f"Simplest by {label}: {low} ({values[low]:.3g}), mean IoU {mean_iou[low]:.2f}; most complex: {high} "
            f"({values[high]:.3g}), {mean_iou[high]:.2f}."
        )
    others = [
        f"{m.replace('_', ' ')} ρ = {decimals(pooled.at[m, 'rho'])} (p = {p_text(pooled.at[m, 'p_value'])})"
        for m in COMPLEXITY_MEASURES
        if m != measure and m in pooled.index and finite(pooled.at[m, "rho"])
    ]
    if others:
        sentences.append(f"Other complexity measures: {'; '.join(others)}.")
    return sentences


def agreement_findings(summary: ComparisonSummary) -> list[str]:
    """Per method at ``summary.k``: its IoU with interval and the verdict against the nulls; the rankings; the maps
    not scored. The tests behind each verdict are in the page's tables."""
    at_k = scored_at_k(summary)
    if at_k.empty:
        return []
    sentences = []
    first = next((row for _, row in at_k.iterrows() if int(row["n_images"]) > 0), None)
    if first is not None:
        sentences.append(f"IoUs are per image, {seeds_text(summary, first['method'])}.")
    for _, row in at_k.iterrows():
        if int(row["n_images"]) == 0:
            sentences.append(f"{title(row['method'])}: not scored on any image (the table gives the reasons).")
        elif row["method"] == CENTRE_METHOD:
            sentences.append(
                f"Centre prior (no model, a reference): IoU {estimate(row, 'iou')} (n = {int(row['n_images'])})."
            )
        else:
            sentences.append(agreement_line(summary, row.to_dict()))
    for family in ("primary", "exploratory"):
        what = "The assignment's CAMs by IoU" if family == "primary" else "Every CAM by IoU"
        line = ranking_line(summary, at_k, "agreement", family, what, "iou")
        sentences += [line] if line else []
    for _, row in at_k[(at_k["n_excluded"] > 0) & (at_k["n_images"] > 0)].iterrows():
        sentences.append(
            f"{title(row['method'])}: not scored on {int(row['n_excluded'])} image(s) (the table gives the reasons)."
        )
    return sentences


def faithfulness_findings(summary: ComparisonSummary) -> list[str]:
    """Faithfulness rankings, each method against the smooth random maps and the centre prior, and vs agreement."""
    ranking = summary.faithfulness_ranking
    if ranking.empty:
        return []
    sentences = []
    for family in ("primary", "exploratory"):
        what = "By faithfulness, LIME and the assignment's CAMs" if family == "primary" else "Every map by faithfulness"
        line = ranking_line(summary, ranking, "faithfulness", family, what, "score")
        sentences += [line] if line else []
    for _, row in ranking.iterrows():
        method = row["method"]
        if method == RANDOM_METHOD:
            sentences.append(
                f"Smooth random maps: score {estimate(row, 'score', 3)}; SD over one image's draws (mean over "
                f"images) {decimals(row['random_std_mean'], 3)}."
            )
            continue
        if method in BASELINE_NAMES:
            sentences.append(f"Centre prior: score {estimate(row, 'score', 3)} (n = {int(row['n_images'])}).")
            continue
        family = str(row.get(f"vs_{RANDOM_METHOD}_family", ""))
        design = design_of(summary, "faithfulness", family) if family else None
        beaten = [name for name in BASELINE_NAMES if claimed(row, f"vs_{name}_")]
        if design is not None and not reachable(design, "one_sided"):
            verdict = no_claim(design, "one_sided")
        elif beaten:
            bound = holm_bound(row, [f"vs_{name}_" for name in beaten])
            verdict = f"more faithful than {' and '.join(BASELINE_NAMES[name] for name in beaten)}{bound}"
        else:
            verdict = "not shown more faithful than either baseline"
        scope = f" ({family})" if family and family != "primary" else ""
        sentences.append(
            f"{title(method)}: score {estimate(row, 'score', 3)} (n = {int(row['n_images'])}); {verdict}{scope}."
        )
    for _, row in ranking[ranking["n_excluded"] > 0].iterrows():
        sentences.append(
            f"{title(row['method'])}: faithfulness not scored on {int(row['n_excluded'])} image(s) (the table gives "
            "the reasons)."
        )
    rho, n_methods = summary.faithfulness_agreement_rho, summary.faithfulness_agreement_n
    if n_methods >= 3 and finite(rho):
        sentences.append(
            f"Across the {n_methods} CAMs, faithfulness and IoU with LIME: Spearman ρ = {decimals(rho)} "
            f"(p = {p_text(summary.faithfulness_agreement_p)}, n = {n_methods} methods)."
        )
    elif n_methods > 0:
        sentences.append(f"With {n_methods} CAM(s), faithfulness and agreement cannot be correlated.")
    return sentences


def design_line(summary: ComparisonSummary, question: str, family: str, unit: str) -> str:
    """What one family's tests could show on these images: nothing (smallest attainable adjusted p) or the smallest
    effect a lone true claim is detected at with ``POWER``."""
    design = design_of(summary, question, family)
    if design is None:
        return ""
    parts = []
    for side, label in (("one_sided", "vs a null"), ("two_sided", "between methods")):
        if not int(design[f"{side}_tests"]):
            continue
        d, effect = design[f"detectable_d_{side}"], design[f"detectable_{side}"]
        if not reachable(design, side):
            parts.append(f"{label} none claimable (Holm p ≥ {p_text(design[f'smallest_adjusted_p_{side}'])})")
        elif not finite(d):
            parts.append(f"{label} only after other claims reject")
        else:
            parts.append(f"{label} detectable from {d:.2f} SD ({unit} {decimals(effect, 3)})")
    return (
        f"{question.capitalize()}, {family} ({int(design['tests'])} tests, n = {int(design['n_images'])}, "
        f"{POWER:.0%} power): {'; '.join(parts)}."
    )


def design_findings(summary: ComparisonSummary) -> list[str]:
    """What these images can show: per question and family, smallest adjusted p or detectable effect."""
    found = [
        design_line(summary, question, family, unit)
        for question, unit in (("agreement", "IoU"), ("faithfulness", "score"))
        for family in ("primary", "exploratory")
    ]
    return [sentence for sentence in found if sentence]


def sanity_findings(summary: ComparisonSummary) -> list[str]:
    """Similarity to the original map after full cascading randomisation, with the reference points."""
    said, last = _last_step(summary)
    if last is None:
        return said
    result = summary.sanity_result
    sentences = []
    for _, row in last.iterrows():
        constant = int(row["n_constant"])
        left_out = f"; {constant} constant map(s) not scored" if constant else ""
        sentences.append(
            f"{title(row['method'])} after randomising down to {result.steps[-1]}: |Spearman ρ| with its original "
            f"map {estimate(row, 'spearman_abs')}, SSIM {estimate(row, 'ssim')} (n = {int(row['n_images'])}"
            f"{left_out})."
        )
    sentences.append(ADEBAYO)
    return sentences


def sanity_notes(summary: ComparisonSummary) -> list[str]:
    """The warnings raised while explaining the randomised models and the cheaper budgets, one line each (the page
    shows them beside the sanity check)."""
    result = summary.sanity_result
    if result is None:
        return []
    notes = [f"{state}: {text}" for state, text in result.warnings]
    return notes + [f"Cheaper budget under randomisation, {method}: {note}." for method, note in result.budgets]


def findings(summary: ComparisonSummary) -> list[str]:
    """All findings, in report order: agreement, complexity, faithfulness, design, sanity."""
    return [
        *agreement_findings(summary),
        *complexity_findings(summary),
        *faithfulness_findings(summary),
        *design_findings(summary),
        *sanity_findings(summary),
    ]
