"""What Tasks 2-3 produce for the report: every explained image with its explanation, the explained model as
resolved, and what each method cost next to its floor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xai.classifiers import Preprocessing
from xai.errors import UserError
from xai.explain.artifacts import ImageExplanation
from xai.explain.registry import METHODS


class ExplanationError(UserError):
    """One image cannot be explained for a reason of that image (the model's output on it is not finite): the image
    is listed with the reason and the others are explained. Any other exception is a bug and stops the run."""


@dataclass
class ExplainedImage:
    name: str
    """The image id (``xai.data.image_ids``), safe in paths, anchors and Markdown."""
    pixels: np.ndarray
    explanation: ImageExplanation
    display: str = ""
    """The input file's name as given, for display only (escaped)."""


@dataclass(frozen=True)
class MethodCost:
    """One method's mean cost per image and its floor, from the times and batch sizes recorded on its results."""

    method: str
    seconds: float
    """Mean wall seconds per image."""
    forward_passes: int
    """Mean image rows per image (rounded)."""
    floor_s: float | None
    """Mean over images of forward passes x the seconds per image measured at the batch size the result ran
    with; None when a result has none (a configured batch size, or a method whose rows are not whole images)."""
    batch_size: int | None
    per_image_s: float | None
    """The per-image time behind the floor (of the first result; a mixed cache may hold several)."""

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.floor_s if self.floor_s else None


@dataclass
class ExplainArtifacts:
    model: str
    """The explained classifier's model id (``resnet50``, ``resnet18_birds`` for a checkpoint)."""
    categories: list[str]
    target_layer: str
    """The resolved module path of the CAM target layer (``auto`` already replaced)."""
    methods: tuple[str, ...]
    images: list[ExplainedImage] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(image name, error) for images whose explanation failed for a reason of the image; the others are kept."""
    costs: list[MethodCost] = field(default_factory=list)
    """Per method, what it cost next to its floor (:func:`method_costs`), for the report's cost table."""
    architecture: str = ""
    """The torchvision model name (``resnet50``, ``vit_b_16``)."""
    weights_member: str = ""
    """The weights enum member the architecture, categories and preprocessing follow (``IMAGENET1K_V2``)."""
    weights_description: str = ""
    """What the weights are: ``random(seed=N)``, a published file with its hash, or a checkpoint with its sha256."""
    target_reason: str = ""
    """Why this target layer (``auto``'s rule, or that the config set it)."""
    target_channels: int = 0
    reshape: str | None = None
    """The :data:`xai.architectures.RESHAPES` transform applied to the target layer's output (None: a map)."""
    preprocessing: Preprocessing | None = None
    """Resize, crop, interpolation, mean and std of the weights member (what the inputs went through)."""


def method_costs(images: list[ExplainedImage], methods: tuple[str, ...]) -> list[MethodCost]:
    """Each method's :class:`MethodCost` over ``images``: every result is held to its own recorded batch size, so
    pieces computed in different runs (or on different machines) are never divided by another run's time."""
    costs = []
    for method in methods:
        is_lime = METHODS[method].family == "lime"  # LIME has its own field; CAMs are found by method name
        results = [
            found
            for item in images
            if (
                found := item.explanation.lime
                if is_lime
                else next((c for c in item.explanation.cams if c.method == method), None)
            )
            is not None
        ]
        if not results:
            continue
        floors = [r.forward_passes * r.per_image_s if r.per_image_s else None for r in results]
        first = next((r for r in results if r.batch_size is not None), None)
        costs.append(
            MethodCost(
                method,
                sum(r.seconds for r in results) / len(results),
                round(sum(r.forward_passes for r in results) / len(results)),
                None if None in floors else sum(floors) / len(floors),
                first.batch_size if first else None,
                first.per_image_s if first else None,
            )
        )
    return costs
