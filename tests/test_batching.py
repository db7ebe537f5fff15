"""Batch sizes by measurement: auto picks the fastest candidate, reuses it from the cache, an explicit size wins.

Timings here come from a fake clock that each fake forward advances by a cost we choose, so the winner is known.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xai import batching
from xai.batching import BatchSizeCache, resolve_batch_size
from xai.cache import ArtifactCache
from xai.config import validate
from xai.context import InputImage, RunContext
from xai.pipeline import run_record
from xai.plan import make_plan
from xai.testing import PlantedEvidenceNet, planted_image

CPU = torch.device("cpu")


class FakeModel:
    """A forward whose batch of n costs ``seconds_per_image[n] * n`` on a fake clock; records every batch size."""

    def __init__(self, seconds_per_image: dict[int, float]) -> None:
        self.seconds_per_image = seconds_per_image
        self.clock = 0.0
        self.seen: list[int] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        size = batch.shape[0]
        self.seen.append(size)
        self.clock += self.seconds_per_image[size] * size
        return batch

    def timer(self) -> float:
        return self.clock


def _resolve(model: FakeModel, cache: BatchSizeCache | None, **overrides) -> batching.BatchChoice:
    options = {
        "device": CPU,
        "input_shape": (3, 8, 8),
        "configured": "auto",
        "model_id": "fake",
        "cache": cache,
        "timer": model.timer,
        **overrides,
    }
    return resolve_batch_size(model, **options)


def test_auto_picks_the_candidate_with_the_lowest_time_per_image(tmp_path: Path) -> None:
    model = FakeModel({4: 1.0, 8: 0.5, 16: 0.4, 32: 0.6})
    choice = _resolve(model, BatchSizeCache(tmp_path))
    assert (choice.batch_size, choice.source) == (16, "measured")
    assert choice.per_image_s == pytest.approx(0.4)
    assert choice.timings == pytest.approx({4: 1.0, 8: 0.5, 16: 0.4, 32: 0.6})
    # One warm-up per candidate, then the rounds interleaved across candidates.
    assert model.seen == [4, 8, 16, 32] * (1 + batching.ROUNDS)


def test_auto_reuses_the_cached_winner_without_timing_again(tmp_path: Path) -> None:
    cache = BatchSizeCache(tmp_path)
    first = _resolve(FakeModel({4: 1.0, 8: 0.3, 16: 0.4, 32: 0.6}), cache)
    again_model = FakeModel({4: 0.1, 8: 0.9, 16: 0.9, 32: 0.9})  # would pick 4 if it were timed
    again = _resolve(again_model, cache)
    assert again_model.seen == []
    assert (again.batch_size, again.source, again.per_image_s) == (8, "cached", first.per_image_s)
    assert again.timings == first.timings
    # Another model or input size is another key: measured afresh.
    other = FakeModel({4: 0.1, 8: 0.9, 16: 0.9, 32: 0.9})
    assert _resolve(other, cache, model_id="other").batch_size == 4 and other.seen


def test_a_corrupt_cache_file_is_measured_again(tmp_path: Path) -> None:
    cache = BatchSizeCache(tmp_path)
    first = _resolve(FakeModel({4: 1.0, 8: 0.3, 16: 0.4, 32: 0.6}), cache)
    (cache.directory / f"{first.key}.json").write_text("{not json")
    model = FakeModel({4: 1.0, 8: 0.3, 16: 0.4, 32: 0.6})
    assert _resolve(model, cache).source == "measured" and model.seen


@pytest.mark.parametrize(
    "record",
    [
        {"batch_size": 0},
        {"batch_size": -8},
        {"batch_size": True},
        {"batch_size": 8.0},
        {"batch_size": "8"},
        {"batch_size": 8, "timings": [1, 2]},
        {"batch_size": 8, "timings": {"x": 0.1}},
        {"batch_size": 8, "timings": {"8": "fast"}},
        {"batch_size": 8, "timings": {"8": None}},
        {"batch_size": 8, "per_image_s": "0.1"},
        {"batch_size": 8, "per_image_s": True},
        [8],
        8,
        None,
    ],
)
def test_an_invalid_cache_record_is_measured_again_never_a_crash(tmp_path: Path, record: object) -> None:
    import json

    cache = BatchSizeCache(tmp_path)
    first = _resolve(FakeModel({4: 1.0, 8: 0.3, 16: 0.4, 32: 0.6}), cache)
    (cache.directory / f"{first.key}.json").write_text(json.dumps(record))
    model = FakeModel({4: 1.0, 8: 0.3, 16: 0.4, 32: 0.6})
    choice = _resolve(model, cache)
    assert (choice.source, choice.batch_size) == ("measured", 8) and model.seen


def _fake_oom_forward(limit: int, error: Exception) -> FakeModel:
    model = FakeModel({8: 1.0, 16: 0.6, 32: 0.4, 64: 0.3})
    run = model.__call__

    def forward(batch: torch.Tensor) -> torch.Tensor:
        if batch.shape[0] >= limit:
            raise error
        return run(batch)

    model.forward = forward  # type: ignore[attr-defined]
    return model


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
        RuntimeError("CUDA error: out of memory"),
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"),
    ],
)
def test_the_growing_search_stops_at_the_first_size_that_runs_out_of_memory(error: Exception) -> None:
    model = _fake_oom_forward(32, error)
    timings = batching.measure(model.forward, (3, 8, 8), CPU, candidates=None, timer=model.timer)
    assert list(timings) == [8, 16]


def test_another_runtime_error_is_not_taken_for_out_of_memory() -> None:
    model = _fake_oom_forward(32, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes"):
        batching.measure(model.forward, (3, 8, 8), CPU, candidates=None, timer=model.timer)


def test_when_not_even_the_first_batch_fits_the_cli_prints_one_line_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from xai import cli
    from xai.config import ConfigError

    model = _fake_oom_forward(1, torch.cuda.OutOfMemoryError("CUDA out of memory"))
    with pytest.raises(ConfigError, match=r"explain\.batch_size / dissect\.batch_size"):
        batching.measure(model.forward, (3, 8, 8), CPU, candidates=None, timer=model.timer)

    def fail(*args: object, **kwargs: object) -> int:
        batching.measure(model.forward, (3, 8, 8), CPU, candidates=None, timer=model.timer)
        return 0

    from xai import pipeline

    monkeypatch.setattr(pipeline, "generate", fail)
    config = tmp_path / "config.yaml"
    config.write_text("weights: random\n")
    assert cli.main(["--config", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "batch_size" in error and "Traceback" not in error


CPUINFO = "".join(f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t\t: {cpu % 4}\n\n" for cpu in range(8))
"""Four cores with two hyper-threads each: CPUs n and n + 4 share core n % 4."""


@pytest.mark.parametrize(
    ("allowed", "cores"), [(set(range(8)), 4), ({0, 4}, 1), ({0, 1}, 2), ({0, 1, 4, 5}, 2), ({3}, 1)]
)
def test_physical_cores_counts_only_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch, allowed: set[int], cores: int
) -> None:
    monkeypatch.setattr(batching.os, "sched_getaffinity", lambda pid: allowed, raising=False)
    assert batching.physical_cores(CPUINFO) == cores


def test_explicit_size_is_used_without_timing() -> None:
    model = FakeModel({})
    choice = _resolve(model, None, configured=12)
    assert (choice.batch_size, choice.source, choice.per_image_s) == (12, "configured", None)
    assert model.seen == []


def test_growing_search_stops_when_doubling_no_longer_gains() -> None:
    # The CUDA search (candidates=None), run on a fake clock: gains to 64, then < MIN_GAIN.
    model = FakeModel({8: 1.0, 16: 0.6, 32: 0.4, 64: 0.3, 128: 0.295, 256: 0.2})
    timings = batching.measure(model, (3, 8, 8), CPU, candidates=None, timer=model.timer)
    assert list(timings) == [8, 16, 32, 64, 128]
    assert 256 not in model.seen


def test_threads_are_physical_cores_at_most_and_never_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 1 <= batching.physical_cores() <= len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(64)
        assert batching.configure_threads() == batching.physical_cores()
        torch.set_num_threads(1)  # lowered on purpose (as the test suite does): kept
        assert batching.configure_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert batching.configure_threads() == 3
    finally:
        torch.set_num_threads(before)


def _context(tmp_path: Path, model: torch.nn.Module, batch_size: int | str) -> RunContext:
    config = validate(
        {
            "weights": "random",
            "stages": ["explain"],
            "cache_dir": str(tmp_path / "cache"),
            "explain": {
                "methods": ["lime", "scorecam"],
                "batch_size": batch_size,
                "lime": {"num_samples": 20, "stability_seeds": 1},
            },
        }
    )
    context = RunContext(make_plan(config), ArtifactCache(config.cache_dir), CPU, quiet=True)
    context.classifier = lambda _model: SimpleNamespace(module=model)  # type: ignore[method-assign]
    return context


def _explain_batches(context: RunContext, model: torch.nn.Module) -> list[int]:
    from xai.stages import explain as explain_stage

    pixels = planted_image(64, 0)
    image = InputImage("planted", Path("planted.png"), "0" * 64, pixels)
    seen: list[int] = []
    handle = model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape[0]))
    try:
        explain_stage.explain_one(context, image)
    finally:
        handle.remove()
    return seen


def test_explain_stage_honours_an_explicit_batch_size(tmp_path: Path) -> None:
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    context = _context(tmp_path, model, 5)
    seen = _explain_batches(context, model)
    assert max(seen) == 5 and seen.count(5) >= 4  # LIME's 20 samples and ScoreCAM's channels, 5 at a time
    assert run_record(context)["batch_sizes"]["explain:resnet50"]["source"] == "configured"


def test_explain_stage_auto_uses_the_measured_size_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_measure(forward, input_shape, device, **options):
        calls.append(tuple(input_shape))
        forward(torch.zeros(2, *input_shape))  # the real model and layout accept the shape
        return {4: 0.3, 8: 0.1, 16: 0.2, 32: 0.4}

    monkeypatch.setattr(batching, "measure", fake_measure)
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    context = _context(tmp_path, model, "auto")
    seen = _explain_batches(context, model)
    assert calls == [(3, 64, 64)]
    assert max(seen) == 8 and seen.count(8) >= 2
    record = run_record(context)["batch_sizes"]["explain:resnet50"]
    assert (record["batch_size"], record["source"], record["per_image_s"]) == (8, "measured", 0.1)
    # A second run on this machine reads the winner from the cache: nothing is timed again.
    fresh = _context(tmp_path, model, "auto")
    fresh.cache.force = True  # recompute the explanations, so the batch size is needed again
    assert max(_explain_batches(fresh, model)) == 8 and calls == [(3, 64, 64)]
    assert fresh.batch_sizes["explain:resnet50"].source == "cached"
    assert np.isclose(fresh.batch_sizes["explain:resnet50"].per_image_s, 0.1)


def test_results_carry_their_batch_size_and_a_fully_cached_run_measures_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xai.stages import explain as explain_stage

    calls = []

    def fake_measure(forward, input_shape, device, **options):
        calls.append(tuple(input_shape))
        return {4: 0.3, 8: 0.1, 16: 0.2, 32: 0.4}

    monkeypatch.setattr(batching, "measure", fake_measure)
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    context = _context(tmp_path, model, "auto")
    context.images = [InputImage("planted", Path("planted.png"), "0" * 64, planted_image(64, 0))]
    first = explain_stage.run(context)
    explanation = first.images[0].explanation
    assert (explanation.lime.batch_size, explanation.lime.per_image_s) == (8, 0.1)
    scorecam = next(cam for cam in explanation.cams if cam.method == "scorecam")
    assert (scorecam.batch_size, scorecam.per_image_s) == (8, 0.1)
    costs = {cost.method: cost for cost in first.costs}
    assert costs["lime"].floor_s == pytest.approx(explanation.lime.forward_passes * 0.1)
    assert costs["scorecam"].ratio == pytest.approx(scorecam.seconds / (scorecam.forward_passes * 0.1))
    # Everything cached, the batch-size file removed: the run reads its costs from the artifacts, times nothing.
    for path in (Path(context.cache.root) / "batch-sizes").glob("*.json"):
        path.unlink()
    again = _context(tmp_path, model, "auto")
    again.images = context.images
    cached = explain_stage.run(again)
    assert calls == [(3, 64, 64)] and again.batch_sizes == {}
    assert [(c.method, c.floor_s, c.batch_size) for c in cached.costs] == [
        (c.method, c.floor_s, c.batch_size) for c in first.costs
    ]


def test_config_batch_size_is_auto_by_default_and_validated() -> None:
    from xai.config import ConfigError

    config = validate({})
    assert config.explain.batch_size == config.dissect.batch_size == "auto"
    assert validate({"explain": {"batch_size": 24}}).explain.batch_size == 24
    for bad in (0, 5000, "fast", 2.5, True):
        with pytest.raises(ConfigError, match=r"explain\.batch_size: .*'auto'"):
            validate({"explain": {"batch_size": bad}})


def _explained(per_image_s: float | None = 0.025) -> SimpleNamespace:
    from xai.explain.explained import ExplainedImage, method_costs

    batch = {"batch_size": 8, "per_image_s": per_image_s}
    cams = (
        SimpleNamespace(method="scorecam", seconds=60.0, forward_passes=2049, **batch),
        SimpleNamespace(method="gradcam", seconds=0.5, forward_passes=1, batch_size=None, per_image_s=None),
    )
    explanation = SimpleNamespace(lime=SimpleNamespace(seconds=30.0, forward_passes=1000, **batch), cams=cams)
    methods = ("lime", "scorecam", "gradcam")
    images = [ExplainedImage("a", np.zeros((1, 1, 3)), explanation)]
    return SimpleNamespace(model="resnet50", methods=methods, images=images, costs=method_costs(images, methods))


def _cost_cells(explained: SimpleNamespace) -> list[list[str]]:
    """The cost table's cells as the page prints them."""
    from xai.report.page import cell_of
    from xai.report.pages_explain import cost_table

    found = cost_table(explained)
    return [[str(cell_of(row, column)) for column in found.columns] for row in found.rows]


