"""Cross-image summary: agreement per method, complexity correlation, faithfulness ranking, sanity check."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xai.compare._parts import Parts, frame_from_parts, frame_to_parts, from_json_float, json_float, table_csv
from xai.compare.agreement import agreement_by_method, agreement_table, sweep_by_method, sweep_table
from xai.compare.complexity import (
    PRIMARY_MEASURE,
    complexity_answer,
    complexity_correlations,
    complexity_table,
    spearman_with_p,
)
from xai.compare.faithfulness import RANDOM_METHOD, FaithfulnessResult
from xai.compare.sanity import SanityResult
from xai.compare.stage import ImageComparison

TABLES: tuple[str, ...] = (
    "agreement", "agreement_by_method", "sweep_by_method", "complexity", "complexity_correlation",
    "faithfulness", "faithfulness_ranking", "sanity",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class ComparisonSummary:
    """The comparison's cross-image tables (pandas DataFrames, deterministic order) and headline numbers.

    ``k`` is the LIME mask size used for the headline numbers; ``faithfulness_agreement_*`` is the Spearman
    correlation, over the CAM methods, between mean faithfulness score and mean area-matched IoU with LIME.
    ``sanity_result`` is ``None`` when no sanity check was run.
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

    @property
    def weights_are_random(self) -> bool:
        return self.sanity_result is not None and self.sanity_result.weights_are_random

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    def csv_texts(self) -> dict[str, str]:
        """Table name -> deterministic CSV text (byte-identical for identical inputs)."""
        return {name: table_csv(frame) for name, frame in self.tables().items()}

    def to_parts(self) -> Parts:
        arrays: dict[str, np.ndarray] = {}
        table_meta = {}
        for name, frame in self.tables().items():
            frame_arrays, frame_meta = frame_to_parts(frame, f"table.{name}")
            arrays.update(frame_arrays)
            table_meta[name] = frame_meta
        sanity_meta = None
        if self.sanity_result is not None:
            sanity_arrays, sanity_meta = self.sanity_result.to_parts()
            arrays.update({f"sanity_result.{key}": value for key, value in sanity_arrays.items()})
        meta: dict[str, Any] = {
            "k": self.k,
            "primary_measure": self.primary_measure,
            "complexity_answer": self.complexity_answer,
            "faithfulness_agreement_rho": json_float(self.faithfulness_agreement_rho),
            "faithfulness_agreement_p": json_float(self.faithfulness_agreement_p),
            "faithfulness_agreement_n": self.faithfulness_agreement_n,
            "tables": table_meta,
            "sanity_result": sanity_meta,
        }
        return arrays, meta

    @classmethod
    def from_parts(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> ComparisonSummary:
        tables = {
            name: frame_from_parts(dict(arrays), meta["tables"][name], f"table.{name}") for name in TABLES
        }
        sanity_result = None
        if meta["sanity_result"] is not None:
            prefix = "sanity_result."
            sanity_arrays = {
                key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)
            }
            sanity_result = SanityResult.from_parts(sanity_arrays, meta["sanity_result"])
        return cls(
            k=int(meta["k"]),
            primary_measure=meta["primary_measure"],
            complexity_answer=meta["complexity_answer"],
            faithfulness_agreement_rho=from_json_float(meta["faithfulness_agreement_rho"]),
            faithfulness_agreement_p=from_json_float(meta["faithfulness_agreement_p"]),
            faithfulness_agreement_n=int(meta["faithfulness_agreement_n"]),
            sanity_result=sanity_result,
            **tables,
        )


def faithfulness_table(results: Sequence[FaithfulnessResult]) -> pd.DataFrame:
    """One row per image x method: deletion AUC, insertion AUC and their difference (insertion − deletion)."""
    rows = [
        {
            "image": result.image_id,
            "method": method,
            "target": result.target,
            "deletion_auc": result.deletion_auc[index],
            "insertion_auc": result.insertion_auc[index],
            "score": result.insertion_auc[index] - result.deletion_auc[index],
            "forward_passes": result.forward_passes,
        }
        for result in results
        for index, method in enumerate(result.methods)
    ]
    columns = ["image", "method", "target", "deletion_auc", "insertion_auc", "score", "forward_passes"]
    return pd.DataFrame(rows, columns=columns)


