"""The powered sample: which images are drawn, the per-image work as one pure function, the glue around it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from xai import serial
from xai.compare import (
    SampleImage,
    SampleResults,
    SampleSettings,
    compare_image,
    draw_sample,
    explanation_maps,
    faithfulness_image,
    sample_image,
    summarise_sample,
)
from xai.config import load, validate
from xai.data import TASK_IMAGES
from xai.explain.lime_image import LimeParams, run_lime
from xai.models import to_input
from xai.plan import make_plan
from xai.testing import planted_image, tiny_resnet

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SETTINGS = SampleSettings(
    methods=("gradcam", "scorecam"),
    lime=LimeParams(num_samples=40, kernel_size=2, max_dist=20, stability_seeds=1),
    lime_seeds=2,
    ks=(3, 5),
    thresholds=(0.1, 0.3),
    null_draws=100,
    steps=6,
    random_draws=2,
    random_cells=(2, 2),
    target_layer="layer4[-1]",
    reshape=None,
)


def test_the_draw_is_seeded_one_class_each_and_leaves_the_task_images_out() -> None:
    drawn = draw_sample("imagenet-samples", 200, seed=0, exclude=TASK_IMAGES)
    assert drawn == draw_sample("imagenet-samples", 200, seed=0, exclude=TASK_IMAGES)
    assert drawn != draw_sample("imagenet-samples", 200, seed=1, exclude=TASK_IMAGES)
    stems = [Path(source.location).stem for source in drawn]
    assert len(stems) == 200 and not set(stems) & set(TASK_IMAGES)
    assert len({stem.split("_")[0] for stem in stems}) == 200  # one ImageNet class (wnid) each
    assert all(source.from_manifest and len(source.sha256) == 64 for source in drawn)
    assert len({source.image_id for source in drawn}) == 200
    assert len(draw_sample("imagenet-samples", 5000, seed=0, exclude=TASK_IMAGES)) == 990  # all there is
    assert draw_sample("imagenet-samples", 0, seed=0) == ()


def test_a_folder_source_draws_its_images(tmp_path: Path) -> None:
    for index in range(5):
        Image.fromarray(planted_image(32, index)).save(tmp_path / f"im{index}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    drawn = draw_sample(str(tmp_path), 3, seed=0)
    assert len(drawn) == 3 and not any(source.from_manifest for source in drawn)
    assert {Path(source.location).suffix for source in drawn} == {".png"}
    assert len(draw_sample(str(tmp_path), 9, seed=0)) == 5


@pytest.fixture(scope="module")
def sampled() -> list[SampleImage]:
    model = tiny_resnet(10, 0)
    return [
        sample_image(
            model, planted_image(64, seed), SETTINGS, to_input=to_input, image_id=f"s{seed}", seed=0,
            faithfulness_seed=seed,
        )
        for seed in range(3)
    ]  # fmt: skip


def test_sample_image_computes_what_the_ten_images_get(sampled: list[SampleImage]) -> None:
    """The same LIME, CAMs, comparison and curves as the explain and compare stages' functions give (a pure function
    of the image and the settings), and it round-trips the cache's serialiser."""
    model, pixels, item = tiny_resnet(10, 0), planted_image(64, 0), sampled[0]
    first = run_lime(model, pixels, to_input=to_input, params=SETTINGS.lime, seed=0)
    second = run_lime(model, pixels, to_input=to_input, params=SETTINGS.lime, seed=1, segments=first.segments)
    np.testing.assert_array_equal(item.seed_weights, np.stack([first.weights, second.weights]))
    assert item.seeds == (0, 1) and item.methods == ("gradcam", "scorecam") and item.maps.shape == (2, 64, 64)
    expected = compare_image(
        pixels, first.segments, item.seed_weights, item.cam_maps(), image_id="s0", ks=(3, 5), thresholds=(0.1, 0.3),
        seeds=(0, 1), null_draws=100, null_seed=0,
    )  # fmt: skip
    for found, wanted in zip(item.comparison.agreements, expected.agreements, strict=True):
        np.testing.assert_array_equal(found.iou, wanted.iou)
        np.testing.assert_array_equal(found.null_p, wanted.null_p)
    curves = faithfulness_image(
        model, to_input, pixels, explanation_maps(first.segments, first.weights, item.cam_maps()), item.top1,
        steps=6, seed=0, image_id="s0", random_draws=2, random_cells=(2, 2),
    )  # fmt: skip
    np.testing.assert_allclose(item.faithfulness.deletion_auc, curves.deletion_auc)
    assert item.forward_passes > item.faithfulness.forward_passes > 0
    restored = serial.from_parts(SampleImage, *serial.to_parts(item))
    np.testing.assert_array_equal(restored.maps, item.maps)
    assert restored.comparison.agreements[0].method == "gradcam"
    np.testing.assert_array_equal(restored.faithfulness.insertion_auc, item.faithfulness.insertion_auc)


