"""Cross-image summary: agreement per method, complexity correlation, faithfulness ranking, sanity check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from xai.compare._parts import table_csv
from xai.compare.agreement import agreement_table, sweep_by_method, sweep_table
from xai.compare.complexity import (
    PRIMARY_MEASURE,
    complexity_answer,
    complexity_correlations,
    complexity_table,
    spearman_with_p,
)
from xai.compare.faithfulness import RANDOM_METHOD, FaithfulnessResult
from xai.compare.family import DESIGN_COLUMNS, PRIMARY_CAMS
from xai.compare.nulls import CENTRE_METHOD
from xai.compare.per_image import LIME_METHOD, ImageComparison
from xai.compare.sanity import SanityResult, sanity_table
from xai.compare.tables import PAIR_COLUMNS, agreement_tests, faithfulness_tests

TABLES: tuple[str, ...] = (
    "agreement", "agreement_by_method", "agreement_pairs", "sweep_by_method", "complexity", "complexity_correlation",
    "faithfulness", "faithfulness_ranking", "faithfulness_pairs", "design", "sanity",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class ComparisonSummary:
    """The comparison's cross-image tables (pandas DataFrames, deterministic order) and headline numbers.

    ``k`` is the LIME mask size used for the headline numbers (the claims are made there); ``faithfulness_agreement_*``
    is the Spearman correlation, over the CAM methods, between mean faithfulness score and mean area-matched IoU
    with LIME. ``sanity_result`` is ``None`` when no sanity check was run. ``*_pairs`` hold every pair of methods
    tested at ``k`` with its family and Holm-adjusted p; ``design`` what each family can reach on these images
    (``family.design_row``); ``primary`` the CAMs of the primary family.
    """

    k: int
    primary_measure: str
    agreement: pd.DataFrame
    agreement_by_method: pd.DataFrame
    sweep_by_method: pd.DataFrame
    complexity: pd.DataFrame
    complexity_correlation: pd.DataFrame
    complexity_answer: str
    faithfulness: pd.DataFrame
    faithfulness_ranking: pd.DataFrame
    faithfulness_agreement_rho: float
    faithfulness_agreement_p: float
    faithfulness_agreement_n: int
    sanity: pd.DataFrame
    sanity_result: SanityResult | None
    notes: tuple[str, ...] = ()
    """Caveats from the explain stage (LIME label != top-1, AblationCAM negative logit), one line each."""
    agreement_pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))
    faithfulness_pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))
    design: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DESIGN_COLUMNS))
    primary: tuple[str, ...] = PRIMARY_CAMS

    @property
    def weights_are_random(self) -> bool:
        return self.sanity_result is not None and self.sanity_result.weights_are_random

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    def csv_texts(self) -> dict[str, str]:
        """Table name -> deterministic CSV text (byte-identical for identical inputs)."""
        return {name: table_csv(frame) for name, frame in self.tables().items()}


def faithfulness_table(results: Sequence[FaithfulnessResult]) -> pd.DataFrame:
    """One row per image x method: deletion AUC, insertion AUC and their difference (insertion − deletion).

    The smooth random draws (``random:i``) are averaged into one ``random`` row per image; ``random_std`` is
    the standard deviation of the score over the draws (ddof = 1; NaN for other methods or one draw). A map that
    was not scored (``FaithfulnessResult.excluded``) keeps its row, with NaN scores and the reason in
    ``excluded``, so the tables and findings can say what was left out and why.
    """
    rows = []
    for result in results:
        rows.extend(
            {
                "image": result.image_id,
                "method": method,
                "target": result.target,
                "deletion_auc": math.nan,
                "insertion_auc": math.nan,
                "score": math.nan,
                "random_std": math.nan,
                "n_draws": 0,
                "forward_passes": result.forward_passes,
                "excluded": reason,
            }
            for method, reason in result.excluded
        )
        draws = [index for index, method in enumerate(result.methods) if method.startswith(f"{RANDOM_METHOD}:")]
        for index, method in enumerate(result.methods):
            if index in draws:
                continue
            rows.append(_faithfulness_row(result, method, [index]))
        if draws:
            rows.append(_faithfulness_row(result, RANDOM_METHOD, draws))
    columns = [
        "image",
        "method",
        "target",
        "deletion_auc",
        "insertion_auc",
        "score",
        "random_std",
        "n_draws",
        "forward_passes",
        "excluded",
    ]
    return pd.DataFrame(rows, columns=columns)


def _faithfulness_row(result: FaithfulnessResult, method: str, indices: list[int]) -> dict[str, Any]:
    deletion, insertion = result.deletion_auc[indices], result.insertion_auc[indices]
    score = insertion - deletion
    return {
        "image": result.image_id,
        "method": method,
        "target": result.target,
        "deletion_auc": float(deletion.mean()),
        "insertion_auc": float(insertion.mean()),
        "score": float(score.mean()),
        "random_std": float(score.std(ddof=1)) if len(indices) > 1 else math.nan,
        "n_draws": len(indices),
        "forward_passes": result.forward_passes,
        "excluded": "",
    }


def add_cross_image(agreement: pd.DataFrame, cross_image: pd.DataFrame | None) -> pd.DataFrame:
    """Fill ``cross_image_iou`` and ``location_iou`` of an ``agreement_table`` from ``per_image.cross_image_table``'s
    ``(image, method, k, cross_image_iou, location_iou)`` rows (a table without ``location_iou`` fills only the
    first)."""
    if cross_image is None or cross_image.empty or agreement.empty:
        return agreement
    keys = list(zip(agreement["image"], agreement["method"], agreement["k"], strict=True))
    filled = agreement.copy()
    for column in ("cross_image_iou", "location_iou"):
        if column in cross_image.columns:
            lookup = cross_image.set_index(["image", "method", "k"])[column]
            filled[column] = [float(lookup.get(key, math.nan)) for key in keys]
            filled.loc[filled["excluded"] != "", column] = math.nan
    return filled


def summarise(
    comparisons: Sequence[ImageComparison],
    faithfulness: Sequence[FaithfulnessResult] = (),
    sanity: SanityResult | None = None,
    *,
    k: int = 5,
    primary_measure: str = PRIMARY_MEASURE,
    cross_image: pd.DataFrame | None = None,
    seed: int = 0,
    notes: Sequence[str] = (),
    primary: Sequence[str] = PRIMARY_CAMS,
) -> ComparisonSummary:
    """Build every cross-image table from the per-image artifacts (pure; same inputs -> identical tables).

    Image ids must be unique: tables are joined on them. ``primary``: the CAMs of the primary family (the
    assignment's; ``tables``), ``k``: where the claims are made.
    """
    image_ids = [comparison.image_id for comparison in comparisons]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("image ids must be unique across comparisons (pass image_id= to compare_image)")
    agreements = [item for comparison in comparisons for item in comparison.agreements]
    agreement = add_cross_image(agreement_table(agreements), cross_image)
    tested = agreement_tests(agreement, k=k, primary=primary, seed=seed)
    by_method = tested.by_method
    complexity = complexity_table([comparison.complexity for comparison in comparisons])
    cams_only = agreement[(agreement["method"] != CENTRE_METHOD) & (agreement["excluded"] == "")]
    correlation = complexity_correlations(cams_only, complexity, k=k)
    answer = complexity_answer(cams_only, complexity, correlation, k=k, primary=primary_measure)
    faithful = faithfulness_table(faithfulness)
    ranked = faithfulness_tests(faithful, by_method, k, primary=primary, seed=seed)
    ranking = ranked.by_method
    baselines = {LIME_METHOD, RANDOM_METHOD, CENTRE_METHOD}
    cams = ranking[~ranking["method"].isin(baselines) & ranking["iou_mean"].notna()] if len(ranking) else ranking
    if cams.empty:
        cams = pd.DataFrame({"score_mean": [], "iou_mean": []})
    rho, p_value, n, _ = spearman_with_p(cams["score_mean"], cams["iou_mean"])
    return ComparisonSummary(
        k=k,
        primary_measure=primary_measure,
        agreement=agreement,
        agreement_by_method=by_method,
        sweep_by_method=sweep_by_method(sweep_table(agreements)),
        complexity=complexity,
        complexity_correlation=correlation,
        complexity_answer=answer,
        faithfulness=faithful,
        faithfulness_ranking=ranking,
        faithfulness_agreement_rho=rho,
        faithfulness_agreement_p=p_value,
        faithfulness_agreement_n=n,
        sanity=sanity_table(sanity, seed=seed),
        sanity_result=sanity,
        notes=tuple(notes),
        agreement_pairs=tested.pairs,
        faithfulness_pairs=ranked.pairs,
        design=pd.DataFrame([*tested.design, *ranked.design], columns=DESIGN_COLUMNS),
        primary=tuple(primary),
    )
