"""The shared pieces of Task 4's sentences (:mod:`xai.compare.narrative` builds them): how methods are named, how a
mean and its interval are written, and the verdicts of a family's tests on one method (beyond the nulls) and on
its pairs (the compact letters, or why a family cannot rank)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from xai.compare.faithfulness import RANDOM_METHOD
from xai.compare.nulls import CENTRE_METHOD
from xai.compare.sanity import EDGE_METHOD
from xai.compare.stats import ALPHA, exceeds
from xai.compare.summary import ComparisonSummary
from xai.explain.registry import METHODS

NULL_NAMES = {
    "superpixel": "the superpixel null",
    "cross_image": "the cross-image null",
    "location": "the location baseline",
}
BASELINE_NAMES = {RANDOM_METHOD: "the smooth random maps", CENTRE_METHOD: "the centre prior"}
TITLES = {CENTRE_METHOD: "Centre prior", RANDOM_METHOD: "Smooth random maps", EDGE_METHOD: "Edge detector"}


def title(method: str) -> str:
    """A method's name as a reader knows it (``Grad-CAM``), from the method registry; baselines by what they are."""
    info = METHODS.get(method)
    return info.title if info is not None else TITLES.get(method, method)


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def decimals(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if finite(value) else "n/a"


def p_text(value: Any) -> str:
    return f"{value:.2g}" if finite(value) else "n/a"


def estimate(row: Mapping[str, Any], prefix: str, digits: int = 2) -> str:
    """``0.41 [0.33, 0.50]``: a mean and its 95% interval (the mean alone where one image gives none)."""
    mean, low, high = row[f"{prefix}_mean"], row[f"{prefix}_low"], row[f"{prefix}_high"]
    bounds = f" [{decimals(low, digits)}, {decimals(high, digits)}]" if finite(low) and finite(high) else ""
    return f"{decimals(mean, digits)}{bounds}"


def beats(row: Mapping[str, Any], prefix: str) -> bool:
    """One uncorrected test: the one-sided paired test rejects at ``ALPHA`` and the interval lies above 0."""
    return exceeds(row[f"{prefix}p_greater"], row[f"{prefix}diff_low"])


def claimed(row: Mapping[str, Any], prefix: str) -> bool:
    """The family's verdict: the Holm-adjusted one-sided p < ``ALPHA`` and the interval above 0."""
    return bool(row.get(f"{prefix}claim", False))


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


def design_of(summary: ComparisonSummary, question: str, family: str) -> Mapping[str, Any] | None:
    design = summary.design
    if design is None or design.empty:
        return None
    rows = design[(design["question"] == question) & (design["family"] == family)]
    return rows.iloc[0].to_dict() if len(rows) else None


def reachable(design: Mapping[str, Any] | None, side: str) -> bool:
    return (
        design is not None
        and finite(design[f"smallest_adjusted_p_{side}"])
        and (design[f"smallest_adjusted_p_{side}"] < ALPHA)
    )


def no_claim(design: Mapping[str, Any], side: str) -> str:
    smallest = p_text(design[f"smallest_adjusted_p_{side}"])
    n = int(design["n_images"])
    return f"no claim possible on {n} image{'s' if n != 1 else ''} (Holm p ≥ {smallest})"


def holm_bound(row: Mapping[str, Any], prefixes: Sequence[str]) -> str:
    """`` (Holm p ≤ 0.012)``: the largest adjusted p among the claims made."""
    values = [row[f"{prefix}p_holm"] for prefix in prefixes if finite(row.get(f"{prefix}p_holm"))]
    return f" (Holm p ≤ {p_text(max(values))})" if values else ""


def null_verdict(row: Mapping[str, Any], design: Mapping[str, Any] | None) -> str:
    """What the family's tests say about "agrees beyond" each null."""
    if not str(row.get("superpixel_family", "")):
        return "no claim tested at this k"
    if design is not None and not reachable(design, "one_sided"):
        return no_claim(design, "one_sided")
    beaten = [name for name in NULL_NAMES if claimed(row, f"{name}_")]
    if not beaten:
        return "not shown beyond any null"
    bound = holm_bound(row, [f"{name}_" for name in beaten])
    if len(beaten) == len(NULL_NAMES):
        return f"beyond all three nulls{bound}"
    missing = [NULL_NAMES[name] for name in NULL_NAMES if name not in beaten]
    return f"beyond {len(beaten)} of 3 nulls, not {' or '.join(missing)}{bound}"


def scored_at_k(summary: ComparisonSummary) -> pd.DataFrame:
    by_method = summary.agreement_by_method
    if by_method.empty:
        return by_method
    return by_method[by_method["k"] == summary.k].sort_values("agreement_order", kind="stable")


def agreement_line(summary: ComparisonSummary, row: Mapping[str, Any]) -> str:
    family = str(row.get("superpixel_family", ""))
    verdict = null_verdict(row, design_of(summary, "agreement", family))
    scope = f" ({family})" if family and family != "primary" else ""
    n = int(row["n_images"])
    return (
        f"{title(row['method'])}: IoU {estimate(row, 'iou')} with LIME's top-{summary.k} (n = {n}); {verdict}{scope}."
    )


LISTED = 4
"""Methods a ranking sentence lists by name; with more, it names the first and the last (every letter is in the
table)."""


def letters_text(frame: pd.DataFrame, column: str, prefix: str, order: str | None) -> str:
    ranked = frame[frame[column].astype(str) != ""]
    if order is not None:
        ranked = ranked.sort_values(order, kind="stable")
    named = [f"{title(r['method'])} {decimals(r[f'{prefix}_mean'])} ({r[column]})" for _, r in ranked.iterrows()]
    if len(named) <= LISTED:
        return ", ".join(named)
    return f"{named[0]} first, {named[-1]} last (every letter in the table)"


def ranking_line(
    summary: ComparisonSummary, frame: pd.DataFrame, question: str, family: str, what: str, prefix: str
) -> str:
    """The family's ranking by compact letters (a shared letter: not separated), or why it has none: one line."""
    design = design_of(summary, question, family)
    if design is None or int(design["two_sided_tests"]) == 0:
        return ""
    column = "primary_group" if family == "primary" else f"{question}_group"
    order = "agreement_order" if question == "agreement" else None
    n, tests = int(design["n_images"]), int(design["tests"])
    if (frame[column].astype(str) != "").any():
        return f"{what} (Holm, {tests} {family} tests, n = {n}): {letters_text(frame, column, prefix, order)}."
    return (
        f"{what} cannot be ranked on {n} images (smallest attainable Holm p "
        f"{p_text(design['smallest_adjusted_p_two_sided'])}, {tests} {family} tests, α = {ALPHA})."
    )