def test_the_sample_gets_the_same_tests(sampled: list[SampleImage]) -> None:
    summary = summarise_sample(sampled, k=3, cross_image_others=1)
    rows = summary.agreement_by_method
    assert set(rows["method"]) == {"gradcam", "scorecam", "centre"} and (rows["n_images"] == 3).all()
    assert set(summary.design["family"]) == {"primary"} and (summary.design["n_images"] == 3).all()
    cams = summary.agreement[summary.agreement["method"] != "centre"]
    assert cams["cross_image_iou"].notna().all() and cams["location_iou"].notna().all()


def test_configs_size_the_sample_for_their_machine() -> None:
    smoke, quick, assignment = (load(CONFIGS / f"{name}.yaml") for name in ("smoke", "quick", "assignment"))
    assert smoke.compare.sample.images == 0 and make_plan(smoke).compare.sample is None  # CI stays cheap
    assert 0 < quick.compare.sample.images < assignment.compare.sample.images == 200
    planned = make_plan(quick).compare.sample
    assert planned is not None and len(planned.drawn) == quick.compare.sample.images
    assert planned.settings.methods == quick.compare.sample.methods


def test_the_plan_resolves_the_samples_budgets() -> None:
    config = validate(
        {
            "explain": {"lime": {"num_samples": 700}},
            "compare": {"faithfulness_steps": 20, "sample": {"images": 4, "lime_seeds": 2, "methods": ["gradcam"]}},
        }
    )
    planned = make_plan(config).compare.sample
    assert planned is not None and len(planned.drawn) == 4
    settings = planned.settings
    assert (settings.lime.num_samples, settings.lime_seeds, settings.steps) == (700, 2, 20)
    assert settings.methods == ("gradcam",) and settings.target_layer == "layer4[-1]"
    tuned = validate({"compare": {"sample": {"images": 4, "lime_samples": 300, "faithfulness_steps": 8}}})
    settings = make_plan(tuned).compare.sample.settings
    assert (settings.lime.num_samples, settings.steps) == (300, 8)
    from xai.downloads import manifest_files

    assert manifest_files(make_plan(config))["compare"] == [source.location for source in planned.drawn]


def test_the_stage_sends_a_unit_per_image_and_keeps_the_others_when_one_fails(
    monkeypatch, tmp_path: Path, sampled: list[SampleImage]
) -> None:
    """One unit per drawn image through the run's executor (here the local one) into a real cache: a bad image is
    reported once with its reason and never cached; a rerun computes nothing; load-only shows what is cached."""
    import dataclasses

    import torch

    import xai.compare as compare
    from xai.cache import ArtifactCache
    from xai.context import RunContext
    from xai.data import BadImageError
    from xai.stages import compare_sample as stage

    config = validate({"compare": {"sample": {"images": 3, "cross_image_others": 2}}, "cache_dir": str(tmp_path)})
    plan = make_plan(config)
    drawn = plan.compare.sample.drawn
    calls: list[str] = []

    def fake_compute(context, source, local):
        def compute() -> SampleImage:
            calls.append(source.image_id)
            if source.image_id == drawn[1].image_id:
                raise BadImageError(f"{source.image_id}: broken file")
            return dataclasses.replace(sampled[0], image_id=source.image_id)

        return compute

    monkeypatch.setattr(stage, "_sample_compute", fake_compute)
    monkeypatch.setattr(compare, "summarise_sample", lambda images, **kwargs: ("summary", len(images), kwargs))
    context = RunContext(plan, ArtifactCache(tmp_path), torch.device("cpu"), quiet=True)
    results = stage.sample(context, load_only=False)
    assert isinstance(results, SampleResults) and calls == [source.image_id for source in drawn]
    assert [image.image_id for image in results.images] == [drawn[0].image_id, drawn[2].image_id]
    assert results.failed == [(drawn[1].image_id, f"{drawn[1].image_id}: broken file")]
    assert results.summary == ("summary", 2, {"k": 5, "seed": 0, "cross_image_others": 2})
    calls.clear()
    again = stage.sample(context, load_only=False)
    assert calls == [drawn[1].image_id] and len(again.images) == 2  # only the bad image is tried again
    calls.clear()
    cached = stage.sample(context, load_only=True)
    assert cached.missing == 1 and len(cached.images) == 2 and calls == []  # shown from the cache, the rest counted
    assert stage.sample(SimpleNamespace(plan=make_plan(validate({}))), load_only=False) is None
