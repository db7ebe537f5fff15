"""Per-method tables with uncertainty: every mean with its 95% interval, every claim a test of a declared family.

Agreement (per method x k): mean IoU over images with its interval, and paired comparisons over the same images
(``stats.paired_comparison``: mean difference, its interval, exact signed-rank p):

* ``superpixel_*``: IoU − the image's superpixel-null mean (``nulls.SuperpixelNull``); beside it, on how many
  images the per-image permutation p is below ``ALPHA`` (uncorrected, a description);
* ``cross_image_*``: IoU − the mean IoU of the same method's CAMs from the other images;
* ``location_*``: IoU − the IoU of the location baseline (the method's mean map over the other images);
* ``centre_*``: IoU − the centre prior's IoU (descriptive: no claim is made on it).

At the headline k every CAM's "agrees beyond" each of the three nulls is a one-sided claim and every pair of CAMs a
two-sided one, in the primary or exploratory family (:mod:`xai.compare.family`); ``*_p_holm`` is the p adjusted
over that family and ``*_claim`` whether the claim is made. Other k: raw p-values only (uncorrected), no claim.

Faithfulness (per method): mean deletion/insertion AUC and score (insertion − deletion) with intervals, paired
comparisons against the smooth random maps (mean over draws per image) and the centre prior, and between methods,
in families the same way.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xai.compare.family import PRIMARY_CAMS, Claim, FamilyName, Verdict, adjust, attainable, design_row
from xai.compare.intervals import interval
from xai.compare.nulls import CENTRE_METHOD
from xai.compare.stats import ALPHA, PairedComparison, compact_letters, paired_comparison

NULLS = ("superpixel", "cross_image", "location")
"""The nulls an agreement claim is tested against (each one-sided)."""
DESCRIPTIVE = ("centre",)
PAIR_COLUMNS = [
    "k", "a", "b", "family", "n", "nonzero", "diff", "diff_low", "diff_high", "sd", "interval", "p", "p_greater",
    "test", "p_holm", "family_size", "separated",
]  # fmt: skip


@dataclass
class Tested:
    """A question's tables: per method, per pair of methods, and what the design can reach per family."""

    by_method: pd.DataFrame
    pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))
    design: list[dict[str, object]] = field(default_factory=list)


UNIT = (0.0, 1.0)
SIGNED = (-1.0, 1.0)


def _interval(prefix: str, values: pd.Series, seed: int, bounds: tuple[float, float]) -> dict[str, float | str]:
    mean, low, high, _, method = interval(values.to_numpy(dtype=np.float64), seed=seed, bounds=bounds)
    return {f"{prefix}_mean": mean, f"{prefix}_low": low, f"{prefix}_high": high, f"{prefix}_interval": method}


def _family(subjects: Sequence[str], primary: Sequence[str]) -> FamilyName:
    return "primary" if all(subject in primary for subject in subjects) else "exploratory"


def _claims_into_rows(
    frame: pd.DataFrame, rows_at: pd.Series, claims: list[Claim], prefix: str, others: Sequence[str]
) -> list[Verdict]:
    """Holm over the families of ``claims``; each subject-vs-``others`` verdict written into ``frame``."""
    verdicts = adjust(claims)
    for other in others:
        for column, empty in (("p_holm", math.nan), ("family", ""), ("family_size", 0), ("claim", False)):
            if f"{prefix}{other}_{column}" not in frame.columns:
                frame[f"{prefix}{other}_{column}"] = empty
    for verdict in verdicts:
        claim = verdict.claim
        if claim.other not in others:
            continue
        where = rows_at & (frame["method"] == claim.subject)
        frame.loc[where, f"{prefix}{claim.other}_p_holm"] = verdict.p_holm
        frame.loc[where, f"{prefix}{claim.other}_family"] = claim.family
        frame.loc[where, f"{prefix}{claim.other}_family_size"] = verdict.family_size
        frame.loc[where, f"{prefix}{claim.other}_claim"] = verdict.holds
    return verdicts


def _pairs(
    scores: dict[str, np.ndarray], primary: Sequence[str], seed: int
) -> tuple[list[Claim], dict[tuple[str, str], PairedComparison]]:
    comparisons = {
        (a, b): paired_comparison(scores[a], scores[b], seed=seed) for a, b in itertools.combinations(scores, 2)
    }
    claims = [Claim(_family((a, b), primary), a, b, "two-sided", c) for (a, b), c in comparisons.items()]
    return claims, comparisons


def _pair_rows(k: int, verdicts: Sequence[Verdict]) -> list[dict[str, object]]:
    rows = []
    for verdict in verdicts:
        claim = verdict.claim
        rows.append(
            {
                "k": k,
                "a": claim.subject,
                "b": claim.other,
                "family": claim.family,
                **claim.comparison.as_dict(),
                "p_holm": verdict.p_holm,
                "family_size": verdict.family_size,
                "separated": verdict.holds,
            }
        )
    return rows


