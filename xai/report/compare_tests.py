"""The comparison page's tables of tests: agreement and faithfulness per method with their claims, what each family
can show, every pair tested, and the powered sample's section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xai.cache import atomic_write_text
from xai.report.page import fmt_number

if TYPE_CHECKING:
    from xai.compare.sample import SampleResults


def with_interval(row: Any, prefix: str) -> str:
    """``0.41 [0.33, 0.50]``: a mean and its 95% interval (``compare.intervals``; left out when undefined)."""
    mean, low, high = (getattr(row, f"{prefix}_{part}") for part in ("mean", "low", "high"))
    interval = f" [{fmt_number(low)}, {fmt_number(high)}]" if pd.notna(low) and pd.notna(high) else ""
    return f"{fmt_number(mean)}{interval}"


def difference(row: Any, prefix: str, *, one_sided: bool = False) -> str:
    """``+0.12 [0.05, 0.20], p = 0.004`` (the interval of the mean difference, exact Wilcoxon p: two-sided, or
    one-sided "greater" with ``one_sided``), then the Holm-adjusted p and its family where a claim was tested
    (``, Holm 0.02 primary ✓`` when the claim is made), or why it was not tested."""
    diff, low, high = (getattr(row, f"{prefix}{part}") for part in ("diff", "diff_low", "diff_high"))
    p_value = getattr(row, f"{prefix}p_greater" if one_sided else f"{prefix}p")
    if pd.isna(diff):
        return "n/a"
    if pd.isna(p_value):
        return f"{diff:+.3f} ({getattr(row, f'{prefix}test')})"
    interval = f" [{fmt_number(low)}, {fmt_number(high)}]" if pd.notna(low) and pd.notna(high) else ""
    text = f"{diff:+.3f}{interval}, p = {p_value:.2g}"
    family, p_holm = getattr(row, f"{prefix}family", ""), getattr(row, f"{prefix}p_holm", float("nan"))
    if isinstance(family, str) and family and pd.notna(p_holm):
        text += f", Holm {p_holm:.2g} {family}{' ✓' if getattr(row, f'{prefix}claim', False) else ''}"
    return text


def group(value: Any) -> str:
    """Compact letters (methods sharing a letter are not separated); a dash where the method was not ranked."""
    return "–" if not isinstance(value, str) or not value else value


def agreement_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    from xai.compare.stats import ALPHA

    header = [
        "Method",
        "k",
        "Images",
        "IoU [95% CI]",
        "Seed SD (avg)",
        "Superpixel null (avg)",
        "Δ vs superpixel null (one-sided)",
        f"Images p < {ALPHA} (uncorrected)",
        "Δ vs cross-image null (one-sided)",
        "Δ vs location baseline (one-sided)",
        "Δ vs centre prior (two-sided, no claim)",
        "Scattered-pixel chance (avg)",
        "Spearman ρ [95% CI]",
        "Primary group",
        "Group",
    ]
    rows = [
        [
            str(row.method),
            str(row.k),
            str(row.n_images),
            with_interval(row, "iou"),
            fmt_number(row.iou_seed_std_mean),
            fmt_number(row.superpixel_iou_mean),
            difference(row, "superpixel_", one_sided=True),
            str(row.images_beating_superpixel),
            difference(row, "cross_image_", one_sided=True),
            difference(row, "location_", one_sided=True),
            difference(row, "centre_"),
            fmt_number(row.chance_iou_mean),
            with_interval(row, "rho"),
            group(row.primary_group),
            group(row.agreement_group),
        ]
        for row in frame.sort_values(["k", "agreement_order"], kind="stable").itertuples(index=False)
    ]
    return header, rows


def ranking_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [
        "Primary group",
        "Group",
        "Method",
        "Images",
        "Excluded",
        "Deletion AUC ↓",
        "Insertion AUC ↑",
        "Insertion − deletion",
        "Δ vs smooth random (one-sided)",
        "Δ vs centre prior (one-sided)",
        "IoU with LIME (avg)",
        "Agreement group",
    ]
    rows = [
        [
            group(row.primary_group),
            group(row.faithfulness_group),
            str(row.method),
            str(row.n_images),
            str(row.n_excluded),
            with_interval(row, "deletion_auc"),
            with_interval(row, "insertion_auc"),
            with_interval(row, "score"),
            difference(row, "vs_random_", one_sided=True),
            difference(row, "vs_centre_", one_sided=True),
            fmt_number(row.iou_mean),
            group(row.agreement_group),
        ]
        for row in frame.itertuples(index=False)
    ]
    return header, rows


def design_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """What each family can show on these images: tests, smallest attainable adjusted p, detectable effect."""
    header = [
        "Question",
        "Family",
        "Images",
        "Tests (one-sided + two-sided)",
        "Smallest adjusted p: one-sided",
        "two-sided",
        "Detectable (80% power), one-sided: SD [units]",
        "two-sided: SD [units]",
    ]

    def effect(d: float, units: float) -> str:
        return "none" if not pd.notna(d) or d == float("inf") else f"{d:.2f} [{fmt_number(units)}]"

    rows = [
        [
            str(row.question),
            str(row.family),
            str(row.n_images),
            f"{row.tests} ({row.one_sided_tests} + {row.two_sided_tests})",
            fmt_number(row.smallest_adjusted_p_one_sided),
            fmt_number(row.smallest_adjusted_p_two_sided),
            effect(row.detectable_d_one_sided, row.detectable_one_sided) if row.one_sided_tests else "–",
            effect(row.detectable_d_two_sided, row.detectable_two_sided) if row.two_sided_tests else "–",
        ]
        for row in frame.itertuples(index=False)
    ]
    return header, rows


def pair_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Every pair of methods tested at the headline k: difference, two-sided p, Holm p in its family."""
    header = ["A", "B", "Family", "n (non-zero)", "Mean A − B [95% CI]", "p (two-sided)", "Holm p", "Separated"]
    rows = [
        [
            str(row.a),
            str(row.b),
            str(row.family),
            f"{row.n} ({row.nonzero})",
            f"{fmt_number(row.diff)} [{fmt_number(row.diff_low)}, {fmt_number(row.diff_high)}]",
            fmt_number(row.p),
            fmt_number(row.p_holm),
            "yes" if row.separated else "no",
        ]
        for row in frame.itertuples(index=False)
    ]
    return header, rows


