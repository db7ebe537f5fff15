"""Ray's cost on one machine, and a cost model for N nodes (issue 20).

The same units, the explain and compare stages of ``--images`` task images (seeded random ResNet-50, small
budgets, explicit batch sizes), run on a fresh cache each way: in this process (the local executor, one torch
thread), then on a local Ray cluster with 1, 2, ... workers of one CPU each (one torch thread each). Printed:

* Ray's wall time over local's for the same units with one worker: the engine's overhead (goal <= 1.1x); the
  cluster's and the workers' start-up are timed apart (once per run, not per unit);
* units per second with 1, 2 and all workers;
* the cost model's terms, measured: seconds per unit (per kind, on a worker), bytes per unit to a worker and
  back (pickled, as Ray's object store carries them), the driver's seconds to write a unit's pieces;
* the model for N nodes of G workers: ``T = start + ceil(U / (N*G)) * t_unit``, unless the driver is the limit
  (``U * t_write``) or the network is (``U * bytes / bandwidth``); projected for the assignment's Tasks 2-4 (10
  images) and a 1,000-image Task 4 from their forward passes (the plan's counts) times ``--forward-s`` (seconds per
  image of ResNet-50 at the batch size used; default: measured here) times the measured unit/floor ratio.

Usage: ``python bench/bench_executor.py [--images 4] [--workers 1,2] [--rounds 2] [--forward-s 0.001]``
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench._paths import ROOT, mirror_dir

BANDWIDTH = 1e9 / 8 * 10
"""Bytes per second of the network between nodes in the model: 10 Gbit/s Ethernet."""


def bench_config(scratch: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "bench-executor",
        "weights": "random",
        "stages": ["explain", "compare"],
        "max_images": args.images,
        "cache_dir": str(scratch / name / "cache"),
        "output_dir": str(scratch / name / "docs"),
        "explain": {
            "methods": ["lime", "gradcam", "gradcampp", "eigencam"],
            "batch_size": 16,
            "lime": {"num_samples": args.lime_samples, "stability_seeds": 2},
        },
        "compare": {"faithfulness_steps": args.steps, "random_draws": 1, "null_draws": 200, "sanity_images": 1},
    }


class Recording:
    """Wraps an executor: each unit's and result's pickled size, each result, the order they came in."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.kind = executor.kind
        self.sent: list[int] = []
        self.received: list[int] = []
        self.results: list[Any] = []

    @property
    def device(self) -> Any:
        return self.executor.device

    @property
    def parallelism(self) -> int:
        return self.executor.parallelism

    def map(self, units: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for unit in units:
            contents = sum(Path(path).stat().st_size for path in unit.files)
            self.sent.append(len(pickle.dumps(unit, protocol=5)) + contents)
        for index, result in self.executor.map(units):
            self.received.append(len(pickle.dumps(result, protocol=5)))
            self.results.append((units[index].function.rpartition(":")[2], result))
            yield index, result

    def describe(self) -> list[str]:
        return self.executor.describe()

    def close(self) -> None:
        self.executor.close()


def run_once(scratch: Path, name: str, args: argparse.Namespace, workers: int | None) -> dict[str, Any]:
    """The stages' units on a fresh cache: local (``workers`` None) or on a local Ray cluster."""
    import torch

    from xai import pipeline
    from xai.cache import ArtifactCache
    from xai.config import validate
    from xai.context import RunContext
    from xai.plan import make_plan
    from xai.units import LocalExecutor

    config = validate(bench_config(scratch, name, args))
    plan = make_plan(config)
    context = RunContext(plan, ArtifactCache(config.cache_dir), torch.device("cpu"), quiet=True)
    context.images, context.skipped = pipeline.load_inputs(plan)
    start_s = 0.0
    if workers is None:
        executor: Any = LocalExecutor(context)
    else:
        from xai.executors.ray import RayExecutor
        from xai.executors.settings import RaySettings

        begin = time.perf_counter()
        executor = RayExecutor(
            plan, RaySettings(address="local", local_cpus=os.cpu_count(), workers=workers), cache_root=Path(scratch)
        )
        executor._start()  # the workers start here, so the units' wall time is the units'
        start_s = time.perf_counter() - begin
    recording = Recording(executor)
    context.executor = recording
    try:
        begin = time.perf_counter()
        pipeline.run(context)
        wall_s = time.perf_counter() - begin
    finally:
        recording.close()
    return {"name": name, "wall_s": wall_s, "start_s": start_s, "recording": recording, "context": context}


def write_seconds(results: list[tuple[str, Any]], scratch: Path) -> float:
    """The driver's seconds per unit to write its pieces into a cache (the driver writes every unit's)."""
    from xai.cache import ArtifactCache

    cache = ArtifactCache(scratch / "write-rate")
    begin = time.perf_counter()
    count = 0
    for _, result in results:
        for key, (arrays, meta) in result.pieces.items():
            cache.save("bench", {"piece": key, "copy": count}, arrays, meta)
        count += 1
    return (time.perf_counter() - begin) / max(count, 1)


def forward_seconds(batch_size: int = 16) -> float:
    """Seconds per image of a seeded random ResNet-50 at ``batch_size`` in this process (median of 5)."""
    import torch
    from torchvision.models import resnet50

    from xai.explain.inference import fast_layout

    model = resnet50().eval()
    batch = torch.randn(batch_size, 3, 224, 224)
    samples = []
    with torch.inference_mode():
        model(fast_layout(batch))
        for _ in range(5):
            begin = time.perf_counter()
            model(fast_layout(batch))
            samples.append((time.perf_counter() - begin) / batch_size)
    return statistics.median(samples)


def plan_passes(plan: Any) -> tuple[int, int]:
    from xai import compare

    settings = plan.compare.settings
    maps = len(plan.explain.methods) + settings.random_draws + 1  # LIME and the CAMs, random draws, centre prior
    return plan.explain.forward_passes_per_image, compare.forward_passes(maps, settings.faithfulness_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4, help="task images (units per stage)")
    parser.add_argument("--lime-samples", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16, help="deletion/insertion steps")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to run, e.g. 1,2 (one CPU each)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of local and Ray runs, interleaved")
    parser.add_argument("--forward-s", type=float, help="seconds per image of the model for the projection")
    parser.add_argument("--gpus", default="1,2,4,8,16", help="worker counts (N nodes x G GPUs) to project")
    args = parser.parse_args()
    os.environ["XAI_MIRROR"] = str(mirror_dir().resolve())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    scratch = Path(tempfile.mkdtemp(prefix="xai-bench-executor-"))
    os.environ.setdefault("XAI_DATA_DIR", str(scratch / "downloads"))
    os.environ.setdefault("TORCH_HOME", str(scratch / "torch"))
    try:
        bench(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def bench(args: argparse.Namespace, scratch: Path) -> None:
    import torch

    from xai.batching import cpu_model

    torch.set_num_threads(1)  # as each one-CPU worker runs
    counts = [int(n) for n in args.workers.split(",")]
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; {args.images} images; units on one torch thread each", flush=True)
    runs: list[dict[str, Any]] = []
    for round_ in range(args.rounds):  # local and Ray interleaved: the machine's load drifts between runs
        runs.append(run_once(scratch, f"local-r{round_}", args, None) | {"round": round_, "workers": 0})
        for workers in counts:
            run = run_once(scratch, f"ray-{workers}-r{round_}", args, workers)
            runs.append(run | {"round": round_, "workers": workers})
    units = len(runs[0]["recording"].results)
    print(f"\n{units} units (explain, compare per image, the sanity check); wall seconds for all of them:")
    for run in runs:
        start = f" (+ {run['start_s']:.1f} s cluster and worker start-up)" if run["start_s"] else ""
        print(f"  {run['name']:<12} {run['wall_s']:7.1f} s  {units / run['wall_s']:.3f} units/s{start}", flush=True)
    local = {run["round"]: run["wall_s"] for run in runs if run["workers"] == 0}
    ratios = [run["wall_s"] / local[run["round"]] for run in runs if run["workers"] == 1]
    print(
        f"Ray with 1 worker over local, the same units, each round: {', '.join(f'{r:.2f}x' for r in ratios)}; "
        f"median {statistics.median(ratios):.2f}x (goal <= 1.1x)"
    )
    for workers in [0, *counts]:
        rates = [units / run["wall_s"] for run in runs if run["workers"] == workers]
        print(f"  {'local' if workers == 0 else f'{workers} worker(s)':<12} {statistics.median(rates):.3f} units/s")
    one = next(run for run in runs if run["workers"] == 1)

    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, result in one["recording"].results:
        by_kind[kind].append(result.seconds)
    sent, received = one["recording"].sent, one["recording"].received
    write_s = write_seconds(runs[0]["recording"].results, scratch)
    print("\ncost model terms (measured):")
    for kind, seconds in by_kind.items():
        print(f"  t_unit {kind:<20} {statistics.mean(seconds):7.2f} s on a worker (mean of {len(seconds)})")
    print(f"  to a worker   {statistics.mean(sent) / 1e3:8.1f} kB per unit (max {max(sent) / 1e3:.1f} kB)")
    print(f"  to the driver {statistics.mean(received) / 1e3:8.1f} kB per unit (max {max(received) / 1e3:.1f} kB)")
    print(f"  t_write       {write_s * 1e3:8.1f} ms per unit on the driver ({1 / write_s:,.0f} units/s at most)")
    print(f"  start         {one['start_s']:8.1f} s (local cluster + 1 worker)")

    project(args, by_kind, one, write_s, statistics.mean(sent) + statistics.mean(received))


def project(
    args: argparse.Namespace, by_kind: dict[str, list[float]], one: dict[str, Any], write_s: float, unit_bytes: float
) -> None:
    """The model's times for the assignment's Tasks 2-4 and a 1,000-image Task 4 on N workers: at this machine's
    forward time, and at ``--forward-s`` when given."""
    measured_forward = forward_seconds()
    here_explain, here_compare = plan_passes(one["context"].plan)
    terms = Terms(
        explain_ratio=statistics.mean(by_kind["explain_unit"]) / (here_explain * measured_forward),
        compare_ratio=statistics.mean(by_kind["compare_image_unit"]) / (here_compare * measured_forward),
        start_s=one["start_s"],
        write_s=write_s,
        unit_bytes=unit_bytes,
    )
    print(
        f"\nunit time over its forward floor here (ResNet-50 {measured_forward * 1e3:.1f} ms/image at batch 16): "
        f"explain {terms.explain_ratio:.2f}x, compare {terms.compare_ratio:.2f}x"
    )
    workers = [int(n) for n in args.gpus.split(",")]
    print_projection(terms, measured_forward, workers, "measured here")
    if args.forward_s:
        print_projection(terms, args.forward_s, workers, "given")


class Terms(NamedTuple):
    """The cost model's measured terms."""

    explain_ratio: float
    """An explain unit's seconds over its forward floor (forward passes x seconds per forward image)."""
    compare_ratio: float
    start_s: float
    write_s: float
    unit_bytes: float
    """Bytes per unit, to the worker and back."""


def print_projection(terms: Terms, forward: float, workers: Sequence[int], source: str) -> None:
    """The projection's table: each stage's units over the workers (list scheduling: the longest unit or the total
    share; the compare stage starts when explain is done), bounded below by the driver's writes and the network."""
    assignment = make_assignment_plan()
    a_explain, a_compare = plan_passes(assignment)
    sanity = sanity_passes(assignment)
    t_explain = terms.explain_ratio * a_explain * forward
    t_compare = terms.compare_ratio * a_compare * forward
    t_sanity = terms.explain_ratio * sanity * forward  # LIME and CAMs again, on each randomised model state
    print(
        f"projection at {forward * 1e3:.2f} ms per forward image ({source}), the assignment's budgets: an explain "
        f"unit {a_explain:,} forward passes ({t_explain:.0f} s), a compare unit {a_compare:,} ({t_compare:.0f} s), "
        f"the sanity unit {sanity:,} ({t_sanity:.0f} s)"
    )
    print(f"  {'workers':>8} {'Tasks 2-4, 10 images':>22} {'Task 4, 1,000 images':>22}")
    for count in workers:
        cells = []
        for images in (10, 1000):
            explain = max(t_explain, images * t_explain / count)
            compare_ = max(t_sanity, (images * t_compare + t_sanity) / count)
            driver = (2 * images + 1) * terms.write_s
            network = (2 * images + 1) * terms.unit_bytes / BANDWIDTH
            cells.append(terms.start_s + max(explain + compare_, driver, network))
        print(f"  {count:>8} {cells[0] / 60:>18.1f} min {cells[1] / 3600:>20.2f} h")


def make_assignment_plan() -> Any:
    from xai.config import load
    from xai.plan import make_plan

    return make_plan(load(ROOT / "configs" / "assignment.yaml"))


def sanity_passes(plan: Any) -> int:
    """Forward passes of the sanity unit: each sanity method on each chosen image in every model state (the trained
    model and each step of the cascade), LIME at its cheaper budget."""
    from xai.explain.registry import METHODS

    settings = plan.compare.settings
    states = len(plan.compare.cascade) + 1
    per_state = sum(
        METHODS[method].forward_passes(lime_samples=settings.sanity_lime_samples, target_channels=plan.explain.channels)
        for method in plan.compare.sanity_methods
    )
    return settings.sanity_images * states * per_state


if __name__ == "__main__":
    main()