def test_cost_table_puts_each_batched_method_next_to_its_floor() -> None:
    explained = _explained()
    assert (explained.costs[0].batch_size, explained.costs[0].per_image_s) == (8, 0.025)
    assert _cost_cells(explained) == [
        ["LIME", "30.0 s", "1,000", "25.0 s", "1.20x"],
        ["Score-CAM", "60.0 s", "2,049", "51.2 s", "1.17x"],
        ["Grad-CAM", "500 ms", "1", "n/a", "n/a"],
    ]
    # An explicit batch size measures nothing, so there is no floor to show.
    explained = _explained(per_image_s=None)
    assert [row[3:] for row in _cost_cells(explained)] == [["n/a", "n/a"]] * 3
    assert (explained.costs[0].batch_size, explained.costs[0].per_image_s) == (8, None)


def test_each_result_is_held_to_its_own_recorded_time_never_another_runs() -> None:
    """Two images computed in different runs (batch 8 at 0.025 s, batch 16 at 0.05 s): the floor averages each
    result's own passes x time; one result without a recorded time leaves the method without a floor."""
    from xai.explain.explained import ExplainedImage, method_costs

    def image(name: str, size: int | None, per_image: float | None) -> ExplainedImage:
        lime = SimpleNamespace(seconds=30.0, forward_passes=1000, batch_size=size, per_image_s=per_image)
        return ExplainedImage(name, np.zeros((1, 1, 3)), SimpleNamespace(lime=lime, cams=()))

    [cost] = method_costs([image("a", 8, 0.025), image("b", 16, 0.05)], ("lime",))
    assert cost.floor_s == pytest.approx((25.0 + 50.0) / 2) and cost.ratio == pytest.approx(30.0 / 37.5)
    [cost] = method_costs([image("a", 8, 0.025), image("b", 8, None)], ("lime",))
    assert cost.floor_s is None and cost.ratio is None


