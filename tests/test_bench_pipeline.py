"""bench/bench_pipeline.py's floor arithmetic, tied to the labels the stages actually record (a merge that renames
one must fail here, not as a KeyError at the end of a 20-minute bench)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torchvision.models import ResNet18_Weights

from tests.helpers.bench import load_bench
from xai.stages import probe_shards


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_pipeline")


def _context(tmp_path: Path) -> SimpleNamespace:
    from xai.config import validate
    from xai.plan import make_plan

    config = validate({"weights": "random", "stages": ["dissect"], "dissect": {"batch_size": 7}})
    return SimpleNamespace(
        plan=make_plan(config),
        batch_sizes={},
        device=torch.device("cpu"),
        cache=SimpleNamespace(root=tmp_path),
        log=lambda message: None,
    )


@pytest.mark.parametrize("clip_in_pass", [True, False])
def test_the_bench_finds_the_label_the_probe_pass_records(bench, tmp_path: Path, clip_in_pass: bool) -> None:
    context = _context(tmp_path)
    clip = (
        SimpleNamespace(module=None, preprocess=ResNet18_Weights.IMAGENET1K_V1.transforms()) if clip_in_pass else None
    )
    assert bench.probe_pass_label(context.batch_sizes) is None  # nothing ran yet
    planned = context.plan.dissect
    assert probe_shards.pass_batch_size(context, clip, list(planned.models), planned) == 7
    label = bench.probe_pass_label(context.batch_sizes)
    assert label in context.batch_sizes and context.batch_sizes[label].batch_size == 7
    assert label == ("dissect:clip" if clip_in_pass else "dissect:resnet18")


def test_probe_pass_floor_is_every_image_through_every_network_plus_unoverlapped_decoding(bench) -> None:
    per_image = {"clip": 0.03, "resnet18_imagenet": 0.01, "resnet18_places": 0.02}
    assert bench.probe_pass_floor(1000, per_image, decode_s=5.0, decoding_overlapped=True) == pytest.approx(60.0)
    assert bench.probe_pass_floor(1000, per_image, decode_s=5.0, decoding_overlapped=False) == pytest.approx(65.0)
    assert bench.probe_pass_floor(10, {"resnet18_imagenet": 0.5}, 1.0, True) == pytest.approx(5.0)


def test_ablation_floor_is_one_forward_plus_the_tail_on_every_channel(bench, monkeypatch: pytest.MonkeyPatch) -> None:
    """Floor = single forward + sum over chunks of (hooked chunk forward - single forward), on a fake clock; the
    hooked forwards really carry the chunk's rows past the target layer."""
    from xai.explain.cams import ablation

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 3, padding=1),
        torch.nn.Conv2d(64, 64, 3, padding=1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 5),
    ).eval()
    rows_seen: list[int] = []
    model[-1].register_forward_hook(lambda module, inputs, out: rows_seen.append(out.shape[0]))
    calls: list[int] = []

    def fake_median_time(function, repeats: int = 3) -> float:
        function()
        calls.append(1)
        return 1.0 if len(calls) == 1 else 1.25  # the first timing is the single forward

    monkeypatch.setattr(bench, "_median_time", fake_median_time)
    monkeypatch.setattr(ablation, "CHUNK_BYTES", 16 * 64 * 32 * 32 * 4)  # 16 channels' rows per chunk: 4 chunks
    seconds = bench.ablation_floor_s(model, model[1], torch.device("cpu"), (3, 32, 32))
    assert seconds == pytest.approx(1.0 + 4 * 0.25)
    assert rows_seen == [1, 1, 16, 16, 16, 16]  # capture, single forward, then the four chunks