def faithfulness_ranking(faithfulness: pd.DataFrame, by_method: pd.DataFrame, k: int) -> pd.DataFrame:
    """Methods ranked by mean faithfulness score (insertion − deletion AUC, higher first), beside agreement.

    Ranks are 1..M with ties kept in input order. ``beats_random`` is the fraction of images where the
    method's score exceeds the random map's. ``iou_mean``/``agreement_rank`` are the area-matched IoU with
    LIME at ``k`` (NaN for LIME itself and the random map).
    """
    columns = [
        "faithfulness_rank", "method", "n_images", "deletion_auc_mean", "deletion_auc_std",
        "insertion_auc_mean", "insertion_auc_std", "score_mean", "score_std", "beats_random", "iou_mean",
        "agreement_rank",
    ]  # fmt: skip
    if faithfulness.empty:
        return pd.DataFrame(columns=columns)
    grouped = faithfulness.groupby("method", sort=False)
    frame = grouped.agg(
        n_images=("score", "size"),
        deletion_auc_mean=("deletion_auc", "mean"),
        deletion_auc_std=("deletion_auc", "std"),
        insertion_auc_mean=("insertion_auc", "mean"),
        insertion_auc_std=("insertion_auc", "std"),
        score_mean=("score", "mean"),
        score_std=("score", "std"),
    ).reset_index()
    random_scores = faithfulness[faithfulness["method"] == RANDOM_METHOD].set_index("image")["score"]
    beats = []
    for method in frame["method"]:
        scores = faithfulness[faithfulness["method"] == method].set_index("image")["score"]
        paired = pd.concat([scores.rename("m"), random_scores.rename("r")], axis=1, join="inner")
        beats.append(float(np.mean(paired["m"] > paired["r"])) if len(paired) else math.nan)
    frame["beats_random"] = beats
    iou_at_k = by_method[by_method["k"] == k].set_index("method")["iou_mean"]
    frame["iou_mean"] = frame["method"].map(iou_at_k).astype(np.float64)
    frame = frame.sort_values("score_mean", ascending=False, kind="stable").reset_index(drop=True)
    frame["faithfulness_rank"] = np.arange(1, len(frame) + 1)
    has_iou = frame["iou_mean"].notna()
    agreement_order = frame.loc[has_iou, "iou_mean"].sort_values(ascending=False, kind="stable").index
    frame["agreement_rank"] = np.nan
    frame.loc[agreement_order, "agreement_rank"] = np.arange(1, len(agreement_order) + 1, dtype=np.float64)
    return frame[columns]


def sanity_table(result: SanityResult | None) -> pd.DataFrame:
    """One row per method x step: mean signed and absolute Spearman ρ and SSIM to the original, pass/fail."""
    columns = ["method", "step_index", "step", "spearman", "spearman_abs", "ssim", "passed", "n_images"]
    if result is None or result.weights_are_random:
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in ("method", "step") else float) for c in columns}
        )
    rows = [
        {"method": method, "step_index": step, "step": name, "spearman": result.spearman[row, step],
         "spearman_abs": result.spearman_abs[row, step], "ssim": result.ssim[row, step],
         "passed": bool(result.passed[row]), "n_images": result.n_images}
        for row, method in enumerate(result.methods)
        for step, name in enumerate(result.steps)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def summarise(
    comparisons: Sequence[ImageComparison],
    faithfulness: Sequence[FaithfulnessResult] = (),
    sanity: SanityResult | None = None,
    *,
    k: int = 5,
    primary_measure: str = PRIMARY_MEASURE,
) -> ComparisonSummary:
    """Build every cross-image table from the per-image artifacts (pure; same inputs -> identical tables).

    Image ids must be unique: tables are joined on them.
    """
    image_ids = [comparison.image_id for comparison in comparisons]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("image ids must be unique across comparisons (pass image_id= to compare_image)")
    agreements = [item for comparison in comparisons for item in comparison.agreements]
    agreement = agreement_table(agreements)
    by_method = agreement_by_method(agreement)
    complexity = complexity_table([comparison.complexity for comparison in comparisons])
    correlation = complexity_correlations(agreement, complexity, k=k)
    answer = complexity_answer(agreement, complexity, correlation, k=k, primary=primary_measure)
    faithful = faithfulness_table(faithfulness)
    ranking = faithfulness_ranking(faithful, by_method, k)
    cams = ranking[ranking["iou_mean"].notna()]
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
        sanity=sanity_table(sanity),
        sanity_result=sanity,
    )
