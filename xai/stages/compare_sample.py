"""Task 4's powered sample (``compare.sample``): one unit per drawn image (:mod:`xai.units`), each computing the
pure :func:`xai.compare.sample_image` (cached), then the same tests over them (:func:`xai.compare.summarise_sample`).

A drawn image is read where its unit runs: a manifest file by checksum from the mirror or its pinned URL, a
folder's file from the driver's copy (sent with the unit when the worker lacks the driver's filesystem).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xai import compare
from xai.compare.sample import SampleResults
from xai.context import NotCachedError, StageCache
from xai.data import BadImageError, DataError
from xai.explain.explained import ExplanationError
from xai.stages.compare_keys import STAGE, plans, sample_parts
from xai.stages.explain import explain_batch_size
from xai.units import Job, fill_missing

if TYPE_CHECKING:
    from pathlib import Path

    from xai.compare import SampleImage
    from xai.compare.sample import SampleSource
    from xai.context import RunContext
    from xai.plan import ComparePlan, ExplainPlan
    from xai.units import Workspace


def forward_passes(planned: ComparePlan, explain: ExplainPlan) -> int:
    """Forward passes of the whole sample through the explained model: per image its prediction, LIME's samples
    for every seed, the CAMs' own and the deletion/insertion curves of every map (the estimate's count)."""
    from xai.compare.faithfulness import forward_passes as curve_passes
    from xai.estimate_work import method_passes

    if planned.sample is None:
        return 0
    chosen = planned.sample.settings
    lime = chosen.lime.num_samples * chosen.lime_seeds
    cams = method_passes(chosen.methods, lime_samples=0, channels=explain.channels)
    curves = curve_passes(1 + len(chosen.methods) + chosen.random_draws + 1, chosen.steps)
    return len(planned.sample.drawn) * (1 + lime + cams + curves)


def sample(context: RunContext, load_only: bool) -> SampleResults | None:
    """The powered sample: one unit per drawn image with its ``compare.sample_image`` missing (sent through the run's
    executor, cached), then the same tests over them. In load-only mode the images in the cache are shown and the
    others counted as missing; an image that cannot be read or explained is reported once, with its reason."""
    _, planned = plans(context)
    sample = planned.sample
    if sample is None:
        return None
    results = SampleResults(sample)
    failed: dict[str, str] = {}
    fresh: dict[str, Any] = {}
    if not load_only:
        jobs = [
            Job(
                "xai.stages.compare_sample:sample_unit",
                source.image_id,
                source,
                {"sample": (compare.SampleImage, sample_parts(context, source))},
                files=() if source.from_manifest else (source.location,),
            )
            for source in sample.drawn
        ]
        filled = fill_missing(context, STAGE, jobs, "compare sample")
        failed = {label: reason for label, reason in filled.values.items() if reason is not None}
        fresh = filled.fresh
    store = StageCache(context, STAGE, load_only, fresh)
    for source in sample.drawn:
        if source.image_id in failed:  # one image's fault never loses the others
            results.failed.append((source.image_id, failed[source.image_id]))
            continue
        try:
            results.images.append(store.get(compare.SampleImage, sample_parts(context, source), _not_sent))
        except NotCachedError:
            results.missing += 1
    if results.images:
        results.summary = compare.summarise_sample(
            results.images,
            k=planned.settings.top_k[0],
            seed=context.plan.seed,
            cross_image_others=sample.cross_image_others,
        )
    return results


def _not_sent() -> SampleImage:
    raise RuntimeError("a sample image missing after its unit ran")  # a bug: fill_missing computed every piece


def sample_unit(context: RunContext, source: SampleSource, workspace: Workspace) -> str | None:
    """The unit of one powered-sample image (:mod:`xai.executor`): its ``compare.sample_image`` into ``workspace``;
    the reason when the image cannot be read or explained (reported once, never retried)."""
    local = workspace.file(source.location) if not source.from_manifest else None
    try:
        workspace.get(compare.SampleImage, sample_parts(context, source), _sample_compute(context, source, local))
    except (BadImageError, DataError, ExplanationError) as error:
        return str(error)
    return None


def _sample_compute(context: RunContext, source: SampleSource, local: Path | None) -> Callable[[], SampleImage]:
    """The pure per-image work of one sample image, reading the image only when called (a cache miss): a manifest
    file by checksum from the mirror or its pinned URL, a folder's file where this worker has it (``local``)."""
    from xai.data import fetch, load_image

    explain, planned = plans(context)
    sample = planned.sample
    if sample is None:
        raise ValueError("the run plan has no sample")  # a bug: called only for a planned sample

    def compute() -> SampleImage:
        path = fetch(source.location) if local is None else local
        pixels = load_image(path, **context.plan.inputs.loading.arguments())
        return compare.sample_image(
            context.classifier(explain.model).module,
            pixels,
            sample.settings,
            to_input=explain.preprocessing.to_input,
            image_id=source.image_id,
            seed=context.plan.seed,
            faithfulness_seed=compare.image_seed(context.plan.seed, source.sha256),
            batch_size=explain_batch_size(context, pixels.shape),
        )

    return compute
