"""What identifies each piece of the compare stage (:mod:`xai.stages.compare`, :mod:`xai.stages.compare_sample`) in
cache keys, all read from the run plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xai.cache import code_version

if TYPE_CHECKING:
    from xai.compare.sample import SampleSource
    from xai.context import RunContext
    from xai.plan import ComparePlan, ExplainPlan

STAGE = "compare"
CODE = ("compare", "explain")
"""The domain packages whose code computes this stage's artifacts (their source is part of every key)."""


def plans(context: RunContext) -> tuple[ExplainPlan, ComparePlan]:
    """The explained model's plan and Task 4's."""
    explain, compare_plan = context.plan.explain, context.plan.compare
    if explain is None or compare_plan is None:
        raise ValueError("the run plan has no compare section")  # a bug: the plan makes one for this stage
    return explain, compare_plan


def base_parts(context: RunContext, image_sha: str) -> dict[str, Any]:
    """What every piece of one image's comparison is keyed by: the image, the explained classifier and how it was
    explained, the seed and the code."""
    explain, _ = plans(context)
    return {
        "image": image_sha,
        # the explained classifier: model id, architecture, weights member and file, class file, preprocessing
        **explain.key(),
        "seed": context.plan.seed,
        "explain": {
            "methods": list(explain.methods),
            "lime": context.plan.config.explain.lime.model_dump(),
            "target_layer": explain.target.path,
            "reshape": explain.target.reshape,
            "preprocess": explain.preprocess,
        },
        "code": code_version(*CODE),
    }


def sample_parts(context: RunContext, source: SampleSource) -> dict[str, Any]:
    """Key of one powered-sample image."""
    explain, planned = plans(context)
    assert planned.sample is not None  # called only for a planned sample
    return {
        "image": source.sha256,
        "image_id": source.image_id,
        **explain.key(),  # the classifier, its weights and preprocessing
        "seed": context.plan.seed,
        "piece": "sample",
        "settings": planned.sample.settings.key(),
        "code": code_version(*CODE),
    }
