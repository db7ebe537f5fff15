"""The plan's wall-time estimate: forward passes counted from the plan (hand-counted for the assignment's config),
times fixed seconds per image; how it reads; when it suggests configs/quick.yaml; where the seconds come from (the
batch-size measurement's cache, measured only when asked). No timed test: every time here is given."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from xai.batching import BatchSizeCache, resolve_batch_size
from xai.estimate import Network, StageWork, estimate, format_duration, stage_line, summary_lines
from xai.estimate_work import CLIP_MODEL_ID, seconds_per_image, stage_work

REPO = Path(__file__).resolve().parents[1]
RESNET50 = "resnet50:channels_last"
RESNET18 = "resnet18:channels_last"


@pytest.fixture(scope="module")
def assignment_plan():
    """configs/assignment.yaml with three methods, no powered sample and explicit concept budgets."""
    from xai.config import validate
    from xai.plan import make_plan

    config = yaml.safe_load((REPO / "configs" / "assignment.yaml").read_text())
    config["explain"]["methods"] = ["lime", "gradcam", "scorecam"]
    config["compare"]["sample"] = {"images": 0}
    config["concepts"] = {"ks": [1, 4, 16, 64], "random_sets": 20, "shown": 3, "random_crops": 2}
    return make_plan(validate(config))


def _passes(works: list[StageWork]) -> dict[str, dict[str, int]]:
    return {work.stage: {network.model_id: passes for network, passes in work.passes.items()} for work in works}


def test_passes_of_the_assignment_config_by_hand(assignment_plan) -> None:
    works = stage_work(assignment_plan, n_images=10, image_shape=(224, 224, 3), n_probe=63305)
    assert [work.stage for work in works] == ["dissect", "explain", "compare", "concepts"]
    passes = _passes(works)
    # explain, per image: the prediction 1 + LIME 1000 samples x 3 seeds + Grad-CAM 2 + ScoreCAM 2048 channels + 1
    assert passes["explain"] == {RESNET50: 10 * (1 + 3000 + 2 + 2049)}
    # compare: deletion and insertion curves of 3 maps + 3 random draws + the centre prior at 112 steps:
    # 3 + 2 x 7 x 111 per image; the sanity check: 3 images x 7 model states (6 groups randomised, cascading, and
    # the trained model) x (LIME at 300 samples + 2 + 2049)
    assert passes["compare"] == {RESNET50: 10 * (3 + 2 * 7 * 111) + 3 * 7 * (300 + 2 + 2049)}
    # dissect: every probe image once through CLIP and once through each of the two ResNet18s
    assert passes["dissect"] == {CLIP_MODEL_ID: 63305, RESNET18: 2 * 63305}
    # concepts: resnet50's dissection at its target layer (CLIP's features are Task 1's), then per image and shown
    # concept 4 K's x (1 + 20 random sets) removals, and CLIP on 1 + 2 crops
    assert passes["concepts"] == {RESNET50: 63305 + 10 * 3 * 4 * 21, CLIP_MODEL_ID: 10 * 3 * 3}


def test_random_weights_skip_the_sanity_check(assignment_plan) -> None:
    import dataclasses

    randomised = dataclasses.replace(assignment_plan, weights_mode="random")
    works = stage_work(randomised, n_images=10, image_shape=(224, 224, 3), n_probe=100)
    assert _passes(works)["compare"] == {RESNET50: 10 * (3 + 2 * 7 * 111)}


def test_estimate_is_passes_times_seconds_per_image() -> None:
    work = StageWork("dissect")
    work.add(Network("CLIP ViT-B/16", CLIP_MODEL_ID, (3, 224, 224)), 1000)
    work.add(Network("resnet18", RESNET18, (3, 224, 224)), 2000)
    result = estimate(work, {CLIP_MODEL_ID: 0.2, RESNET18: 0.01})
    assert result.seconds == pytest.approx(1000 * 0.2 + 2000 * 0.01)
    assert stage_line(result) == (
        "estimated 4 min on this machine, from scratch (CLIP ViT-B/16: 1,000 passes x 200 ms/image, "
        "resnet18: 2,000 passes x 10 ms/image)"
    )
    unknown = estimate(work, {CLIP_MODEL_ID: 0.2})
    assert unknown.seconds is None and unknown.unknown == ("resnet18",)
    assert stage_line(unknown).startswith("estimate unknown until measured (resnet18 not timed on this machine yet")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.2, "1 s"), (45, "45 s"), (600, "10 min"), (3 * 3600 + 20 * 60, "3 h 20 min"), (3 * 86400, "3.0 days")],
)
def test_durations_read_as_a_person_plans(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def _stage(name: str, seconds: float | None):
    work = StageWork(name)
    work.add(Network("resnet50", RESNET50, (3, 224, 224)), 1000)
    return estimate(work, {RESNET50: None if seconds is None else seconds / 1000})


def test_hours_on_a_cpu_suggest_the_quick_config() -> None:
    results = [_stage("explain", 3000.0), _stage("compare", 1200.0)]
    lines = summary_lines(results, device_type="cpu", config_name="assignment")
    assert lines[0].startswith("estimated wall time: 1 h 10 min of forward passes")
    assert len(lines) == 2 and "--config configs/quick.yaml" in lines[1]
    assert len(summary_lines(results, device_type="cuda", config_name="assignment")) == 1  # a GPU: no suggestion
    assert len(summary_lines(results, device_type="cpu", config_name="quick")) == 1  # already the quick one
    assert len(summary_lines([_stage("explain", 3000.0)], device_type="cpu", config_name="assignment")) == 1
    partial = summary_lines([_stage("explain", 60.0), _stage("dissect", None)], device_type="cpu", config_name="x")
    assert partial == [
        "estimated wall time: 60 s of forward passes (plus dissect: not measured yet); segmentation, gradients, "
        "figures and the report come on top"
    ]
    assert summary_lines([_stage("dissect", None)], device_type="cpu", config_name="x") == []


def test_seconds_come_from_the_batch_size_measurement_and_are_measured_only_when_asked(tmp_path: Path) -> None:
    """The stage's stored search is used as is; a missing network is timed (one batch) only when its model id is in
    ``measure``, and that timing is stored, so the next plan reads it instead of timing again."""
    context = SimpleNamespace(cache=SimpleNamespace(root=tmp_path), device=torch.device("cpu"))
    tiny = Network("resnet18", RESNET18, (3, 32, 32))
    stored = Network("resnet50", RESNET50, (3, 32, 32))
    cache = BatchSizeCache(tmp_path)
    auto = {"device": context.device, "input_shape": stored.input_shape, "configured": "auto", "cache": cache}
    ticks = iter(float(i) for i in range(10_000))
    resolve_batch_size(lambda batch: batch, model_id=stored.model_id, timer=lambda: next(ticks), **auto)
    searched = resolve_batch_size(None, model_id=stored.model_id, **auto)  # what the stage stored
    assert searched is not None and searched.source == "cached"

    logged: list[str] = []
    found = seconds_per_image([stored, tiny], context, measure=set(), log=logged.append)
    assert found == {RESNET50: searched.per_image_s, RESNET18: None} and logged == []

    found = seconds_per_image([stored, tiny], context, measure={RESNET18, RESNET50}, log=logged.append)
    assert found[RESNET50] == searched.per_image_s  # already known: not timed again
    assert found[RESNET18] is not None and found[RESNET18] > 0
    assert logged == ["timing resnet18 on a batch of 8 for the estimate (once per machine)"]
    again = seconds_per_image([tiny], context, measure={RESNET18}, log=logged.append)
    assert again == {RESNET18: found[RESNET18]} and len(logged) == 1  # stored: read, not timed again
    other = Network("resnet18", RESNET18, (3, 40, 40))  # as --plan times it: not stored
    timed = seconds_per_image([other], context, measure={RESNET18}, store=False, log=logged.append)
    assert timed[RESNET18] is not None and timed[RESNET18] > 0 and len(logged) == 2
    assert seconds_per_image([other], context, measure=set(), log=logged.append) == {RESNET18: None}