def test_stage_resolution_loads_nothing_when_cached_and_never_measures_in_load_only_mode(tmp_path: Path) -> None:
    from xai.batching import stage_batch_size

    made = []

    def factory() -> FakeModel:
        made.append(1)
        return FakeModel({size: 1.0 / size for size in batching.CPU_CANDIDATES})

    def context() -> SimpleNamespace:
        return SimpleNamespace(
            device=CPU, cache=SimpleNamespace(root=tmp_path), log=lambda message: None, batch_sizes={}
        )

    options = {"model_id": "fake", "forward": factory, "input_shape": (3, 4, 4)}
    assert stage_batch_size(context(), "x", "auto", load_only=True, **options) is None and made == []
    first = context()
    assert stage_batch_size(first, "x", "auto", **options) == 32 and made == [1]
    second = context()
    assert stage_batch_size(second, "x", "auto", load_only=True, **options) == 32 and made == [1]
    assert second.batch_sizes["x"].source == "cached"
    assert stage_batch_size(context(), "x", 7, **options) == 7 and made == [1]


def test_home_page_lists_the_batch_sizes_of_the_run(tmp_path: Path) -> None:
    from tests.helpers.run_record import RUN, run_plan
    from xai.report.render import render_report

    choice = {
        "label": "explain:resnet50",
        "batch_size": 8,
        "source": "cached",
        "per_image_s": 0.025,
        "timings": {"4": 0.03, "8": 0.025},
        "key": "k",
    }
    render_report({**RUN, "batch_sizes": {"explain:resnet50": choice}, "torch_threads": 2}, {}, tmp_path, run_plan())
    home = (tmp_path / "index.md").read_text()
    assert "| explain:resnet50 | 8 | auto (cached, measured earlier) | 25 ms | 4: 30 ms, 8: 25 ms |" in home
    measured = {**choice, "source": "measured"}
    render_report({**RUN, "batch_sizes": {"explain:resnet50": measured}, "torch_threads": 2}, {}, tmp_path, run_plan())
    assert "| explain:resnet50 | 8 | auto (measured in this run) | 25 ms |" in (tmp_path / "index.md").read_text()
    assert "Torch ran 2 thread(s)" in home


