"""The Task 4 page's tables: each a :class:`~xai.report.blocks.Table` whose header and rows come from one object,
filled from the comparison summary's data frames (selection and renaming only: every number was computed by
:mod:`xai.compare`, and the template's filters format it).

* agreement at the headline k (the summary the answers rest on) and at every k with every column;
* every claim tested, one row each (the full test output: mean difference and its interval, both p-values, how
  many differences were tested, the Holm-adjusted p in its family and whether the claim is made);
* every pair of methods, faithfulness per method, what each family can show, the sanity check, complexity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from xai.report.blocks import Column, Estimate, Table, Test, table

if TYPE_CHECKING:
    from xai.compare.summary import ComparisonSummary

NULL_TITLES = {"superpixel": "superpixel null", "cross_image": "cross-image null", "location": "location baseline"}
BASELINE_TITLES = {"random": "smooth random maps", "centre": "centre prior"}


def _records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The rows of a data frame as dicts of column -> value, with Python's own types (``int``, not a float64 that
    a numeric row would be upcast to)."""
    yield from frame.to_dict("records")


@dataclass(frozen=True)
class ClaimRow:
    """One test of a claim: the subject, what it is tested against, and the test (:class:`Test`)."""

    method: str
    against: str
    test: Test


def agreement_summary(summary: ComparisonSummary) -> Table:
    """Agreement at the headline k, best first: IoU with its interval, the nulls' means and each "agrees beyond"
    claim (mean difference, interval, Holm p, ✓ when made), the ranking letters."""
    by_method = summary.agreement_by_method
    rows = []
    if len(by_method):
        at_k = by_method[by_method["k"] == summary.k].sort_values("agreement_order", kind="stable")
        for row in _records(at_k):
            rows.append(
                {
                    "method": row["method"],
                    "n_images": row["n_images"],
                    "iou": Estimate.of(row, "iou"),
                    "superpixel": row["superpixel_iou_mean"],
                    "cross_image": row.get("cross_image_iou_mean", float("nan")),
                    "location": row["location_iou_mean"],
                    **{f"vs_{name}": Test.of(row, f"{name}_", one_sided=True) for name in NULL_TITLES},
                    "primary_group": row["primary_group"],
                    "group": row["agreement_group"],
                }
            )
    return table(
        rows,
        ("Method", "method"),
        ("Images", "n_images"),
        ("IoU [95% CI]", "iou", "ci"),
        ("Superpixel null (avg)", "superpixel", "num"),
        ("Cross-image null (avg)", "cross_image", "num"),
        ("Location baseline (avg)", "location", "num"),
        ("Beyond superpixel null: Δ [95% CI], Holm p", "vs_superpixel", "claim"),
        ("Beyond cross-image null", "vs_cross_image", "claim"),
        ("Beyond location baseline", "vs_location", "claim"),
        ("Primary group", "primary_group", "group"),
        ("Group", "group", "group"),
    )


def agreement_every_k(frame: pd.DataFrame) -> Table:
    """Every method at every k with every column (descriptive p-values at the other k: no claim there)."""
    from xai.compare.stats import ALPHA

    rows = [
        {
            **row,
            "iou": Estimate.of(row, "iou"),
            "dice": Estimate.of(row, "dice"),
            "rho": Estimate.of(row, "rho"),
            **{f"vs_{name}": Test.of(row, f"{name}_", one_sided=True) for name in NULL_TITLES},
            "vs_centre": Test.of(row, "centre_"),
        }
        for row in _records(frame.sort_values(["k", "agreement_order"], kind="stable") if len(frame) else frame)
    ]
    return table(
        rows,
        ("Method", "method"),
        ("k", "k"),
        ("Images", "n_images"),
        ("Excluded", "n_excluded"),
        ("IoU [95% CI]", "iou", "ci"),
        ("Seed SD (avg)", "iou_seed_std_mean", "num"),
        ("Superpixel null (avg)", "superpixel_iou_mean", "num"),
        ("Δ vs superpixel null (one-sided)", "vs_superpixel", "test"),
        (f"Images p < {ALPHA} (uncorrected)", "images_beating_superpixel"),
        ("Δ vs cross-image null (one-sided)", "vs_cross_image", "test"),
        ("Δ vs location baseline (one-sided)", "vs_location", "test"),
        ("Δ vs centre prior (two-sided, no claim)", "vs_centre", "test"),
        ("Scattered-pixel chance (avg)", "chance_iou_mean", "num"),
        ("Dice [95% CI]", "dice", "ci"),
        ("Spearman ρ [95% CI]", "rho", "ci"),
        ("Primary group", "primary_group", "group"),
        ("Group", "agreement_group", "group"),
    )