def _reachable(design: Sequence[dict[str, object]], family: str | None) -> bool:
    """Whether the two-sided pair claims of ``family`` (None: of any family) can reach ``ALPHA`` at all."""
    return any(attainable(row, "two-sided") for row in design if family is None or row["family"] == family)


def _letters(order: Sequence[str], pair_rows: list[dict[str, object]], members: Sequence[str]) -> dict[str, str]:
    """Compact letters among ``members`` (in ``order``) from the pairs whose claim holds."""
    chosen = [method for method in order if method in members]
    found = {
        frozenset((str(row["a"]), str(row["b"])))
        for row in pair_rows
        if row["separated"] and row["a"] in members and row["b"] in members
    }
    return compact_letters(chosen, found)


def agreement_tests(
    table: pd.DataFrame, *, k: int | None = None, primary: Sequence[str] = PRIMARY_CAMS, seed: int = 0
) -> Tested:
    """Per method x k rows of an ``agreement_table`` (``cross_image_iou``/``location_iou`` filled in), the pair
    comparisons at ``k`` (default: the smallest k) and the design of each family there."""
    rows = []
    scored = table[table["excluded"] == ""]
    centre = scored[scored["method"] == CENTRE_METHOD].set_index(["image", "k"])["iou"]
    for (method, at_k), group in table.groupby(["method", "k"], sort=False):
        kept = group[group["excluded"] == ""]
        reasons = sorted({f"{row.image}: {row.excluded}" for row in group.itertuples() if row.excluded})
        row: dict[str, object] = {
            "method": method,
            "k": int(at_k),
            "n_images": len(kept),
            "n_excluded": len(group) - len(kept),
            "excluded": "; ".join(reasons),
        }
        row.update(_interval("iou", kept["iou"], seed, UNIT))
        row["iou_seed_std_mean"] = float(kept["iou_seed_std"].mean()) if len(kept) else math.nan
        row["chance_iou_mean"] = float(kept["chance_iou"].mean()) if len(kept) else math.nan
        row["superpixel_iou_mean"] = float(kept["superpixel_iou"].mean()) if len(kept) else math.nan
        row["location_iou_mean"] = float(kept["location_iou"].mean()) if len(kept) else math.nan
        row["cross_image_iou_mean"] = float(kept["cross_image_iou"].mean()) if len(kept) else math.nan
        row["images_beating_superpixel"] = int(np.sum(kept["superpixel_p"] < ALPHA))
        is_centre = method == CENTRE_METHOD
        baselines = {
            "superpixel": kept["superpixel_iou"].to_numpy(dtype=np.float64),
            "cross_image": kept["cross_image_iou"].to_numpy(dtype=np.float64),
            "location": kept["location_iou"].to_numpy(dtype=np.float64),
            "centre": np.array([centre.get((image, at_k), math.nan) for image in kept["image"]], dtype=np.float64),
        }
        for name, baseline in baselines.items():
            if is_centre and name != "superpixel":
                baseline = np.full(len(kept), np.nan)  # the centre prior is a reference map, not a subject
            comparison = paired_comparison(kept["iou"].to_numpy(dtype=np.float64), baseline, seed=seed)
            row.update(comparison.as_dict(f"{name}_"))
            row[f"_{name}"] = comparison
        row.update(_interval("dice", kept["dice"], seed, UNIT))
        row.update(_interval("rho", kept["rho"], seed, SIGNED))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return Tested(frame)
    headline = int(frame["k"].min()) if k is None else int(k)
    frame["agreement_order"] = (
        frame.groupby("k")["iou_mean"].rank(ascending=False, method="first").fillna(0).astype(np.int64) - 1
    )
    at = (frame["k"] == headline) & (frame["method"] != CENTRE_METHOD) & (frame["n_images"] > 0)
    subjects = list(frame.loc[at].sort_values("agreement_order")["method"])
    tested = frame.loc[at].set_index("method")
    claims = [
        Claim(_family((method,), primary), method, name, "greater", tested.at[method, f"_{name}"])
        for method in subjects
        for name in NULLS
    ]
    images = list(dict.fromkeys(table[table["k"] == headline]["image"]))
    at_k = table[(table["k"] == headline) & (table["excluded"] == "")]
    scores = {
        method: at_k[at_k["method"] == method].set_index("image")["iou"].reindex(images).to_numpy(dtype=np.float64)
        for method in subjects
    }
    pair_claims, _ = _pairs(scores, primary, seed)
    verdicts = _claims_into_rows(frame, at, [*claims, *pair_claims], "", NULLS)
    pair_rows = _pair_rows(headline, verdicts[len(claims) :])
    frame["primary_group"] = ""
    frame["agreement_group"] = ""
    families = {
        family: [c for c in (*claims, *pair_claims) if c.family == family] for family in ("primary", "exploratory")
    }
    design = [design_row("agreement", family, len(images), found) for family, found in families.items() if found]
    for column, members in (("primary_group", [m for m in subjects if m in primary]), ("agreement_group", subjects)):
        if len(members) > 1 and _reachable(design, "primary" if column == "primary_group" else None):
            for method, letters in _letters(subjects, pair_rows, members).items():
                frame.loc[at & (frame["method"] == method), column] = letters
    frame = frame.drop(columns=[f"_{name}" for name in (*NULLS, *DESCRIPTIVE)])
    return Tested(frame, pd.DataFrame(pair_rows, columns=PAIR_COLUMNS), design)


