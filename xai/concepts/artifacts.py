"""What the concepts stage produces for the report: the explained layer's labels and where they come from, every
explained image's :class:`~xai.concepts.explanation.ConceptExplanation`, and the summary across images."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xai.concepts.explanation import ConceptExplanation, ConceptSettings
from xai.concepts.labels import UnitLabels
from xai.concepts.summary import ConceptSummary


@dataclass
class ConceptImage:
    name: str
    """The image id, as the explain stage names it (pages, anchors, figure folders)."""
    pixels: np.ndarray
    """(H, W, 3) uint8, the image as the model saw it."""
    explanation: ConceptExplanation


@dataclass
class ConceptArtifacts:
    """The concepts stage's output.

    Attributes:
        model: the explained model's id; categories: its class names.
        target_layer: the CAM target layer as configured (``layer4[-1]``); layer: its ``named_modules`` path.
        labels: the layer's CLIP-Dissect labels with Task 1's interpretability threshold.
        probe, n_probe, concept_set, similarity, pool: how the layer was dissected.
        random_weights: the model's weights are seeded random (every number is meaningless for a real model).
        true_class_known: the images' true classes are known (ImageNet task images and an ImageNet model).
        settings: the per-image settings.
        images: one explanation per explained image; failed: (image, reason) of images that could not be.
        summary: medians and shares across :attr:`images`.
    """

    model: str
    categories: list[str]
    target_layer: str
    layer: str
    labels: UnitLabels
    probe: str
    n_probe: int
    concept_set: str
    similarity: str
    pool: str
    random_weights: bool
    true_class_known: bool
    settings: ConceptSettings
    images: list[ConceptImage] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    summary: ConceptSummary | None = None

    def image(self, name: str) -> ConceptImage | None:
        """The explanation of image ``name`` (None when it has none)."""
        return next((item for item in self.images if item.name == name), None)
