"""Unit-level faithfulness with controls: remove the top-K units and compare with random K-unit sets.

"Remove" = set the unit to its probe-set mean activation at every position (the baseline of
:class:`~xai.concepts.head.UnitReplacement`), not to zero: a zeroed layer4 unit is a value the head never sees on
real images. Recorded per K in ``ks`` (1, 2, 4, ... 64, capped at the unit count), each as a change from the
unmodified image: the logit ``z_t``, the probability of t (softmax over all classes), the margin
``z_t - max_{j != t} z_j`` and whether top-1 changed.

* Rankings: by contribution ``c_u`` (the explanation's claim), by activation alone (``mean A_u``) and by weight
  alone (``w_tu``, or the path-averaged gradient for other heads); the two single-factor rankings show whether the
  product matters.
* Random control: ``draws`` (200) K-unit sets drawn uniformly without replacement, seeded; the band is their 2.5
  and 97.5 percentiles; the one-sided empirical p of "the top-K drop exceeds random" is
  ``(1 + #{random drop >= observed drop}) / (1 + draws)`` (Phipson & Smyth 2010,
  :func:`xai.compare.nulls.permutation_p`), on the probability and on the margin.
* The smallest K (1 .. max(ks)) at which removing the top-K by contribution changes top-1 (-1: none).
* Keep only the top-K (every other unit removed) against keeping K random units (Bau et al., PNAS 2020, "keep
  only those 20": the class mostly survives).

With a linear head the logit change is exactly ``-Σ_{u in S} (c_u - w_tu m_u)`` (``m_u`` the baseline); the
module computes it and reports the largest deviation (``linear_logit_check``): it checks the code, it is not
evidence. Probability, margin and flips are the evidence, since they involve every class's logit. Top-K by
contribution beats random units on any network whose contributions are unequal (they were chosen for it), so its
p-values say "these units matter more than as many random ones", not that their labels are right (see
:mod:`xai.concepts.concept_tests` for that).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xai.compare.nulls import permutation_p
from xai.concepts.contributions import LINEAR_HEAD, UnitContributions
from xai.concepts.head import UnitReplacement

DEFAULT_KS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
RANDOM_SETS = 200
BAND_PERCENTILES = (2.5, 50.0, 97.5)


def ranked_units(values: np.ndarray) -> np.ndarray:
    """Unit indices by decreasing value, ties by lower index."""
    values = np.asarray(values, np.float64)
    return np.lexsort((np.arange(values.size), -values))


def changes(logits: np.ndarray, original: np.ndarray, target_class: int) -> dict[str, np.ndarray]:
    """Per row of ``logits`` (R, C): change of the logit, probability and margin of t, and whether top-1 changed."""
    logits = np.atleast_2d(np.asarray(logits, np.float64))
    both = np.vstack([np.asarray(original, np.float64)[None], logits])
    shifted = both - both.max(axis=1, keepdims=True)
    probability = np.exp(shifted[:, target_class]) / np.exp(shifted).sum(axis=1)
    others = np.delete(both, target_class, axis=1)
    margin = both[:, target_class] - others.max(axis=1)
    top1 = both.argmax(axis=1)
    return {
        "logit": both[1:, target_class] - both[0, target_class],
        "probability": probability[1:] - probability[0],
        "margin": margin[1:] - margin[0],
        "flipped": top1[1:] != top1[0],
    }


@dataclass(frozen=True)
class RemovalCurve:
    """Effect of removing (or keeping only) the top-K units of one ranking, per K.

    Attributes:
        ranking: ``contribution``, ``activation`` or ``weight``.
        ks: (n_k,) int64 set sizes.
        units: (max K,) int32 the ranking's first units, best first.
        delta_logit, delta_probability, delta_margin: (n_k,) float64 changes from the unmodified image.
        flipped: (n_k,) bool top-1 changed.
    """

    ranking: str
    ks: np.ndarray
    units: np.ndarray
    delta_logit: np.ndarray
    delta_probability: np.ndarray
    delta_margin: np.ndarray
    flipped: np.ndarray


@dataclass(frozen=True)
class RandomBand:
    """The same changes for ``draws`` random K-unit sets per K: 2.5%, 50% and 97.5% percentiles and flip rate.

    Arrays are (n_k,) float64, one value per K of ``ks``.
    """

    ks: np.ndarray
    draws: int
    probability_low: np.ndarray
    probability_median: np.ndarray
    probability_high: np.ndarray
    margin_low: np.ndarray
    margin_median: np.ndarray
    margin_high: np.ndarray
    flip_rate: np.ndarray


@dataclass(frozen=True)
class UnitFaithfulness:
    """Unit-level faithfulness of one explanation (see the module docstring).

    Attributes:
        ks: (n_k,) int64.
        original_probability, original_margin: of t on the unmodified image.
        by_contribution, by_activation, by_weight: removal curves of the three rankings.
        random_removal: the band of random K-unit removals.
        p_probability, p_margin: (n_k,) empirical p of the top-K-by-contribution drop against random sets.
        flip_k: smallest K removing the top-K by contribution changes top-1 (-1 when none up to ``flip_search``).
        flip_search: the largest K searched.
        keep_only: keeping only the top-K by contribution (every other unit at its baseline).
        random_keep_only: keeping only K random units.
        p_keep_probability, p_keep_margin: (n_k,) empirical p that keeping the top-K retains *more* than random.
        linear_logit_check: max |Δz_t - (-Σ (c_u - w_tu m_u))| over the removal rows (NaN for other heads).
    """

    ks: np.ndarray
    original_probability: float
    original_margin: float
    by_contribution: RemovalCurve
    by_activation: RemovalCurve
    by_weight: RemovalCurve
    random_removal: RandomBand
    p_probability: np.ndarray
    p_margin: np.ndarray
    flip_k: int
    flip_search: int
    keep_only: RemovalCurve
    random_keep_only: RandomBand
    p_keep_probability: np.ndarray
    p_keep_margin: np.ndarray
    linear_logit_check: float


def capped_ks(ks: Sequence[int], n_units: int) -> np.ndarray:
    """The set sizes, capped at the unit count, sorted, without repeats."""
    capped = sorted({min(int(k), n_units) for k in ks if int(k) >= 1})
    if not capped:
        raise ValueError("no set size K >= 1")
    return np.asarray(capped, np.int64)


def random_sets(n_units: int, size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, n_units) bool masks of ``size`` units drawn uniformly without replacement, one set per row."""
    chosen = np.argsort(rng.random((draws, n_units)), axis=1)[:, :size]
    masks = np.zeros((draws, n_units), dtype=bool)
    masks[np.arange(draws)[:, None], chosen] = True
    return masks


