"""Fixed, small comparison artifacts with known structure, shared by the comparison tests and the golden
comparison page: a 4x4-superpixel grid, per-image LIME weights and two CAMs ("Good" follows LIME, "Noise" does
not), faithfulness curves with given AUCs and a sanity check result."""

from __future__ import annotations

import numpy as np

from xai.compare import (
    EDGE_METHOD,
    ComparisonSummary,
    FaithfulnessResult,
    SanityResult,
    compare_image,
    cross_image_table,
    summarise,
)
from xai.compare.faithfulness import auc

CAMS = ("Good", "Noise")
"""The two CAMs' names: the first follows LIME (more so in early images), the second is unrelated noise."""


def segment_grid() -> np.ndarray:
    rows, cols = np.indices((16, 16))
    return ((rows // 4) * 4 + cols // 4).astype(np.int32)


def image_comparisons(n_images: int = 8, cams: tuple[str, str] = CAMS):
    segments = segment_grid()
    comparisons, inputs = [], []
    for index in range(n_images):
        rng = np.random.default_rng(index)
        weights = rng.normal(size=(2, 16))  # two LIME seeds
        lime_like = (weights[0][segments] - weights[0].min()) / np.ptp(weights[0])
        noise = rng.random((16, 16))
        # "Good" follows LIME, more so in early images; "Noise" is unrelated to it.
        good = (1 - index / (2 * n_images)) * lime_like + index / (2 * n_images) * noise
        image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        maps = {cams[0]: good.astype(np.float32), cams[1]: noise.astype(np.float32)}
        comparisons.append(
            compare_image(
                image, segments, weights, maps, image_id=f"img{index}", ks=(5, 10), seeds=(0, 1), null_draws=500
            )
        )
        inputs.append((f"img{index}", segments, weights, maps))
    return comparisons, cross_image_table(inputs, (5, 10))


def faithfulness_result(image_id: str, scores: dict[str, tuple[float, float]]) -> FaithfulnessResult:
    fractions = np.linspace(0, 1, 5)
    methods = tuple(scores)
    deletion = np.array([[1, d, d, d, 0] for d, _ in scores.values()], dtype=np.float64)
    insertion = np.array([[0, i, i, i, 1] for _, i in scores.values()], dtype=np.float64)
    return FaithfulnessResult(
        image_id=image_id, target=3, methods=methods, fractions=fractions, deletion=deletion,
        insertion=insertion,
        deletion_auc=np.array([auc(fractions, c) for c in deletion]),
        insertion_auc=np.array([auc(fractions, c) for c in insertion]),
        step_pixels=64, forward_passes=3 + 2 * len(methods) * 3, deletion_baseline="zero",
        seed=0,
    )  # fmt: skip


def faithfulness_results(n_images: int = 8, cams: tuple[str, str] = CAMS) -> list[FaithfulnessResult]:
    """Per image: the first CAM most faithful, then LIME, the baselines, the second CAM least."""
    faithful = []
    for i in range(n_images):
        jitter = 0.01 * ((i * 7) % 5)  # per-image variation, so the paired tests are not all ties
        faithful.append(
            faithfulness_result(
                f"img{i}",
                {
                    "lime": (0.3 - jitter, 0.7),
                    cams[0]: (0.2, 0.8 + jitter),
                    cams[1]: (0.6 + jitter, 0.4),
                    "random:0": (0.5, 0.5 + jitter / 2),
                    "random:1": (0.5 + jitter, 0.5),
                    "centre": (0.45, 0.55),
                },
            )
        )
    return faithful


def comparison_summary(
    sanity: SanityResult | None = None, n_images: int = 8, cams: tuple[str, str] = CAMS
) -> ComparisonSummary:
    comparisons, cross = image_comparisons(n_images, cams)
    faithful = faithfulness_results(n_images, cams)
    return summarise(comparisons, faithful, sanity, k=5, cross_image=cross, notes=("img0: a caveat",), primary=cams)


def sanity_result(cams: tuple[str, str] = CAMS) -> SanityResult:
    spearman = np.array(
        [
            [[0.4, 0.5, 0.3], [0.1, 0.05, 0.15]],
            [[0.9, 0.92, 0.88], [0.95, 0.9, 0.97]],
            [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
        ]
    )
    return SanityResult(
        False,
        (*cams, EDGE_METHOD),
        ("fc", "layer4"),
        spearman,
        np.abs(spearman),
        spearman * 0.9,
        0,
        budgets=(("lime", "300 samples"),),
    )
