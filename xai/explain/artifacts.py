"""Artifacts of the explanations: frozen dataclasses the cache stores with :mod:`xai.serial` (arrays keep their
dtype; the rest is JSON, floats round-trip exactly; no pickle)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Prediction:
    """The model's top-k classes on the unperturbed image, most probable first (softmax probabilities)."""

    labels: np.ndarray
    """(k,) int64 class indices."""
    probabilities: np.ndarray
    """(k,) float32."""

    @property
    def top1(self) -> int:
        return int(self.labels[0])


@dataclass(frozen=True, eq=False)
class CamMap:
    """One class activation map, exactly as grad-cam returns it: ReLU, resized to the input, min-max to [0, 1]."""

    method: str
    map: np.ndarray
    """(H, W) float32 in [0, 1]."""
    target_class: int
    seconds: float
    forward_passes: int
    """Image rows pushed through (part of) the network: 1 for gradient CAMs, 1 + ablated/masked rows else."""
    warning: str = ""
    """A caveat found while computing the map (AblationCAM: negative original logit flips every weight)."""
    batch_size: int | None = None
    """Images per forward it ran with (methods whose rows are whole images; None for the others)."""
    per_image_s: float | None = None
    """The batch-size search's seconds per image at ``batch_size`` when it ran (None: configured size)."""


@dataclass(frozen=True, eq=False)
class LimeResult:
    """LIME's explanation of one label (the top-1 class) on one image, plus the model's view of that image."""

    label: int
    segments: np.ndarray
    """(H, W) int32 superpixel ids 0..n-1 (quickshift)."""
    weights: np.ndarray
    """(n_segments,) float64 surrogate coefficient per superpixel for ``label`` (0 if not in the explanation)."""
    ranking: np.ndarray
    """(m,) int32 superpixel ids in LIME's order (decreasing |weight|, ties as LIME leaves them)."""
    intercept: float
    score: float
    """Weighted R^2 of the ridge surrogate on its own samples (a fit measure, not faithfulness)."""
    local_pred: float
    """Surrogate prediction with every superpixel on; compare with ``model_probability``."""
    model_probability: float
    """Model softmax probability of ``label`` on the unperturbed image."""
    top_labels: np.ndarray
    """(top_labels,) int64, most probable first (LIME's ``top_labels``)."""
    top_probabilities: np.ndarray
    """(top_labels,) float32."""
    ks: tuple[int, ...]
    positive_masks: np.ndarray
    """(len(ks), H, W) bool: the top-k positive superpixels, as ``get_image_and_mask(positive_only=True)``."""
    seed: int
    num_samples: int
    seconds: float
    forward_passes: int
    batch_size: int | None = None
    """Images per forward it ran with."""
    per_image_s: float | None = None
    """The batch-size search's seconds per image at ``batch_size`` when it ran (None: configured size)."""

    def positive_superpixels(self, k: int) -> list[int]:
        """The first ``k`` superpixels with positive weight, in LIME's ranking order."""
        return [int(s) for s in self.ranking if self.weights[s] > 0][:k]

    def signed_superpixels(self, k: int) -> list[tuple[int, float]]:
        """The ``k`` superpixels of largest |weight| with their weights (LIME's pros-and-cons view)."""
        return [(int(s), float(self.weights[s])) for s in self.ranking[:k]]

    def positive_mask(self, k: int) -> np.ndarray:
        """(H, W) bool mask of the top-k positive superpixels."""
        return np.isin(self.segments, self.positive_superpixels(k))

    def pixel_weights(self) -> np.ndarray:
        """(H, W) float64 map: every pixel carries its superpixel's weight."""
        return self.weights[self.segments]


@dataclass(frozen=True, eq=False)
class LimeStability:
    """Overlap of the top-k positive superpixels across LIME runs that differ only in the sampling seed."""

    seeds: tuple[int, ...]
    ks: tuple[int, ...]
    jaccard: np.ndarray
    """(len(ks), n_pairs) float64 Jaccard index |A&B|/|A|B| for every pair of seeds, pairs in itertools order."""
    weights: np.ndarray | None = None
    """(len(seeds), n_segments) float64 superpixel weights of every seed's run on the same segmentation (row
    i is seed ``seeds[i]``), so agreement can use every seed; None when the runs' segmentations differ."""

    @property
    def mean_jaccard(self) -> dict[int, float]:
        return {k: float(self.jaccard[i].mean()) if self.jaccard.shape[1] else 1.0 for i, k in enumerate(self.ks)}


@dataclass(frozen=True, eq=False)
class ImageExplanation:
    """Everything explained about one image: prediction, LIME (+ stability) and every requested CAM."""

    prediction: Prediction
    lime: LimeResult | None = None
    stability: LimeStability | None = None
    cams: tuple[CamMap, ...] = field(default_factory=tuple)

    def result(self, method: str) -> LimeResult | CamMap | None:
        """The LimeResult or CamMap of registry method ``method`` (both carry ``seconds`` and
        ``forward_passes``), or None when it was not run on this image."""
        from xai.explain.registry import method_info

        if method_info(method).family == "lime":
            return self.lime
        return next((c for c in self.cams if c.method == method), None)

    def cam(self, method: str) -> CamMap:
        for cam_map in self.cams:
            if cam_map.method == method:
                return cam_map
        raise KeyError(f"no CAM {method!r} in this explanation; have {[c.method for c in self.cams]}")
