"""Concept-level controls: removing a concept's units against random unit sets of the same size, and a
label-permutation null for the top concept's share.

* Concept removal: all units of bar k at their baseline (as :mod:`xai.concepts.faithfulness`) against ``draws``
  random sets of the same number of units; empirical one-sided p of the drop in probability and in margin,
  ``(1 + #{random >= observed}) / (1 + draws)``. The p-value is calibrated when the tested set is exchangeable with
  the random ones under the null, i.e. chosen without looking at the contributions (tested by simulation). A top
  concept is chosen *for* its contribution, so for it the test says "these units matter more than as many random
  units" (faithfulness of the bar), not that the label is right.
* Label permutation (whether the *naming* concentrates the evidence): the statistic is the top concept's share
  ``max_k C_k / Σ_u |c_u|``; the null shuffles the (label, reliable) pairs across the units ``draws`` times
  (keeping how many units each concept labels) and recomputes the top share; p as above. Under labels unrelated to
  the contributions the p-value is uniform, whatever the contributions look like (tested by simulation). In the
  spirit of TCAV's random-concept test (Kim et al., ICML 2018); not in CLIP-Dissect, IBD or WWW.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xai.compare.nulls import permutation_p
from xai.concepts.bars import ConceptBar
from xai.concepts.contributions import UnitContributions
from xai.concepts.faithfulness import BAND_PERCENTILES, RANDOM_SETS, changes, random_sets
from xai.concepts.head import UnitReplacement
from xai.concepts.labels import UnitLabels

PERMUTATIONS = 1000


@dataclass(frozen=True)
class ConceptRemoval:
    """Removing one concept's units, against random sets of as many units.

    Attributes:
        concept, concept_id, n_units: the bar tested.
        delta_logit, delta_probability, delta_margin, flipped: the effect of removing its units.
        random_probability_low, random_probability_high, random_margin_low, random_margin_high: the 2.5% and 97.5%
            percentiles of the random sets' changes.
        random_flip_rate: share of random sets that change top-1.
        p_probability, p_margin: one-sided empirical p of the drop against the random sets.
        draws: random sets.
    """

    concept: str
    concept_id: int
    n_units: int
    delta_logit: float
    delta_probability: float
    delta_margin: float
    flipped: bool
    random_probability_low: float
    random_probability_high: float
    random_margin_low: float
    random_margin_high: float
    random_flip_rate: float
    p_probability: float
    p_margin: float
    draws: int


def concept_removals(
    replacement: UnitReplacement,
    bars: Sequence[ConceptBar],
    target_class: int,
    *,
    draws: int = RANDOM_SETS,
    seed: int = 0,
) -> tuple[ConceptRemoval, ...]:
    """:class:`ConceptRemoval` of each of ``bars`` (one batch of rows: each bar, then its random sets)."""
    n_units = replacement.runner.n_units
    rng = np.random.default_rng(seed)
    blocks = []
    for bar in bars:
        own = np.zeros((1, n_units), dtype=bool)
        own[0, bar.units] = True
        blocks += [own, random_sets(n_units, bar.n_units, draws, rng)]
    if not blocks:
        return ()
    original = replacement.original_logits()
    effect = changes(replacement.logits(np.concatenate(blocks)), original, target_class)
    results = []
    for index, bar in enumerate(bars):
        row = index * (1 + draws)
        observed = {key: value[row] for key, value in effect.items()}
        null = {key: value[row + 1 : row + 1 + draws] for key, value in effect.items()}
        p_low, _, p_high = np.percentile(null["probability"], BAND_PERCENTILES)
        m_low, _, m_high = np.percentile(null["margin"], BAND_PERCENTILES)
        results.append(
            ConceptRemoval(
                concept=bar.concept,
                concept_id=bar.concept_id,
                n_units=bar.n_units,
                delta_logit=float(observed["logit"]),
                delta_probability=float(observed["probability"]),
                delta_margin=float(observed["margin"]),
                flipped=bool(observed["flipped"]),
                random_probability_low=float(p_low),
                random_probability_high=float(p_high),
                random_margin_low=float(m_low),
                random_margin_high=float(m_high),
                random_flip_rate=float(null["flipped"].mean()),
                p_probability=permutation_p(-float(observed["probability"]), -null["probability"])[0],
                p_margin=permutation_p(-float(observed["margin"]), -null["margin"])[0],
                draws=draws,
            )
        )
    return tuple(results)


@dataclass(frozen=True)
class LabelPermutation:
    """The top concept's share against labels shuffled across units.

    Attributes:
        concept: the observed top concept ("" when no unit has a reliable label).
        share: its share ``C_k / Σ_u |c_u|``.
        null_mean, null_high: mean and 95th percentile of the top share under shuffled labels.
        p_value: one-sided empirical p (NaN when nothing could be tested).
        draws: permutations.
    """

    concept: str
    share: float
    null_mean: float
    null_high: float
    p_value: float
    draws: int


def top_shares(contributions: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``max_k Σ_{u: groups[r, u] = k} c_u / Σ_u |c_u|`` per row of ``groups`` (R, K) (group -1 is ignored)."""
    groups = np.atleast_2d(groups)
    values = np.asarray(contributions, np.float64)
    total = np.abs(values).sum()
    present, dense = np.unique(groups, return_inverse=True)
    dense = dense.reshape(groups.shape)
    n_groups = present.size
    flat = (np.arange(groups.shape[0])[:, None] * n_groups + dense).ravel()
    shape = (groups.shape[0], n_groups)
    weights = np.broadcast_to(values, groups.shape).ravel()
    sums = np.bincount(flat, weights=weights, minlength=shape[0] * shape[1]).reshape(shape)
    counts = np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape)
    sums[(counts == 0) | (present < 0)[None, :]] = -np.inf  # a concept with no unit in a row has no bar there
    return sums.max(axis=1) / total if total > 0 else np.full(groups.shape[0], np.nan)


def label_permutation_null(
    contributions: UnitContributions, labels: UnitLabels, *, draws: int = PERMUTATIONS, seed: int = 0
) -> LabelPermutation:
    """The label-permutation test of the module docstring."""
    groups = labels.grouping()
    if not np.any(groups >= 0) or not np.any(contributions.contributions):
        return LabelPermutation("", math.nan, math.nan, math.nan, math.nan, draws)
    values = contributions.contributions
    observed = float(top_shares(values, groups)[0])
    present = np.unique(groups[groups >= 0])
    sums = np.array([values[groups == concept].astype(np.float64).sum() for concept in present])
    top = int(present[np.lexsort((present, -sums))[0]])
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(groups, (draws, groups.size)), axis=1)
    null = top_shares(values, shuffled)
    return LabelPermutation(
        concept=labels.concepts[top],
        share=observed,
        null_mean=float(null.mean()),
        null_high=float(np.percentile(null, 95)),
        p_value=permutation_p(observed, null)[0],
        draws=draws,
    )