@pytest.mark.parametrize("source", ["measured", "configured"])
def test_explanations_page_explains_the_floor(tmp_path: Path, source: str) -> None:
    from tests.helpers.run_record import RUN
    from xai.explain.explained import ExplainArtifacts
    from xai.report.blocks import Answers, Table
    from xai.report.pages_explain import INDEX, cost_table
    from xai.report.render import Page, render_pages

    explained = _explained(0.025 if source == "measured" else None)
    empty = Table(())
    context = {
        "title": "t",
        "answers": Answers(),
        "explained": ExplainArtifacts("resnet50", ["a"] * 1000, "layer4[-1]", explained.methods),
        "methods": ["LIME"],
        "predictions": empty,
        "lime": empty,
        "costs": cost_table(explained),
        "batch": next(cost for cost in explained.costs if cost.batch_size is not None),
        "timings": empty,
        "gallery": None,
        "assets": "../assets/explanations",
        "concepts": None,
        "failed": empty,
    }
    render_pages([Page(INDEX, "explanations.md.j2", context)], tmp_path, RUN)
    text = (tmp_path / INDEX).read_text()
    assert "| Method | Time per image | Forward passes per image | Floor | Time / floor |" in text
    # Markdown only starts a table after a blank line: glued to the paragraph it would render as text
    assert "\n\n| Method | Time per image |" in text
    if source == "measured":
        assert "forward passes x 25 ms per image" in text and "| LIME | 30.0 s | 1,000 | 25.0 s | 1.20x |" in text
    else:
        assert "explicit batch size\n(8)" in text or "explicit batch size (8)" in text


