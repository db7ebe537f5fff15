"""The explained layer's unit labels, and which of them are reliable enough to name a concept bar.

A unit's label is CLIP-Dissect's (Oikarinen & Weng, ICLR 2023): its best concept in the dissection of the
explained model's target layer. It is *reliable* when its best score clears the layer's interpretability threshold,
the same one Task 1 reports (:func:`xai.dissect.analysis.interpretable_threshold`: the 95th percentile of the
layer's best scores after the probe images were shuffled). Units below it are pooled into one bar, "units without
a reliable label", instead of being named by a concept the data do not support.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xai.dissect.analysis import NULL_QUANTILE, interpretable_threshold
from xai.dissect.result import LayerDissection

UNLABELLED = "units without a reliable label"


@dataclass(frozen=True)
class UnitLabels:
    """Labels of the K units of the explained layer.

    Attributes:
        layer: the dissected module's name.
        concepts: the concept set (index = concept id).
        concept_ids: (K, C) int32 each unit's best concepts, best first (column 0 is its label).
        scores: (K, C) float32 their CLIP-Dissect scores.
        threshold: the interpretability threshold of the layer.
        reliable: (K,) bool ``scores[:, 0] > threshold``.
    """

    layer: str
    concepts: tuple[str, ...]
    concept_ids: np.ndarray
    scores: np.ndarray
    threshold: float
    reliable: np.ndarray

    @property
    def n_units(self) -> int:
        """K."""
        return int(self.concept_ids.shape[0])

    @property
    def n_reliable(self) -> int:
        """Units whose label clears the threshold."""
        return int(self.reliable.sum())

    @property
    def label_ids(self) -> np.ndarray:
        """(K,) each unit's label (its best concept id)."""
        return self.concept_ids[:, 0]

    @property
    def best_scores(self) -> np.ndarray:
        """(K,) each unit's best score."""
        return self.scores[:, 0]

    def grouping(self) -> np.ndarray:
        """(K,) int the concept id of each reliably labelled unit, -1 for the others."""
        return np.where(self.reliable, self.label_ids, -1).astype(np.int64)


def unit_labels(layer: LayerDissection, concepts: Sequence[str], *, quantile: float = NULL_QUANTILE) -> UnitLabels:
    """:class:`UnitLabels` of one dissected layer with Task 1's interpretability threshold.

    Raises:
        ValueError: the dissection has no shuffled-probe null (``dissect_model(null_seed=None)``), so no threshold.
    """
    threshold = interpretable_threshold(layer, quantile)
    if math.isnan(threshold):
        raise ValueError(
            f"layer {layer.layer!r} was dissected without the shuffled-probe null, so no label can be called "
            "reliable; dissect it with a null seed"
        )
    return make_unit_labels(layer.layer, concepts, layer.concept_ids, layer.scores, threshold)


def make_unit_labels(
    layer: str, concepts: Sequence[str], concept_ids: np.ndarray, scores: np.ndarray, threshold: float
) -> UnitLabels:
    """:class:`UnitLabels` from arrays (a unit is reliable when its best score exceeds ``threshold``)."""
    concept_ids = np.atleast_2d(np.asarray(concept_ids, np.int32))
    scores = np.atleast_2d(np.asarray(scores, np.float32))
    if concept_ids.shape != scores.shape:
        raise ValueError(f"concept ids {concept_ids.shape} and scores {scores.shape} differ in shape")
    if concept_ids.size and (concept_ids.min() < 0 or concept_ids.max() >= len(concepts)):
        raise ValueError(f"concept ids outside 0..{len(concepts) - 1}")
    return UnitLabels(
        layer=layer,
        concepts=tuple(concepts),
        concept_ids=concept_ids,
        scores=scores,
        threshold=float(threshold),
        reliable=scores[:, 0] > threshold,
    )


def probe_means(pooled: np.ndarray) -> np.ndarray:
    """(K,) float32 each unit's mean over the probe images of its pooled activations (N, K): the baseline a removed
    unit is set to, and the integrated-gradients baseline. The pooling must be the mean (spatial, or over all
    tokens), as :func:`xai.concepts.head.pooled_units` pools the explained image."""
    pooled = np.asarray(pooled, np.float64)
    if pooled.ndim != 2 or pooled.shape[0] == 0:
        raise ValueError(f"pooled probe activations of shape {pooled.shape}; expected (images, units)")
    return pooled.mean(axis=0).astype(np.float32)
