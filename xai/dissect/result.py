"""Dissection artifacts: per-layer labels, runner-ups, top images; CSV export like CLIP-Dissect's.

Both artifacts are frozen dataclasses the pipeline cache stores with :mod:`xai.serial` (numpy arrays + JSON, no
pickle). Concept strings and probe ids live in the JSON meta.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai.cache import atomic_write_text

CSV_TOP_CONCEPTS = 5
"""Concept columns written per neuron: the label plus 4 runner-ups (top-5, as in CLIP-Dissect notebooks)."""


DTYPES = {
    "concept_ids": np.int32,
    "scores": np.float32,
    "top_images": np.int32,
    "top_activations": np.float32,
    "null_scores": np.float32,
}
"""The dtype of each array of a :class:`LayerDissection`."""


@dataclass(frozen=True)
class LayerDissection:
    """Labels of every neuron of one layer.

    Attributes:
        layer: module name (``layer3``, ``fc``...).
        concept_ids: (K, C) int32 best concepts per neuron, best first (column 0 is the label).
        scores: (K, C) float32 their similarity scores (column 0 is CLIP-Dissect's "similarity").
        top_images: (K, J) int32 probe indices of the neuron's highest activations, best first.
        top_activations: (K, J) float32 the pooled activations at those images.
        null_scores: (K,) float32 the neuron's best score after the probe images were shuffled
            (see :func:`xai.dissect.labelling.dissect_model`); empty when no null was computed.
    """

    layer: str
    concept_ids: np.ndarray
    scores: np.ndarray
    top_images: np.ndarray
    top_activations: np.ndarray
    null_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        # The documented dtypes, whatever the caller passed (a cached copy is rebuilt through here too).
        for name, dtype in DTYPES.items():
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype))

    @property
    def n_units(self) -> int:
        """Number of neurons K."""
        return int(self.concept_ids.shape[0])

    @property
    def label_ids(self) -> np.ndarray:
        """(K,) the best concept index per neuron."""
        return self.concept_ids[:, 0]

    @property
    def best_scores(self) -> np.ndarray:
        """(K,) the best score per neuron."""
        return self.scores[:, 0]


@dataclass(frozen=True)
class DissectionResult:
    """CLIP-Dissect output for one model: one :class:`LayerDissection` per hooked layer, in hook order.

    Attributes:
        model_name: e.g. ``resnet18_imagenet``.
        similarity: similarity function name (``soft_wpmi``...).
        params: the similarity's keyword arguments and other settings (JSON-able).
        concepts: the concept strings (index = concept id).
        probe_ids: the probe image ids (index = probe index), e.g. relative paths without suffix.
        layers: per-layer results.
    """

    model_name: str
    similarity: str
    params: Mapping[str, Any]
    concepts: tuple[str, ...]
    probe_ids: tuple[str, ...]
    layers: tuple[LayerDissection, ...]

    def layer(self, name: str) -> LayerDissection:
        """The result of layer ``name``."""
        for layer in self.layers:
            if layer.layer == name:
                return layer
        raise KeyError(f"layer {name!r} not dissected; have {[layer.layer for layer in self.layers]}")

    def labels(self, layer: str) -> list[str]:
        """Label string of every neuron of ``layer``."""
        return [self.concepts[i] for i in self.layer(layer).label_ids]


def label_layer(
    layer: str,
    scores: np.ndarray,
    activations: np.ndarray,
    top_images: np.ndarray,
    *,
    top_concepts: int = CSV_TOP_CONCEPTS,
    null_scores: np.ndarray | None = None,
) -> LayerDissection:
    """Reduce (K, M) scores to each neuron's top concepts (CLIP-Dissect's argmax / max, plus runner-ups).

    Ties between equal scores go to the lower concept index (the first in the concept file), as ``argmax``.

    Args:
        layer: module name.
        scores: (K, M) similarity scores.
        activations: (N, K) pooled activations (to record the activation at each top image).
        top_images: (K, J) probe indices per neuron, best first.
        top_concepts: C, concepts kept per neuron.
        null_scores: (K,) best null score per neuron, or None.
    """
    scores = np.asarray(scores, np.float32)
    count = min(top_concepts, scores.shape[1])
    candidates = np.argpartition(-scores, count - 1, axis=1)[:, :count]
    values = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=1)
    concept_ids = np.take_along_axis(candidates, order, axis=1)
    top_images = np.asarray(top_images, np.int64)
    top_activations = np.take_along_axis(np.asarray(activations, np.float32), top_images.T, axis=0).T
    return LayerDissection(
        layer=layer,
        concept_ids=concept_ids.astype(np.int32),
        scores=np.take_along_axis(scores, concept_ids, axis=1).astype(np.float32),
        top_images=top_images.astype(np.int32),
        top_activations=np.ascontiguousarray(top_activations, np.float32),
        null_scores=(np.zeros(0, np.float32) if null_scores is None else np.asarray(null_scores, np.float32)),
    )


def csv_rows(result: DissectionResult, top_concepts: int = CSV_TOP_CONCEPTS) -> list[list[str]]:
    """Rows of the descriptions table: header first, then one row per neuron, layers in hook order.

    Columns: ``layer, unit, description, similarity`` (CLIP-Dissect's ``descriptions.csv``), then
    ``description_2, similarity_2 … description_C, similarity_C`` (runner-ups) and ``top_images`` (probe ids
    joined by ``|``, best first). Scores are printed with 6 decimals so the file is byte-stable.
    """
    header = ["layer", "unit", "description", "similarity"]
    for rank in range(2, top_concepts + 1):
        header += [f"description_{rank}", f"similarity_{rank}"]
    header.append("top_images")
    rows = [header]
    for layer in result.layers:
        kept = min(top_concepts, layer.concept_ids.shape[1])
        for unit in range(layer.n_units):
            row = [layer.layer, str(unit)]
            for rank in range(top_concepts):
                if rank < kept:
                    row += [result.concepts[layer.concept_ids[unit, rank]], f"{layer.scores[unit, rank]:.6f}"]
                else:
                    row += ["", ""]
            row.append("|".join(result.probe_ids[i] for i in layer.top_images[unit]))
            rows.append(row)
    return rows


def to_csv_text(result: DissectionResult, top_concepts: int = CSV_TOP_CONCEPTS) -> str:
    """The descriptions table as CSV text (``\\n`` line ends, minimal quoting)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(csv_rows(result, top_concepts))
    return buffer.getvalue()


def write_csv(result: DissectionResult, path: str | Path, top_concepts: int = CSV_TOP_CONCEPTS) -> Path:
    """Write :func:`to_csv_text` atomically (:func:`xai.cache.atomic_write_text`); same inputs give identical
    bytes."""
    path = Path(path)
    atomic_write_text(path, to_csv_text(result, top_concepts))
    return path


def labels_by_layer(result: DissectionResult) -> dict[str, list[str]]:
    """``{layer: [label per unit]}``."""
    return {layer.layer: result.labels(layer.layer) for layer in result.layers}
