"""What Task 4 produces for the report, and what it reads of Tasks 2-3's explanations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xai.compare.faithfulness import FaithfulnessResult
from xai.compare.per_image import ImageComparison
from xai.compare.sample import SampleResults
from xai.compare.sanity import SanityResult
from xai.compare.summary import ComparisonSummary
from xai.explain.artifacts import ImageExplanation
from xai.explain.explained import ExplainArtifacts


@dataclass
class CompareArtifacts:
    comparisons: list[ImageComparison] = field(default_factory=list)
    """agreement and complexity, per image"""
    faithfulness: list[FaithfulnessResult] = field(default_factory=list)
    """deletion/insertion, per image"""
    sanity: SanityResult | None = None
    summary: ComparisonSummary | None = None
    explain: ExplainArtifacts | None = None
    """The explain stage's artifacts these were computed from (for the side-by-side panels)."""
    cam_grid: tuple[int, int] | None = None
    """(h, w) of the CAM target layer's map at the images' size: the grid of the smooth random baselines."""
    cascade: tuple[str, ...] = ()
    """The sanity check's steps for this architecture (``fc``, ``layer4``, ..., ``conv1+bn1``), also when the
    check is skipped (for the pages)."""
    sample: SampleResults | None = None
    """The powered sample (``compare.sample``), its images and the same tests over them; None when not planned."""


def seed_weights(explanation: ImageExplanation) -> tuple[np.ndarray, tuple[int, ...]]:
    """Every LIME seed's superpixel weights ``(n_seeds, S)`` and the seeds; seed 0's alone without stability."""
    lime, stability = explanation.lime, explanation.stability
    if stability is not None and stability.weights is not None and stability.weights.shape[1] == lime.weights.size:
        return np.asarray(stability.weights), tuple(stability.seeds)
    return lime.weights[None], (lime.seed,)


def explanation_caveats(explained: ExplainArtifacts) -> list[str]:
    """Caveats recorded by the explain stage: LIME label != top-1, AblationCAM with a negative logit."""
    found = []
    for item in explained.images:
        explanation = item.explanation
        top1 = explanation.prediction.top1
        if explanation.lime is not None and explanation.lime.label != top1:
            found.append(
                f"{item.name}: LIME explained class {explanation.lime.label}, not the model's top-1 class "
                f"{top1} (LIME's top label comes from its own classifier call on the unperturbed image)"
            )
        found.extend(f"{item.name}: {cam.warning}" for cam in explanation.cams if cam.warning)
    return found