def sample_context(sample: SampleResults | None, asset: Callable[[str], Path]) -> dict[str, Any] | None:
    """The powered sample's section: what was drawn and computed, its findings and tables (CSV files prefixed
    ``sample-``), or None without a sample."""
    from xai.compare import findings
    from xai.compare.sample import IMAGENET_SOURCE

    if sample is None:
        return None
    plan, settings = sample.plan, sample.plan.settings
    source = (
        "the 1000 ImageNet sample images (one per class; the ten assignment images left out)"
        if plan.source == IMAGENET_SOURCE
        else "a folder of the user's images"
    )
    context: dict[str, Any] = {
        "n": len(sample.images),
        "drawn": len(plan.drawn),
        "requested": plan.requested,
        "source": source,
        "seed": plan.seed,
        "methods": ", ".join(settings.methods),
        "lime": f"{settings.lime.num_samples} samples x {settings.lime_seeds} seed(s)",
        "steps": settings.steps,
        "cross_image_others": plan.cross_image_others,
        "failed": [f"{image}: {reason}" for image, reason in sample.failed],
        "missing": sample.missing,
        "seconds": f"{sum(item.seconds for item in sample.images) / max(1, len(sample.images)):.1f}",
        "findings": [],
        "csvs": [],
    }
    summary = sample.summary
    if summary is None:
        return context
    for name, text in summary.csv_texts().items():
        atomic_write_text(asset(f"sample-{name}.csv"), text)
    context.update(
        findings=findings(summary),
        csvs=sorted(f"sample-{name}" for name in summary.csv_texts()),
        agreement=agreement_rows(summary.agreement_by_method) if len(summary.agreement_by_method) else ([], []),
        ranking=ranking_rows(summary.faithfulness_ranking) if len(summary.faithfulness_ranking) else ([], []),
        design=design_rows(summary.design),
        agreement_pairs=pair_rows(summary.agreement_pairs),
    )
    return context