CLAIM_COLUMNS = (
    Column("Method", "method"),
    Column("Against", "against"),
    Column("Family", "test.family"),
    Column("n", "test.n"),
    Column("Non-zero", "test.nonzero"),
    Column("Mean difference [95% CI]", "test.difference", "ci"),
    Column("p (two-sided)", "test.p", "p"),
    Column("p (one-sided, greater)", "test.p_greater", "p"),
    Column("Holm p", "test.p_holm", "p"),
    Column("Tests in family", "test.family_size"),
    Column("Claimed", "test.claimed", "yesno"),
    Column("Test", "test.note"),
)


def agreement_claims(summary: ComparisonSummary) -> Table:
    """Every "agrees beyond" claim at the headline k: one row per CAM and null, the test's full output."""
    by_method = summary.agreement_by_method
    rows = []
    if len(by_method):
        at_k = by_method[(by_method["k"] == summary.k) & (by_method["n_images"] > 0)]
        at_k = at_k[at_k["superpixel_family"].astype(str) != ""] if "superpixel_family" in at_k else at_k.iloc[:0]
        for row in _records(at_k.sort_values("agreement_order", kind="stable")):
            rows += [ClaimRow(row["method"], title, Test.of(row, f"{name}_", one_sided=True))
                     for name, title in NULL_TITLES.items()]  # fmt: skip
    return Table(CLAIM_COLUMNS, tuple(rows))


def faithfulness_claims(summary: ComparisonSummary) -> Table:
    """Every "more faithful than" claim: one row per method and baseline map."""
    rows = []
    for row in _records(summary.faithfulness_ranking):
        if row["method"] in BASELINE_TITLES:
            continue
        rows += [ClaimRow(row["method"], title, Test.of(row, f"vs_{name}_", one_sided=True))
                 for name, title in BASELINE_TITLES.items()]  # fmt: skip
    return Table(CLAIM_COLUMNS, tuple(rows))


def ranking_table(frame: pd.DataFrame) -> Table:
    """Faithfulness per method, most faithful first: AUCs and score with intervals, the claims against the
    baselines, agreement beside it."""
    rows = [
        {
            **row,
            "deletion": Estimate.of(row, "deletion_auc"),
            "insertion": Estimate.of(row, "insertion_auc"),
            "score": Estimate.of(row, "score"),
            "vs_random": Test.of(row, "vs_random_", one_sided=True),
            "vs_centre": Test.of(row, "vs_centre_", one_sided=True),
        }
        for row in _records(frame)
    ]
    return table(
        rows,
        ("Primary group", "primary_group", "group"),
        ("Group", "faithfulness_group", "group"),
        ("Method", "method"),
        ("Images", "n_images"),
        ("Excluded", "n_excluded"),
        ("Deletion AUC ↓", "deletion", "ci"),
        ("Insertion AUC ↑", "insertion", "ci"),
        ("Insertion − deletion", "score", "ci"),
        ("Δ vs smooth random (one-sided)", "vs_random", "test"),
        ("Δ vs centre prior (one-sided)", "vs_centre", "test"),
        ("IoU with LIME (avg)", "iou_mean", "num"),
        ("Agreement group", "agreement_group", "group"),
    )


