"""Units of work without a cluster (issue 20): the plan travels as plain data, a unit computes exactly its missing
pieces, the driver writes them under its own keys and sends nothing twice, a sharded probe pass is the whole pass,
a worker reads a user's checkpoint from its own copy, and choosing Ray without Ray or with an address nobody
answers is one line naming the fix. (On a Ray cluster: tests/test_executor_ray.py.)"""

from __future__ import annotations

import itertools
import pickle
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn
from torchvision import transforms as T

from tests.helpers import units as helpers
from xai import serial
from xai.cache import ArtifactCache, make_key
from xai.config import validate
from xai.context import RunContext
from xai.dissect.artifacts import ArrayArtifact
from xai.dissect.probe_pass import probe_pass
from xai.executor import Unit
from xai.plan import make_plan
from xai.stages.probe_shards import AUTO_QUANTUM, concatenated, placed, shard_quantum, shard_ranges
from xai.testing import PlantedEvidenceNet, planted_image
from xai.units import Job, UnitPlanError, Workspace, fill_missing, run_unit

CPU = torch.device("cpu")


def _context(tmp_path: Path, **data: object) -> RunContext:
    config = validate({"weights": "random", "stages": ["explain"], "cache_dir": str(tmp_path / "cache"), **data})
    return RunContext(make_plan(config), ArtifactCache(config.cache_dir), CPU, quiet=True)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"weights": "random", "dissect": {"models": ["resnet18_places365", {"name": "vit_b_16"}], "layers": "auto"}},
        {"executor": "ray", "ray": {"address": "10.0.0.5:6379", "workers": 3}},
    ],
)
def test_the_run_plan_is_plain_picklable_data(data: dict) -> None:
    """Workers rebuild everything from the plan: it survives pickling whole (models, layers, budgets, seeds)."""
    plan = make_plan(validate(data))
    again = pickle.loads(pickle.dumps(plan))
    assert again == plan and again.seed == plan.seed and again.dissect == plan.dissect


def test_shards_start_on_batch_boundaries_and_cover_the_probe_list_in_order() -> None:
    assert shard_ranges(20, 8, 1) == [(0, 20)]  # one worker: the whole pass
    assert shard_ranges(20, 8, 2) == [(0, 8), (8, 16), (16, 20)]  # three batches, up to 8 shards for 2 workers
    assert shard_ranges(100, 8, 2) == [(0, 16), (16, 32), (32, 48), (48, 64), (64, 80), (80, 96), (96, 100)]
    assert shard_ranges(0, 8, 4) == []
    assert shard_quantum(32) == 32 and shard_quantum("auto") == AUTO_QUANTUM
    for count, quantum, workers in [(63_305, 1024, 8), (1000, 32, 3), (7, 4, 16)]:
        ranges = shard_ranges(count, quantum, workers)
        assert ranges[0][0] == 0 and ranges[-1][1] == count
        assert all(stop == start for (_, stop), (start, _) in itertools.pairwise(ranges))
        assert all(start % quantum == 0 for start, _ in ranges)