def agreement_by_method(
    table: pd.DataFrame, *, seed: int = 0, k: int | None = None, primary: Sequence[str] = PRIMARY_CAMS
) -> pd.DataFrame:
    """One row per method x k of an ``agreement_table`` (:func:`agreement_tests`' per-method table)."""
    return agreement_tests(table, k=k, primary=primary, seed=seed).by_method


def faithfulness_tests(
    faithfulness: pd.DataFrame,
    by_method: pd.DataFrame,
    k: int,
    *,
    primary: Sequence[str] = PRIMARY_CAMS,
    seed: int = 0,
) -> Tested:
    """Methods by faithfulness (score = insertion − deletion AUC, higher first), each against the smooth random maps
    and the centre prior (one-sided), every pair of explanation methods (two-sided), beside agreement at ``k``.

    ``faithfulness`` is a ``faithfulness_table`` (random draws already averaged into one ``random`` row per image).
    LIME and the ``primary`` CAMs form the primary family.
    """
    from xai.compare.faithfulness import RANDOM_METHOD
    from xai.compare.per_image import LIME_METHOD

    if faithfulness.empty:
        return Tested(pd.DataFrame())
    images = list(dict.fromkeys(faithfulness["image"]))
    per_method = {str(m): g.set_index("image").reindex(images) for m, g in faithfulness.groupby("method", sort=False)}
    scores = {m: g["score"].to_numpy(dtype=np.float64) for m, g in per_method.items()}
    baselines = (RANDOM_METHOD, CENTRE_METHOD)
    members = [LIME_METHOD, *primary]
    rows, claims = [], []
    for method, group in per_method.items():
        reasons = sorted({f"{image}: {reason}" for image, reason in group["excluded"].fillna("").items() if reason})
        row: dict[str, object] = {
            "method": method,
            "n_images": int(group["score"].notna().sum()),
            "n_excluded": len(reasons),
            "excluded": "; ".join(reasons),
        }
        for column, bounds in (("deletion_auc", UNIT), ("insertion_auc", UNIT), ("score", SIGNED)):
            row.update(_interval(column, group[column], seed, bounds))
        row["random_std_mean"] = float(group["random_std"].mean()) if method == RANDOM_METHOD else math.nan
        for name in baselines:
            other = scores.get(name, np.full(len(images), np.nan))
            comparison = paired_comparison(
                scores[method], other if method != name else np.full(len(images), np.nan), seed=seed
            )
            row.update(comparison.as_dict(f"vs_{name}_"))
            if method not in baselines and row["n_images"]:
                claims.append(Claim(_family((method,), members), method, name, "greater", comparison))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["order"] = frame["score_mean"].rank(ascending=False, method="first").fillna(len(frame)).astype(np.int64)
    frame = frame.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    subjects = [m for m in frame["method"] if m not in baselines and scores[m].size and np.isfinite(scores[m]).any()]
    pair_claims, _ = _pairs({m: scores[m] for m in subjects}, members, seed)
    everything = pd.Series(True, index=frame.index)
    verdicts = _claims_into_rows(frame, everything, [*claims, *pair_claims], "vs_", baselines)
    pair_rows = _pair_rows(k, verdicts[len(claims) :])
    families = {
        family: [c for c in (*claims, *pair_claims) if c.family == family] for family in ("primary", "exploratory")
    }
    design = [design_row("faithfulness", f, len(images), found) for f, found in families.items() if found]
    frame["primary_group"] = ""
    frame["faithfulness_group"] = ""
    for column, chosen in (("primary_group", [m for m in subjects if m in members]), ("faithfulness_group", subjects)):
        if len(chosen) > 1 and _reachable(design, "primary" if column == "primary_group" else None):
            for method, letters in _letters(subjects, pair_rows, chosen).items():
                frame.loc[frame["method"] == method, column] = letters
    at_k = by_method[by_method["k"] == k].set_index("method") if len(by_method) else pd.DataFrame()
    frame["iou_mean"] = frame["method"].map(at_k["iou_mean"] if len(at_k) else {}).astype(np.float64)
    frame["agreement_group"] = frame["method"].map(at_k["agreement_group"] if len(at_k) else {}).fillna("")
    return Tested(frame, pd.DataFrame(pair_rows, columns=PAIR_COLUMNS), design)


def faithfulness_ranking(
    faithfulness: pd.DataFrame, by_method: pd.DataFrame, k: int, *, seed: int = 0, primary: Sequence[str] = PRIMARY_CAMS
) -> pd.DataFrame:
    """:func:`faithfulness_tests`' per-method table."""
    return faithfulness_tests(faithfulness, by_method, k, primary=primary, seed=seed).by_method
