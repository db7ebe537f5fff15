"""A planted network for the concept tests: its predicted logit depends on four known units, labelled through
synthetic probe neurons equal to two concepts' CLIP columns, and a fake CLIP that sees one concept only inside
the planted region."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xai.concepts import ClipFunctions, UnitLabels, unit_labels
from xai.dissect import dissect_model

SIZE = 64
REGION = (0, 0, 32, 32)
"""(top, left, bottom, right): the only place the planted units fire, and where the fake CLIP sees concept A."""
N_UNITS = 128
N_CLASSES = 6
TARGET = 2
UNITS_A = (0, 1)
UNITS_B = (2, 3)
WEIGHT_A, WEIGHT_B = 4.0, 3.0


class PlantedUnitsNet(nn.Module):
    """``features`` (8x8 patch convolution + ReLU, the explained layer: an 8x8 map of 128 units), global average
    pool, ``fc``. Units 0-3 average the red channel of their patch (so they fire only where the image is red);
    the other units read green and blue noise. Class ``TARGET``'s weights are 4 on units 0, 1 and 3 on units 2, 3;
    every other weight is small (N(0, 0.1)), so the planted units carry the prediction."""

    def __init__(self, planted: bool = True, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, N_UNITS, 8, stride=8, bias=False), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(N_UNITS, N_CLASSES)
        with torch.no_grad():
            weight = torch.zeros(N_UNITS, 3, 8, 8)
            weight[:, 1:] = torch.randn(N_UNITS, 2, 8, 8, generator=generator) / 16
            if planted:
                weight[: len(UNITS_A + UNITS_B)] = 0.0
                weight[: len(UNITS_A + UNITS_B), 0] = 1 / 64
            self.features[0].weight.copy_(weight)
            self.fc.weight.copy_(torch.randn(N_CLASSES, N_UNITS, generator=generator) * 0.1)
            self.fc.bias.zero_()
            if planted:
                self.fc.weight[TARGET, list(UNITS_A)] = WEIGHT_A
                self.fc.weight[TARGET, list(UNITS_B)] = WEIGHT_B
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def planted_image(seed: int = 0, region: tuple[int, int, int, int] = REGION) -> np.ndarray:
    """(64, 64, 3) uint8: red 255 inside ``region``, 0 elsewhere; green and blue uniform noise."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    image[..., 0] = 0
    top, left, bottom, right = region
    image[top:bottom, left:right, 0] = 255
    return image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]


def probe_images(count: int = 40, seed: int = 1) -> np.ndarray:
    """Probe images: noise, and a red 8x8 patch in a quarter of them (the planted concept is rare)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, SIZE, SIZE, 3), dtype=np.uint8)
    images[..., 0] = 0
    for index in range(0, count, 4):
        top, left = rng.integers(0, SIZE - 8, size=2)
        images[index, top : top + 8, left : left + 8, 0] = 255
    return images


def probe_mean(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """(K,) mean pooled activation of ``model.features`` over ``images``."""
    batch = torch.from_numpy(images.astype(np.float32) / 255).permute(0, 3, 1, 2)
    with torch.inference_mode():
        return model.features(batch).mean(dim=(0, 2, 3)).numpy()


@dataclass(frozen=True)
class PlantedConcepts:
    """The concept set, its CLIP text embeddings, and which concepts were planted."""

    concepts: tuple[str, ...]
    texts: np.ndarray
    concept_a: int
    concept_b: int
    background: int


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def planted_concepts(seed: int = 11, n_concepts: int = 8, width: int = 128) -> PlantedConcepts:
    rng = np.random.default_rng(seed)
    texts = _normalise(rng.normal(size=(n_concepts, width)))
    a, b, background = (int(i) for i in rng.choice(n_concepts, size=3, replace=False))
    return PlantedConcepts(tuple(f"concept {i}" for i in range(n_concepts)), texts, a, b, background)


def planted_labels(
    concepts: PlantedConcepts, units_by_concept: dict[int, Sequence[int]], seed: int = 5, n_probe: int = 400
) -> UnitLabels:
    """Dissect a synthetic probe whose listed units equal their concept's CLIP column (as
    ``tests/test_dissect_labelling.py`` plants neurons) and whose other units are noise; Task 1's threshold."""
    rng = np.random.default_rng(seed)
    images = _normalise(rng.normal(size=(n_probe, concepts.texts.shape[1])))
    activations = rng.normal(size=(n_probe, N_UNITS)).astype(np.float32)
    columns = images @ concepts.texts.T
    for concept, units in units_by_concept.items():
        for unit in units:
            activations[:, unit] = columns[:, concept]
    ids = [f"probe{i:04d}" for i in range(n_probe)]
    result = dissect_model(
        {"features": activations}, images, concepts.texts, concepts.concepts, model_name="planted", probe_ids=ids
    )
    return unit_labels(result.layer("features"), concepts.concepts)


def fake_clip(concepts: PlantedConcepts, seen: int) -> ClipFunctions:
    """CLIP that sees concept ``seen`` in proportion to the red pixels of a crop, and the background concept in the
    rest: ``embedding = normalise(f · T[seen] + (1 - f) · T[background])`` with f the crop's red fraction."""

    def encode(crops: Sequence[np.ndarray]) -> np.ndarray:
        fractions = np.array([float(np.mean(crop[..., 0] > 127)) for crop in crops])[:, None]
        mixed = fractions * concepts.texts[seen] + (1 - fractions) * concepts.texts[concepts.background]
        return _normalise(mixed)

    return ClipFunctions(encode_crops=encode, text_embeddings=concepts.texts)