class _TinyClip(nn.Module):
    """Stands in for CLIP's image tower: ``encode_image`` of a 32-px crop."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.proj = nn.Linear(8 * 7 * 7, 16)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(images).flatten(1))


def test_a_probe_pass_in_shards_read_from_copies_is_the_whole_pass(tmp_path: Path) -> None:
    """Shards on batch boundaries, each decoded from a worker's own copy of its files, concatenated: the same
    bytes as one pass over the driver's files, and an undecodable image is named by the driver's path."""
    driver = tmp_path / "driver"
    driver.mkdir()
    paths = []
    for index in range(11):
        paths.append(driver / f"img{index:02d}.jpg")
        Image.fromarray(planted_image(80, seed=index)).save(paths[-1], quality=90)
    paths[6].write_bytes(b"not an image")
    clip_transform = T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])
    target_transform = T.Compose([T.Resize(72), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.4,) * 3, (0.2,) * 3)])
    clip, net = _TinyClip().eval(), PlantedEvidenceNet((8, 8, 40, 40), seed=1).eval()

    def run(files: list[Path]) -> object:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "probe image .* cannot be decoded")
            return probe_pass(
                files,
                batch_size=3,
                clip=clip,
                clip_transform=clip_transform,
                targets={"net": net},
                target_transform=target_transform,
                layers=("layer3", "fc"),
                workers=0,
            )

    whole = run(paths)
    shards = []
    for start, stop in shard_ranges(len(paths), 3, 2):
        copies = tmp_path / f"worker-{start}"
        copies.mkdir()
        local = [Path(shutil.copy(path, copies / path.name)) for path in paths[start:stop]]
        shards.append(placed(run(local), start, local, [str(path) for path in paths[start:stop]]))
    joined = concatenated(shards)
    assert len(shards) == 4
    assert joined.clip_embeddings.tobytes() == whole.clip_embeddings.tobytes()
    for layer in ("layer3", "fc"):
        assert joined.activations["net"][layer].tobytes() == whole.activations["net"][layer].tobytes()
    assert joined.kept.tolist() == whole.kept.tolist() == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10]
    assert joined.skipped == whole.skipped and str(paths[6]) in joined.skipped[0][1]


def test_a_unit_computes_its_missing_pieces_reads_the_known_ones_and_refuses_others(tmp_path: Path) -> None:
    context = _context(tmp_path)
    key = make_key("explain", helpers.square_parts(3))
    known = {make_key("explain", helpers.square_parts(4)): serial.to_parts(ArrayArtifact({"value": np.array([99])}))}
    result = run_unit(context, Unit(helpers.SQUARE, "three", "explain", 3, known, (key,)))
    assert result.value == 9 and list(result.pieces) == [key] and not result.written
    assert serial.from_parts(ArrayArtifact, *result.pieces[key]).arrays["value"].tolist() == [9]
    sent = Unit(helpers.SQUARE, "four", "explain", 4, known, ())
    assert run_unit(context, sent).value == 99 and run_unit(context, sent).pieces == {}  # read, never recomputed
    with pytest.raises(UnitPlanError, match="not planned by the driver"):
        run_unit(context, Unit(helpers.SQUARE, "five", "explain", 5, known, (key,)))
    assert not any((tmp_path / "cache").rglob("meta.json"))  # a unit writes nothing unless told to
    workspace = Workspace(Unit(helpers.SQUARE, "six", "explain", 6), {"/driver/a.jpg": Path("/worker/0/a.jpg")})
    assert workspace.file("/driver/a.jpg") == Path("/worker/0/a.jpg") and workspace.file("b.jpg") == Path("b.jpg")


def test_the_driver_sends_only_what_is_missing_and_writes_it_under_its_keys(tmp_path: Path) -> None:
    context = _context(tmp_path)
    jobs = [Job(helpers.SQUARE, str(n), n, {"square": (ArrayArtifact, helpers.square_parts(n))}) for n in (2, 3)]
    first = fill_missing(context, "explain", jobs, "squares")
    assert first.values == {"2": 4, "3": 9} and len(context.cache.stats.misses) == 2
    for n in (2, 3):
        found = context.cache.get_or_compute("explain", helpers.square_parts(n), _never, ArrayArtifact)
        assert found.arrays["value"].tolist() == [n * n]
    assert fill_missing(context, "explain", jobs, "squares").values == {}  # everything cached: nothing sent
    shutil.rmtree(context.cache.path("explain", make_key("explain", helpers.square_parts(3))))
    assert fill_missing(context, "explain", jobs, "squares").values == {"3": 9}  # only the missing one is sent


def _never() -> ArrayArtifact:
    raise AssertionError("the piece should be in the cache")


def test_a_worker_builds_the_users_checkpoint_from_its_own_copy(tmp_path: Path) -> None:
    """The checkpoint reaches a worker as bytes: it builds the same weights after the driver's file is gone."""
    from torchvision.models import squeezenet1_1

    from xai.worker import UnitWorker, plan_files

    torch.manual_seed(2)
    checkpoint = tmp_path / "mine.pt"
    torch.save(squeezenet1_1().state_dict(), checkpoint)
    config = tmp_path / "mine.yaml"
    config.write_text(
        yaml.safe_dump({"stages": ["explain"], "explain": {"model": "squeezenet1_1", "checkpoint": "mine.pt"}})
    )
    from xai.config import load

    plan = make_plan(load(config))
    files = plan_files(plan)
    assert list(files) == [str(checkpoint)]
    expected = torch.load(checkpoint, weights_only=True)
    checkpoint.unlink()
    worker = UnitWorker(plan, "cpu", threads=1, batch_records={}, files=files)
    try:
        local = worker.context.plan.explain.model.spec.checkpoint
        assert local != checkpoint and local.is_relative_to(worker.root)
        built = worker.context.classifier(worker.context.plan.explain.model).module.state_dict()
        assert all(torch.equal(built[name], value) for name, value in expected.items())
        assert worker.identity().code == __import__("xai.worker", fromlist=["code_identity"]).code_identity()
    finally:
        worker.close()
    assert not worker.root.exists()


