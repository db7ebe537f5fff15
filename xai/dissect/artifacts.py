"""What Task 1 produces: the probe features every model's scoring reads, and the artifacts the report reads.

Plain dataclasses; the cached ones (:class:`ArrayArtifact`) go through the one artifact serialiser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai.dissect.analysis import FcSelfCheck, ModelComparison, ModelSummary
from xai.dissect.layers import LayerPlan
from xai.dissect.result import DissectionResult

if TYPE_CHECKING:
    from xai.dissect.probe_pass import ProbeOutputs


@dataclass(frozen=True)
class DissectedModel:
    """What the report says about one dissected model: its architecture, weights and layers, as resolved."""

    model_id: str
    architecture: str
    """torchvision model name (``resnet18``, ``vit_b_16``)"""
    weights_description: str
    """the weights enum member, the published file or the user's checkpoint with its sha256"""
    layers: LayerPlan
    preset: bool
    """one of the paper's models (its fc self-check and published rows apply)"""
    no_self_check: str = ""
    """why the final-layer self-check was not run (empty when it was)"""
    weights_member: str = ""
    """The resolved weights enum member: a bare model name means its ``DEFAULT`` (resnet50: ``IMAGENET1K_V2``, not the
    paper's V1)."""
    preprocessing: str = ""
    """What the probe images go through for this model (``resize 256, crop 224, bilinear``)."""


@dataclass(frozen=True)
class ArrayArtifact:
    """A named bundle of arrays (embeddings, activations) for the cache, with JSON notes (skipped probe images,
    how the weights were read) that must reach the run record even when the arrays come from the cache."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


def probe_artifact(arrays: dict[str, np.ndarray], outputs: ProbeOutputs, load_note: str = "") -> ArrayArtifact:
    """Probe-pass arrays with the rows they cover (``kept``) and the images left out."""
    meta: dict[str, Any] = {"skipped": [list(item) for item in outputs.skipped]}
    if load_note:
        meta["load_note"] = load_note
    return ArrayArtifact({**arrays, "kept": outputs.kept}, meta)


def common_rows(pieces: list[ArrayArtifact], n_paths: int) -> tuple[np.ndarray, list[slice | np.ndarray]]:
    """Probe indices every piece covers, and for each piece the rows that hold them (an image one pass could not
    decode is left out of all)."""
    kept = [piece.arrays.get("kept", np.arange(n_paths)) for piece in pieces]
    common = kept[0]
    for other in kept[1:]:
        common = np.intersect1d(common, other)
    return common, [slice(None) if len(k) == len(common) else np.searchsorted(k, common) for k in kept]


@dataclass(frozen=True)
class ProbeInputs:
    """The probe images of a run, their ids, and the key that identifies them in cache keys."""

    paths: list[Path]
    ids: list[str]
    key: str


@dataclass(frozen=True)
class ProbeFeatures:
    """What every model's scoring reads, on the probe images every piece could decode: CLIP image embeddings
    ``(N, D)`` and each model's pooled activations ``{model: {layer: (N, K)}}``."""

    probe: ProbeInputs
    image_embeddings: np.ndarray
    activations: dict[str, dict[str, np.ndarray]]


@dataclass
class DissectArtifacts:
    probe_name: str
    probe_paths: list[Path]
    concept_set: str
    models: dict[str, DissectedModel] = field(default_factory=dict)
    """model id -> architecture, weights and layers"""
    results: dict[str, DissectionResult] = field(default_factory=dict)
    """model id -> its neuron labels"""
    summaries: dict[str, ModelSummary] = field(default_factory=dict)
    self_checks: dict[str, FcSelfCheck] = field(default_factory=dict)
    """model id -> the fc layer scored on its own the paper's way (:func:`xai.dissect.fc_check.paper_self_check`)"""
    label_checks: dict[str, FcSelfCheck] = field(default_factory=dict)
    """model id -> the main concept set's fc labels against the class names (string match)"""
    comparison: ModelComparison | None = None
    """the first two models compared"""
    pool: str = "mean"
    """``dissect.pool``"""