def top_masks(order: np.ndarray, ks: np.ndarray, n_units: int) -> np.ndarray:
    """(n_k, n_units) bool: row i marks the first ``ks[i]`` units of ``order``."""
    masks = np.zeros((len(ks), n_units), dtype=bool)
    for row, k in enumerate(ks):
        masks[row, order[:k]] = True
    return masks


def _curve(ranking: str, order: np.ndarray, ks: np.ndarray, effect: dict[str, np.ndarray]) -> RemovalCurve:
    return RemovalCurve(
        ranking=ranking,
        ks=ks,
        units=order[: int(ks.max())].astype(np.int32),
        delta_logit=effect["logit"],
        delta_probability=effect["probability"],
        delta_margin=effect["margin"],
        flipped=effect["flipped"],
    )


def _band(ks: np.ndarray, draws: int, effect: dict[str, np.ndarray]) -> RandomBand:
    probability = effect["probability"].reshape(len(ks), draws)
    margin = effect["margin"].reshape(len(ks), draws)
    p_low, p_mid, p_high = np.percentile(probability, BAND_PERCENTILES, axis=1)
    m_low, m_mid, m_high = np.percentile(margin, BAND_PERCENTILES, axis=1)
    flips = effect["flipped"].reshape(len(ks), draws).mean(axis=1)
    return RandomBand(ks, draws, p_low, p_mid, p_high, m_low, m_mid, m_high, flips)