def _fake_measure(forward, input_shape, device, **options):
    return {4: 0.3, 8: 0.1, 16: 0.2, 32: 0.4}  # 8 wins


@pytest.mark.parametrize(("configured", "expected"), [(7, 7), ("auto", 8)])
def test_the_probe_pass_receives_the_resolved_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: int | str, expected: int
) -> None:
    import sys

    from xai.stages import probe_shards

    probe_pass_module = sys.modules["xai.dissect.probe_pass"]  # the package re-exports the function by that name

    monkeypatch.setattr(batching, "measure", _fake_measure)
    seen: list[int] = []
    monkeypatch.setattr(
        probe_pass_module, "probe_pass", lambda paths, *, batch_size, **options: seen.append(batch_size)
    )
    config = validate(
        {
            "weights": "random",
            "stages": ["dissect"],
            "cache_dir": str(tmp_path / "cache"),
            "dissect": {"batch_size": configured},
        }
    )
    context = RunContext(make_plan(config), ArtifactCache(config.cache_dir), CPU, quiet=True)
    context.classifier = lambda model: SimpleNamespace(module=torch.nn.Identity())  # type: ignore[method-assign]
    preset = context.plan.dissect.models[0]
    probe_shards.probe_pass_in_shards(
        context, [Path("a.jpg")], context.plan.dissect, clip_needed=False, models_needed=[preset]
    )
    assert seen == [expected]
    assert context.batch_sizes["dissect:resnet18"].source == ("configured" if configured == 7 else "measured")


