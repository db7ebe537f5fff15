"""Across images: medians with intervals of each per-image number, and shares of images passing each check,
for all explained images and split into correct and wrong predictions (when the true class is known).

Per-image numbers (:func:`image_metrics`; NaN where not computed):

* ``completeness_error``: ``|Σ_u c_u + offset - z_t|``.
* ``top_concept_share``, ``top5_share``, ``unlabelled_share``: bar shares (``C_k / Σ_u |c_u|``).
* ``delta_probability@K``, ``delta_margin@K``, ``p_margin@K``: removing the top-K units by contribution, and its
  empirical p against random K-unit sets; ``keep_delta_probability@K``: keeping only the top K.
* ``flip_k``: smallest K that changes top-1 (NaN when none up to the largest K).
* ``top_concept_delta_margin``, ``top_concept_p_margin``: the top concept's units removed against random sets of
  as many units; ``permutation_p``: the label-permutation null of the top concept's share.
* ``presence_rank_gain``: the top concept's median rank on control crops minus its rank on its region.
* ``rho:{method}``, ``iou:{method}``: the top concept's map against LIME's and each CAM's.

Shares (:func:`image_flags`): ``top_concept_beats_random`` (its removal p on the margin <= 0.05), ``naming_beats_
permutation`` (permutation p <= 0.05), ``top_concept_present`` (presence confirmed), ``flipped`` (some K <= the
largest K changes top-1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xai.concepts.explanation import ConceptExplanation
from xai.concepts.intervals import MedianInterval, ShareInterval, median_interval, share_interval

ALPHA = 0.05
GROUPS = ("all", "correct", "wrong")


def image_metrics(explanation: ConceptExplanation) -> dict[str, float]:
    """The per-image numbers of the module docstring."""
    bars = explanation.bars
    top = bars.top(5)
    faith = explanation.faithfulness
    metrics: dict[str, float] = {
        "completeness_error": abs(explanation.contributions.completeness_error),
        "top_concept_share": top[0].share if top else math.nan,
        "top5_share": float(sum(bar.share for bar in top)) if top else math.nan,
        "unlabelled_share": bars.unlabelled.share,
    }
    for index, k in enumerate(faith.ks):
        metrics[f"delta_probability@{k}"] = float(faith.by_contribution.delta_probability[index])
        metrics[f"delta_margin@{k}"] = float(faith.by_contribution.delta_margin[index])
        metrics[f"p_margin@{k}"] = float(faith.p_margin[index])
        metrics[f"keep_delta_probability@{k}"] = float(faith.keep_only.delta_probability[index])
    metrics["flip_k"] = float(faith.flip_k) if faith.flip_k > 0 else math.nan
    removal = explanation.concept_removals[0] if explanation.concept_removals else None
    metrics["top_concept_delta_margin"] = removal.delta_margin if removal else math.nan
    metrics["top_concept_p_margin"] = removal.p_margin if removal else math.nan
    metrics["permutation_p"] = explanation.label_permutation.p_value
    presence = explanation.presence[0] if explanation.presence else None
    metrics["presence_rank_gain"] = presence.rank_gain if presence else math.nan
    top_concept = top[0].concept if top else None
    for agreement in explanation.agreement:
        if agreement.concept == top_concept:
            metrics[f"rho:{agreement.method}"] = agreement.rho
            metrics[f"iou:{agreement.method}"] = agreement.iou
    return metrics


def image_flags(explanation: ConceptExplanation) -> dict[str, float]:
    """1.0 / 0.0 per check of the module docstring (NaN where the check did not run)."""
    removal = explanation.concept_removals[0] if explanation.concept_removals else None
    presence = explanation.presence[0] if explanation.presence else None
    permutation = explanation.label_permutation.p_value

    def flag(value: bool | None) -> float:
        return math.nan if value is None else float(value)

    return {
        "top_concept_beats_random": flag(removal.p_margin <= ALPHA if removal else None),
        "naming_beats_permutation": flag(permutation <= ALPHA if math.isfinite(permutation) else None),
        "top_concept_present": flag(presence.confirmed if presence and not presence.excluded else None),
        "flipped": flag(explanation.faithfulness.flip_k > 0),
    }


@dataclass(frozen=True)
class ConceptSummary:
    """Medians with intervals and shares with intervals over the explained images.

    Attributes:
        n_images, n_correct, n_wrong: images, and of them those whose true class is known and the prediction right
            or wrong.
        medians: one :class:`MedianInterval` per (metric, group); groups without images are left out.
        shares: one :class:`ShareInterval` per (check, group).
    """

    n_images: int
    n_correct: int
    n_wrong: int
    medians: tuple[MedianInterval, ...]
    shares: tuple[ShareInterval, ...]

    def median(self, metric: str, group: str = "all") -> MedianInterval:
        """The row of ``metric`` in ``group``."""
        return next(row for row in self.medians if row.metric == metric and row.group == group)

    def share(self, metric: str, group: str = "all") -> ShareInterval:
        """The row of check ``metric`` in ``group``."""
        return next(row for row in self.shares if row.metric == metric and row.group == group)


def summarise(explanations: Sequence[ConceptExplanation]) -> ConceptSummary:
    """Medians (order-statistic intervals) and shares (Clopper-Pearson) over ``explanations``, for all images and
    for correct and wrong predictions (:mod:`xai.concepts.intervals`)."""
    metrics = [image_metrics(explanation) for explanation in explanations]
    flags = [image_flags(explanation) for explanation in explanations]
    correct = [explanation.correct for explanation in explanations]
    members = {
        "all": list(range(len(explanations))),
        "correct": [i for i, right in enumerate(correct) if right is True],
        "wrong": [i for i, right in enumerate(correct) if right is False],
    }
    metric_names = list(dict.fromkeys(name for row in metrics for name in row))
    flag_names = list(dict.fromkeys(name for row in flags for name in row))
    medians, shares = [], []
    for group in GROUPS:
        rows = members[group]
        if not rows:
            continue
        for name in metric_names:
            values = np.array([metrics[i].get(name, math.nan) for i in rows], np.float64)
            medians.append(median_interval(values, metric=name, group=group))
        for name in flag_names:
            values = np.array([flags[i].get(name, math.nan) for i in rows], np.float64)
            shares.append(share_interval(values, metric=name, group=group))
    return ConceptSummary(
        n_images=len(explanations),
        n_correct=len(members["correct"]),
        n_wrong=len(members["wrong"]),
        medians=tuple(medians),
        shares=tuple(shares),
    )