def _p_values(observed: np.ndarray, null: np.ndarray, sign: float) -> np.ndarray:
    """One-sided empirical p per K that ``sign * observed`` exceeds ``sign * null`` (null: (n_k, draws))."""
    return np.array([permutation_p(sign * float(o), sign * row)[0] for o, row in zip(observed, null, strict=True)])


def _split(effect: dict[str, np.ndarray], sizes: Sequence[int]) -> list[dict[str, np.ndarray]]:
    bounds = np.cumsum([0, *sizes])
    return [{key: value[a:b] for key, value in effect.items()} for a, b in itertools.pairwise(bounds)]


def unit_faithfulness(
    replacement: UnitReplacement,
    contributions: UnitContributions,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    draws: int = RANDOM_SETS,
    seed: int = 0,
) -> UnitFaithfulness:
    """Every removal and keep-only experiment of the module docstring, in one batch of rows.

    Rows: removal of the top 1..max(ks) by contribution (the flip search; the ``ks`` rows are among them), top-K by
    activation and by weight, keep-only top-K, and ``draws`` random sets per K for removal and for keep-only.
    """
    n_units = contributions.n_units
    target = contributions.target_class
    ks = capped_ks(ks, n_units)
    search = np.arange(1, int(ks.max()) + 1)
    by_c = ranked_units(contributions.contributions)
    by_a = ranked_units(contributions.pooled)
    by_w = ranked_units(contributions.weights)
    rng = np.random.default_rng(seed)
    random_removal = np.concatenate([random_sets(n_units, int(k), draws, rng) for k in ks])
    random_keep = np.concatenate([~random_sets(n_units, int(k), draws, rng) for k in ks])
    blocks = [
        top_masks(by_c, search, n_units),
        top_masks(by_a, ks, n_units),
        top_masks(by_w, ks, n_units),
        ~top_masks(by_c, ks, n_units),
        random_removal,
        random_keep,
    ]
    original = replacement.original_logits()
    logits = replacement.logits(np.concatenate(blocks))
    effect = changes(logits, original, target)
    flip_rows, act, weight, keep, rand_rm, rand_keep = _split(effect, [len(block) for block in blocks])
    at_ks = {key: value[ks - 1] for key, value in flip_rows.items()}
    flipped = np.flatnonzero(flip_rows["flipped"])
    check = math.nan
    if contributions.method == LINEAR_HEAD:
        baseline = replacement.baseline.double().cpu().numpy()
        relative = contributions.contributions.astype(np.float64) - contributions.weights * baseline
        expected = -np.cumsum(relative[by_c[: len(search)]])
        check = float(np.max(np.abs(flip_rows["logit"] - expected)))
    base_probability, base_margin = _original_measures(original, target)
    return UnitFaithfulness(
        ks=ks,
        original_probability=base_probability,
        original_margin=base_margin,
        by_contribution=_curve("contribution", by_c, ks, at_ks),
        by_activation=_curve("activation", by_a, ks, act),
        by_weight=_curve("weight", by_w, ks, weight),
        random_removal=_band(ks, draws, rand_rm),
        p_probability=_p_values(at_ks["probability"], rand_rm["probability"].reshape(len(ks), draws), -1.0),
        p_margin=_p_values(at_ks["margin"], rand_rm["margin"].reshape(len(ks), draws), -1.0),
        flip_k=int(search[flipped[0]]) if flipped.size else -1,
        flip_search=int(search[-1]),
        keep_only=_curve("contribution", by_c, ks, keep),
        random_keep_only=_band(ks, draws, rand_keep),
        p_keep_probability=_p_values(keep["probability"], rand_keep["probability"].reshape(len(ks), draws), 1.0),
        p_keep_margin=_p_values(keep["margin"], rand_keep["margin"].reshape(len(ks), draws), 1.0),
        linear_logit_check=check,
    )


def _original_measures(original: np.ndarray, target: int) -> tuple[float, float]:
    """Probability and margin of t on the unmodified image."""
    logits = np.asarray(original, np.float64)
    shifted = logits - logits.max()
    probability = float(np.exp(shifted[target]) / np.exp(shifted).sum())
    margin = float(logits[target] - np.delete(logits, target).max())
    return probability, margin
