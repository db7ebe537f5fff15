"""Concept bars: unit contributions summed over the units that share a reliable label.

``C_k = Σ_{u: label(u) = k, reliable} c_u`` for each concept k, one more bar ``Σ c_u`` over the units without a
reliable label (:data:`~xai.concepts.labels.UNLABELLED`), and the offset (bias, or baseline logit for integrated
gradients), so ``Σ_k C_k + C_unlabelled + offset = z_t - completeness_error`` (exactly ``z_t`` for a linear head,
up to float32 rounding). Signs are kept: a concept can argue against the class.

Share: ``C_k / Σ_u |c_u|``, the bar's part of the total magnitude of the unit contributions. Deviation from IBD and
WWW, which give shares of the logit: ``z_t`` can be near zero or negative (random weights, a wrong prediction), where
a share of it is meaningless; the magnitude total is positive whenever any unit contributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xai.concepts.contributions import UnitContributions
from xai.concepts.labels import UNLABELLED, UnitLabels


@dataclass(frozen=True)
class ConceptBar:
    """One bar: a concept (or the unlabelled units) and the units that make it.

    Attributes:
        concept: the concept string, or :data:`~xai.concepts.labels.UNLABELLED`.
        concept_id: its index in the concept set (-1 for the unlabelled bar).
        contribution: ``Σ c_u`` over its units (float64 sum).
        share: ``contribution / Σ_all units |c_u|`` (NaN when every c_u is 0).
        units: (n,) int32 its units, by decreasing contribution.
        unit_contributions: (n,) float32 their ``c_u``.
        label_scores: (n,) float32 their CLIP-Dissect scores for their label.
    """

    concept: str
    concept_id: int
    contribution: float
    share: float
    units: np.ndarray
    unit_contributions: np.ndarray
    label_scores: np.ndarray

    @property
    def n_units(self) -> int:
        """Units in the bar."""
        return int(self.units.shape[0])

    @property
    def mean_label_score(self) -> float:
        """The mean CLIP-Dissect score of its units' label (NaN for an empty bar)."""
        return float(self.label_scores.mean()) if self.label_scores.size else float("nan")


@dataclass(frozen=True)
class ConceptBars:
    """The prediction's logit split into concept bars.

    Attributes:
        bars: the labelled concepts, by decreasing contribution (ties: lower concept id first).
        unlabelled: the bar of the units without a reliable label.
        offset, offset_name: the term the bars add to (:attr:`UnitContributions.offset`).
        logit: ``z_t``.
        completeness_error: ``Σ bars + unlabelled + offset - z_t``.
        threshold: the interpretability threshold the labels had to clear.
    """

    bars: tuple[ConceptBar, ...]
    unlabelled: ConceptBar
    offset: float
    offset_name: str
    logit: float
    completeness_error: float
    threshold: float

    def top(self, count: int) -> tuple[ConceptBar, ...]:
        """The ``count`` labelled concepts with the largest positive contributions (those that support t)."""
        return tuple(bar for bar in self.bars if bar.contribution > 0)[:count]


def _bar(
    concept: str, concept_id: int, units: np.ndarray, contributions: np.ndarray, scores: np.ndarray, total: float
) -> ConceptBar:
    order = np.lexsort((units, -contributions[units]))
    units = units[order].astype(np.int32)
    value = float(contributions[units].astype(np.float64).sum())
    return ConceptBar(
        concept=concept,
        concept_id=int(concept_id),
        contribution=value,
        share=value / total if total > 0 else float("nan"),
        units=units,
        unit_contributions=contributions[units].astype(np.float32),
        label_scores=scores[units].astype(np.float32),
    )


def concept_bars(contributions: UnitContributions, labels: UnitLabels) -> ConceptBars:
    """Group the unit contributions by reliable label (see the module docstring)."""
    if labels.n_units != contributions.n_units:
        raise ValueError(f"{labels.n_units} unit labels for {contributions.n_units} units of the explained layer")
    values = contributions.contributions
    grouping = labels.grouping()
    total = float(np.abs(values.astype(np.float64)).sum())
    scores = labels.best_scores
    bars = [
        _bar(labels.concepts[concept], concept, np.flatnonzero(grouping == concept), values, scores, total)
        for concept in np.unique(grouping[grouping >= 0])
    ]
    bars.sort(key=lambda bar: (-bar.contribution, bar.concept_id))
    unlabelled = _bar(UNLABELLED, -1, np.flatnonzero(grouping < 0), values, scores, total)
    summed = sum(bar.contribution for bar in bars) + unlabelled.contribution
    return ConceptBars(
        bars=tuple(bars),
        unlabelled=unlabelled,
        offset=contributions.offset,
        offset_name=contributions.offset_name,
        logit=contributions.logit,
        completeness_error=float(summed + contributions.offset - contributions.logit),
        threshold=labels.threshold,
    )