@pytest.mark.parametrize(("configured", "expected"), [(5, 5), ("auto", 8)])
def test_the_compare_stage_gives_faithfulness_and_sanity_the_resolved_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: int | str, expected: int
) -> None:
    from xai import compare
    from xai.context import StageCache
    from xai.explain.explained import ExplainArtifacts, ExplainedImage
    from xai.stages import compare as compare_stage
    from xai.units import Filled

    monkeypatch.setattr(batching, "measure", _fake_measure)
    seen: dict[str, int] = {}

    def record(name: str, result: object = None):
        def callee(*args: object, batch_size: int, **options: object) -> object:
            seen[name] = batch_size
            return result

        return callee

    monkeypatch.setattr(compare, "faithfulness_image", record("faithfulness"))
    monkeypatch.setattr(compare_stage, "sanity_explain_fn", record("sanity"))
    for name in ("compare_image", "explanation_maps", "sanity_check", "summarise", "cross_image_table"):
        monkeypatch.setattr(compare, name, lambda *args, **options: None)
    monkeypatch.setattr(compare_stage, "seed_weights", lambda explanation: (np.zeros(1), (0,)))
    monkeypatch.setattr(StageCache, "get", lambda self, kind, parts, compute: compute())
    monkeypatch.setattr(compare_stage, "fill_missing", lambda *args, **kwargs: Filled())  # computed by the cache
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    context = _context(tmp_path, model, configured)
    # the sanity check runs (and resolves its batch size) only with trained weights; the model is patched in
    config = context.plan.config.model_copy(update={"weights": "pretrained", "stages": ("explain", "compare")})
    context.plan = make_plan(config)
    pixels = planted_image(64, 0)
    context.images = [InputImage("planted", Path("planted.png"), "0" * 64, pixels)]
    lime = SimpleNamespace(segments=np.zeros((64, 64), np.int32), weights=np.zeros(1), label=0)
    explanation = SimpleNamespace(lime=lime, cams=(), prediction=SimpleNamespace(top1=0), stability=None)
    context.artifacts["explain"] = ExplainArtifacts(
        "resnet50", [], "layer4[-1]", ("lime",), images=[ExplainedImage("planted", pixels, explanation)]
    )
    compare_stage.run(context)
    assert seen == {"faithfulness": expected, "sanity": expected}