def _main(tmp_path: Path, capsys: pytest.CaptureFixture[str], **extra: object) -> tuple[int, str]:
    from xai.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "weights": "random",
                "stages": ["explain"],
                "output_dir": str(tmp_path / "docs"),
                "cache_dir": str(tmp_path / "cache"),
                **extra,
            }
        )
    )
    code = main(["--config", str(config), "--executor", "ray", "--plan"])
    return code, capsys.readouterr().err.strip()


def test_ray_without_ray_installed_is_one_line_naming_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    code, err = _main(tmp_path, capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("error: executor 'ray': Ray is not installed") and 'pip install -e ".[ray]"' in err


def test_an_address_nobody_answers_is_one_line_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    code, err = _main(tmp_path, capsys, ray={"address": "127.0.0.1:9"})
    assert code == 2 and err.count("\n") == 0 and "Traceback" not in err
    assert "ray.address 127.0.0.1:9: no Ray cluster answers there" in err and "ray start --head" in err
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # the environment's address, named as such
    code, err = _main(tmp_path, capsys)
    assert code == 2 and "RAY_ADDRESS=127.0.0.1:9: no Ray cluster answers there" in err


@pytest.mark.parametrize(
    ("ray", "message"),
    [
        ({"address": "my cluster"}, "ray.address: got 'my cluster'; use 'auto', 'local' or the head's host:port"),
        ({"workers": 0}, "ray.workers: got 0; use 'auto'"),
        ({"num_gpus_per_worker": "all"}, "ray.num_gpus_per_worker: got 'all'; use 'auto'"),
        ({"adress": "auto"}, "ray.adress: unknown key; allowed keys here: address"),
    ],
)
def test_ray_settings_are_checked_with_one_line_errors(ray: dict, message: str) -> None:
    from xai.config import ConfigError

    with pytest.raises(ConfigError) as error:
        validate({"executor": "ray", "ray": ray}, "mine.yaml")
    assert str(error.value).startswith(f"mine.yaml: {message}"), str(error.value)
    with pytest.raises(ConfigError, match=r"executor: .*'local' or 'ray'"):
        validate({"executor": "dask"}, "mine.yaml")


def test_probe_pieces_are_keyed_by_the_device_their_units_run_on() -> None:
    """GPU workers under a CPU driver: the probe pass's pieces say cuda (and CLIP's fp16), the scores say where
    their inputs came from; with the units on the driver's device the keys are those of a run without a cluster."""
    from types import SimpleNamespace

    from xai.stages.dissect_keys import activation_parts, clip_image_parts, scoring_parts

    plan = make_plan(validate({"weights": "random", "stages": ["dissect"]}))
    entry = plan.dissect.models[0]
    alone = SimpleNamespace(plan=plan, device=CPU)
    cluster = SimpleNamespace(plan=plan, device=CPU, executor=SimpleNamespace(device=torch.device("cuda")))
    same = SimpleNamespace(plan=plan, device=CPU, executor=SimpleNamespace(device=CPU))
    assert (
        activation_parts(cluster, entry, "p")["device"] == "cuda"
        and activation_parts(alone, entry, "p")["device"] == "cpu"
    )
    assert (
        clip_image_parts(cluster, "p")["clip_dtype"] == "float16"
        and clip_image_parts(alone, "p")["clip_dtype"] == "float32"
    )
    assert scoring_parts(cluster, entry, "p", "c")["probe_device"] == "cuda"
    assert scoring_parts(cluster, entry, "p", "c")["scoring_device"] == "cpu"
    for parts in (activation_parts, clip_image_parts):
        args = (entry, "p") if parts is activation_parts else ("p",)
        assert make_key("dissect", parts(same, *args)) == make_key("dissect", parts(alone, *args))
    assert scoring_parts(same, entry, "p", "c") == scoring_parts(alone, entry, "p", "c")
    assert "probe_device" not in scoring_parts(alone, entry, "p", "c")  # the keys of runs before clusters stand


@pytest.mark.parametrize(
    ("resources", "settings", "device", "expected"),
    [
        ({"CPU": 16, "GPU": 2}, {}, "auto", (1.0, 2, None)),  # one worker per GPU
        ({"CPU": 16, "GPU": 2}, {}, "cpu", (0.0, 16, None)),  # --device cpu: one per CPU
        ({"CPU": 16, "GPU": 2}, {"workers": 8}, "auto", (1.0, 2, 8)),  # more than fit: capped, said in the plan
        ({"CPU": 16, "GPU": 2}, {"num_gpus_per_worker": 0.5}, "auto", (0.5, 4, None)),  # two per GPU
        ({"CPU": 8, "GPU": 0}, {"num_cpus_per_worker": 3}, "auto", (0.0, 2, None)),
    ],
)
def test_workers_are_sized_by_the_clusters_gpus_and_cpus(
    resources: dict, settings: dict, device: str, expected: tuple
) -> None:
    from xai.executors.ray import RayExecutor
    from xai.executors.settings import RaySettings

    executor = RayExecutor.__new__(RayExecutor)  # sizing only: no cluster
    executor.settings, executor.source = RaySettings(**settings), "test"
    executor.cpus, executor.gpus = resources["CPU"], resources["GPU"]
    assert executor._sizes(device) == expected


@pytest.mark.parametrize(
    ("resources", "settings", "device", "message"),
    [
        ({"CPU": 8, "GPU": 0}, {}, "cuda", "device 'cuda': the Ray cluster (test) has no GPU"),
        ({"CPU": 8, "GPU": 0}, {"num_gpus_per_worker": 1}, "auto", "ray.num_gpus_per_worker 1: the Ray cluster"),
        ({"CPU": 2, "GPU": 0}, {"num_cpus_per_worker": 4}, "auto", "ray.num_cpus_per_worker 4: the Ray cluster"),
    ],
)
def test_a_cluster_that_cannot_run_a_worker_is_one_line(
    resources: dict, settings: dict, device: str, message: str
) -> None:
    from xai.executors.ray import ExecutorError, RayExecutor
    from xai.executors.settings import RaySettings

    executor = RayExecutor.__new__(RayExecutor)
    executor.settings, executor.source = RaySettings(**settings), "test"
    executor.cpus, executor.gpus = resources["CPU"], resources["GPU"]
    with pytest.raises(ExecutorError) as error:
        executor._sizes(device)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