def excluded_table(summary: ComparisonSummary) -> Table:
    """Why maps were not scored: per method and question, the reasons recorded (image: reason; ...)."""
    rows = []
    by_method = summary.agreement_by_method
    if len(by_method):
        at_k = by_method[(by_method["k"] == summary.k) & (by_method["excluded"].astype(str) != "")]
        rows += [
            {"method": row["method"], "question": "agreement", "reasons": row["excluded"]} for row in _records(at_k)
        ]
    ranking = summary.faithfulness_ranking
    if len(ranking):
        found = ranking[ranking["excluded"].astype(str) != ""]
        rows += [
            {"method": row["method"], "question": "faithfulness", "reasons": row["excluded"]} for row in _records(found)
        ]
    return table(rows, ("Method", "method"), ("Question", "question"), ("Images and reasons", "reasons"))


def design_table(frame: pd.DataFrame) -> Table:
    """What each family can show on these images: tests, smallest attainable adjusted p, detectable effect."""
    rows = [
        {
            **row,
            # a side without tests has no detectable effect: None (shown as a dash), not "none"
            **{
                f"{part}_{side}": row[f"{part}_{side}"] if row[f"{side}_tests"] else None
                for side in ("one_sided", "two_sided")
                for part in ("detectable_d", "detectable")
            },
        }
        for row in _records(frame)
    ]
    return table(
        rows,
        ("Question", "question"),
        ("Family", "family"),
        ("Images", "n_images"),
        ("Tests", "tests"),
        ("One-sided", "one_sided_tests"),
        ("Two-sided", "two_sided_tests"),
        ("Smallest attainable Holm p, one-sided", "smallest_adjusted_p_one_sided", "num"),
        ("two-sided", "smallest_adjusted_p_two_sided", "num"),
        ("Detectable (80% power), one-sided: SD", "detectable_d_one_sided", "effect", 2),
        ("units", "detectable_one_sided", "effect", 3),
        ("two-sided: SD", "detectable_d_two_sided", "effect", 2),
        ("units", "detectable_two_sided", "effect", 3),
    )


def pairs_table(frame: pd.DataFrame) -> Table:
    """Every pair of methods tested at the headline k: difference, two-sided p, Holm p in its family."""
    rows = [{**row, "difference": Estimate(row["diff"], row["diff_low"], row["diff_high"])} for row in _records(frame)]
    return table(
        rows,
        ("A", "a"),
        ("B", "b"),
        ("Family", "family"),
        ("n", "n"),
        ("Non-zero", "nonzero"),
        ("Mean A − B [95% CI]", "difference", "ci"),
        ("p (two-sided)", "p", "p"),
        ("Holm p", "p_holm", "p"),
        ("Separated", "separated", "yesno"),
    )


def sanity_table(frame: pd.DataFrame) -> Table:
    rows = [
        {
            **row,
            "spearman_abs": Estimate.of(row, "spearman_abs"),
            "spearman": Estimate.of(row, "spearman"),
            "ssim": Estimate.of(row, "ssim"),
        }
        for row in _records(frame)
    ]
    return table(
        rows,
        ("Method", "method"),
        ("Randomised down to", "step"),
        ("Images", "n_images"),
        ("Constant maps (not scored)", "n_constant"),
        ("|Spearman ρ| [95% CI]", "spearman_abs", "ci"),
        ("Signed ρ [95% CI]", "spearman", "ci"),
        ("SSIM [95% CI]", "ssim", "ci"),
    )


def correlation_table(frame: pd.DataFrame) -> Table:
    """Spearman ρ of IoU with every complexity measure (pooled over CAMs and per CAM), with its interval."""
    rows = [{**row, "rho_ci": Estimate(row["rho"], row["rho_low"], row["rho_high"])} for row in _records(frame)]
    return table(
        rows,
        ("Method", "method"),
        ("LIME top-k", "k"),
        ("Complexity measure", "measure"),
        ("Spearman ρ [95% CI]", "rho_ci", "ci"),
        ("p", "p_value", "p"),
        ("Images", "n"),
    )


def complexity_table(frame: pd.DataFrame) -> Table:
    """Each image's complexity, one column per measure."""
    columns = [Column("Image", "image")] + [
        Column(name.replace("_", " ").capitalize(), name, "auto") for name in frame.columns if name != "image"
    ]
    return Table(tuple(columns), tuple(_records(frame)))
