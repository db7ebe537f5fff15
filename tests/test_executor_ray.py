"""``executor: ray`` on a local two-CPU Ray cluster (issue 20): a run writes the local run's tables and figures with a
worker killed mid-unit, units run in worker processes, a unit's own error reaches the driver once (never retried),
a stopped driver resumes from what it wrote, workers with other code stop the run in one line, and the plan shows
the cluster and the units it will send.

Ray is in the test extras; without it these tests skip, unless ``XAI_REQUIRE_RAY=1`` (CI) makes that a failure."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.helpers import units as helpers
from xai.cache import ArtifactCache
from xai.config import ConfigError, validate
from xai.context import RunContext
from xai.dissect.artifacts import ArrayArtifact
from xai.executor import Unit
from xai.plan import make_plan
from xai.units import Job, fill_missing, run_units

pytestmark = pytest.mark.ray

if os.environ.get("XAI_REQUIRE_RAY") != "1":
    pytest.importorskip("ray")

LOCAL_CLUSTER = {"address": "local", "local_cpus": 2}


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _without_seconds(value: Any) -> Any:
    """``value`` without its measured wall times (``seconds`` keys) and the checksum that covers them."""
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k not in ("seconds", "integrity")}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def _kill_first_explain_unit(made: list[Any], killed: dict[str, Any], delay_s: float = 1.0) -> None:
    """Wait for the run's executor to send an explain unit, then kill the worker process running it."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and not killed:
        try:
            running = list(made[0].running.values()) if made else []
        except RuntimeError:  # the driver changed the dict while it was read: look again
            continue
        explaining = [(unit, pid) for unit, pid in running if unit.function.endswith(":explain_unit")]
        if explaining:
            unit, pid = explaining[0]
            time.sleep(delay_s)  # into the unit: the worker is building ResNet50 or running LIME
            os.kill(pid, signal.SIGKILL)
            killed.update(label=unit.label, pid=pid)
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_a_ray_run_writes_the_local_runs_tables_and_figures_with_a_worker_killed_mid_unit(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every unit kind (explain, compare, sanity, powered sample, probe shards) on two workers, one of them killed by
    its pid while it explains an image: the unit is run again and every artifact, table and figure is the local
    run's. Only
    measured wall times differ (the cache's ``seconds`` and the CAM figures, whose titles show them)."""
    import xai.executors as executors
    from xai.cli import main

    local = _write(tmp_path, "local", helpers.every_unit_config(tmp_path, "local"))
    assert main(["--config", local, "--quiet"]) == 0
    ray_data = helpers.every_unit_config(tmp_path, "ray", executor="ray", ray=LOCAL_CLUSTER)
    made: list[Any] = []
    real = executors.make_executor
    monkeypatch.setattr(executors, "make_executor", lambda context: made.append(real(context)) or made[-1])
    killed: dict[str, Any] = {}
    watcher = threading.Thread(target=_kill_first_explain_unit, args=(made, killed), daemon=True)
    watcher.start()
    assert main(["--config", _write(tmp_path, "ray", ray_data), "--quiet"]) == 0
    watcher.join(timeout=5)
    assert killed, "no explain unit was seen running"
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    runs = [
        worker for function, label, worker, _ in made[0].finished if label == killed["label"] and "explain" in function
    ]
    assert len(runs) == 1 and not runs[0].endswith(f":{killed['pid']}")  # run again, by the restarted worker
    kinds = {function.rpartition(":")[2] for function, *_ in made[0].finished}
    assert kinds == {"explain_unit", "compare_image_unit", "sanity_unit", "sample_unit", "probe_shard_unit"}
    # three shards per dissection: Task 1's, and the concepts stage's of the explained model at its target layer
    assert sum(function.endswith("probe_shard_unit") for function, *_ in made[0].finished) == 6

    first, second = tmp_path / "local", tmp_path / "ray"
    entries = sorted(path.relative_to(first / "cache").parent for path in (first / "cache").rglob("meta.json"))
    assert entries == sorted(p.relative_to(second / "cache").parent for p in (second / "cache").rglob("meta.json"))
    assert len(entries) >= 20
    for entry in entries:
        one, other = first / "cache" / entry, second / "cache" / entry
        assert (one / "arrays.npz").read_bytes() == (other / "arrays.npz").read_bytes(), entry
        meta = [_without_seconds(json.loads((path / "meta.json").read_text())) for path in (one, other)]
        assert meta[0] == meta[1], entry
    outputs = {
        path.relative_to(first / "docs")
        for path in (first / "docs").rglob("*")
        if path.suffix in (".csv", ".png") and "stylesheets" not in path.parts
    }
    assert outputs == {
        p.relative_to(second / "docs") for p in (second / "docs").rglob("*") if p.suffix in (".csv", ".png")
    }
    timed = {path for path in outputs if path.name.startswith("cam_")}  # "Grad-CAM for <class> (0.71 s)"
    assert len(outputs - timed) >= 30 and any(path.suffix == ".csv" for path in outputs)
    for path in sorted(outputs - timed):
        assert (first / "docs" / path).read_bytes() == (second / "docs" / path).read_bytes(), path


def _context(tmp_path: Path) -> RunContext:
    config = validate({"weights": "random", "stages": ["explain"], "cache_dir": str(tmp_path / "cache")})
    return RunContext(make_plan(config), ArtifactCache(config.cache_dir), torch.device("cpu"), quiet=True)


def _executor(context: RunContext) -> Any:
    from xai.executors.ray import RayExecutor
    from xai.executors.settings import RaySettings

    return RayExecutor(context.plan, RaySettings(**LOCAL_CLUSTER), cache_root=context.cache.root)


def test_units_run_in_workers_a_unit_error_arrives_once_and_a_stopped_driver_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = _context(tmp_path)
    executor = context.executor = _executor(context)
    try:
        assert executor.workers == 2 and executor.device.type == "cpu"
        results = run_units(context, [Unit(helpers.WHO, str(n), "explain", n) for n in range(4)], "who")
        assert [result.label for result in results] == ["0", "1", "2", "3"]  # in the order sent
        pids = {result.value[0] for result in results}
        assert os.getpid() not in pids and pids <= set(executor.pids) and {r.value[1] for r in results} == {"cpu"}

        jobs = [Job(helpers.SQUARE, str(n), n, {"square": (ArrayArtifact, helpers.square_parts(n))}) for n in range(4)]
        real_map = executor.map

        def stopped_after_one(units: Any) -> Any:
            yield next(iter(real_map(units)))
            raise KeyboardInterrupt  # the driver is stopped once one result has arrived

        monkeypatch.setattr(executor, "map", stopped_after_one)
        with pytest.raises(KeyboardInterrupt):
            fill_missing(context, "explain", jobs, "squares")
        assert len(list((tmp_path / "cache").rglob("meta.json"))) == 1  # written when it arrived
        monkeypatch.setattr(executor, "map", real_map)
        resumed = fill_missing(context, "explain", jobs, "squares")
        assert len(resumed.values) == 3 and all(
            resumed.values[str(n)] == n * n for n in range(4) if str(n) in resumed.values
        )
        assert len(list((tmp_path / "cache").rglob("meta.json"))) == 4

        counter = tmp_path / "attempts.txt"
        with pytest.raises(ValueError, match="this input cannot be processed"):
            run_units(context, [Unit(helpers.FAILS, "bad", "explain", str(counter))], "bad")
        assert len(counter.read_text().splitlines()) == 1  # reported once, never sent again
        with pytest.raises(ConfigError) as error:
            run_units(context, [Unit(helpers.USER_ERROR, "mistake", "explain", None)], "mistake")
        assert type(error.value) is ConfigError and str(error.value).startswith("explain.model: a mistake")
    finally:
        executor.close()


def test_workers_with_other_code_than_the_driver_stop_the_run_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xai.worker
    from xai.executors.ray import ExecutorError

    context = _context(tmp_path)
    executor = context.executor = _executor(context)
    monkeypatch.setattr(xai.worker, "code_identity", lambda: "driver-code")  # the driver's side only
    try:
        with pytest.raises(ExecutorError) as error:
            run_units(context, [Unit(helpers.WHO, "0", "explain", 0)], "who")
        message = str(error.value)
        assert "runs other code or library versions than the driver" in message and "driver driver-code" in message
        assert "\n" not in message
    finally:
        executor.close()


def test_the_plan_shows_the_cluster_and_the_units_it_will_send(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xai.cli import main

    data = {
        "weights": "random",
        "stages": ["explain", "concepts"],
        "max_images": 3,
        "dissect": {"probe": "imagenet-samples", "probe_limit": 20, "batch_size": 8},
        "output_dir": str(tmp_path / "docs"),
        "cache_dir": str(tmp_path / "cache"),
        "explain": {"methods": ["lime", "gradcam"], "batch_size": 8},
        "ray": LOCAL_CLUSTER,
    }
    assert main(["--config", _write(tmp_path, "plan", data), "--executor", "ray", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "executor: ray at " in out and "(a local cluster started for this run): 1 node(s), 2 CPU(s), 0 GPU(s)" in out
    assert "2 worker(s) x 1 CPU on cpu" in out
    assert "units to send: explain 3 (one per image with a piece missing); concepts 3 probe shard(s) of up to 8" in out
    assert "each image's concepts on the driver" in out
    assert "RAY_ADDRESS" not in os.environ  # the run leaves no address behind for later runs
