"""The report stage: cold (serial, as rendering always drew), cold (worker processes), warm (nothing changed),
and a whole rerun of ``generate.py`` with nothing changed against the cold run. Run through
``bench/bench_pipeline.py --case render``.

On the config's artifacts (smoke by default; computed once into the scratch folder, then reused), in one process:

- ``serial``: every figure drawn in this process, no figure cache (today's report stage);
- ``parallel``: every figure drawn by worker processes into an empty docs folder (a cold run's report stage);
- ``warm``: the same render again: every figure found in the manifest, nothing drawn;
- the figure files of ``serial`` and ``parallel`` compared byte for byte;
- ``rerun``: ``generate.py`` as a subprocess with the warm cache and docs (start-up, cache loading, rendering),
  against ``cold``: the same command's first run (recorded in the scratch folder when it computed everything).

Goals (issue #22): rerun / cold under 2.5%; parallel / serial at most 0.5 (0.33 with 8+ cores).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLD_RECORD = "cold-run.json"


def _config_file(args: argparse.Namespace, scratch: Path) -> Path:
    """The config with its cache and docs in the scratch folder, written there for the subprocess runs."""
    import yaml

    data = yaml.safe_load(args.config.read_text())
    data.update(cache_dir=str(scratch / "cache"), output_dir=str(scratch / "docs-run"), device=args.device)
    if args.max_images:
        data["max_images"] = args.max_images
    if args.probe_limit:
        data.setdefault("dissect", {})["probe_limit"] = args.probe_limit
    path = scratch / f"bench-{args.config.stem}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _generate(config: Path) -> float:
    """Wall seconds of one ``generate.py --config`` process (it fails loudly)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "--config", str(config), "--quiet"],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return time.perf_counter() - started


def _artifacts(config_path: Path) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The run record, artifacts and plan of the config, from its cache (stages missing there computed here)."""
    from xai import pipeline
    from xai.cache import ArtifactCache
    from xai.config import load
    from xai.context import RunContext
    from xai.plan import make_plan

    config = load(config_path)
    context = RunContext(
        make_plan(config), ArtifactCache(config.cache_dir), pipeline.resolve_device(config.device), quiet=True
    )
    context.images, context.skipped = pipeline.load_inputs(context.plan)
    pipeline.run(context)  # every stage from the cache; what is missing (the code changed) is computed once more
    return pipeline.run_record(context), context.artifacts, context.plan


def _timed_render(
    run: dict[str, Any], artifacts: dict[str, Any], plan: Any, docs: Path, **options: Any
) -> tuple[float, Any]:
    from xai.report.render import render

    started = time.perf_counter()
    rendered = render(run, artifacts, docs, plan, **options)
    return time.perf_counter() - started, rendered.figures


def _figure_files(docs: Path) -> list[Path]:
    return sorted(p.relative_to(docs) for p in docs.rglob("*") if p.suffix in {".png", ".jpg"})


def bench_render(args: argparse.Namespace, scratch: Path) -> None:
    os.environ.setdefault("XAI_DATA_DIR", str(scratch / "downloads"))
    os.environ.setdefault("TORCH_HOME", str(scratch / "torch"))
    config_path = _config_file(args, scratch)
    record = scratch / COLD_RECORD
    if args.cold_s:  # the artifacts are cached already: compare the rerun with a cold run timed elsewhere
        record.write_text(json.dumps({"cold_s": args.cold_s, "when": "given with --cold-s"}))
    if not record.is_file():
        print(f"cold run: generate.py --config {config_path.name} (computes every stage once) ...", flush=True)
        shutil.rmtree(scratch / "docs-run", ignore_errors=True)
        record.write_text(json.dumps({"cold_s": _generate(config_path), "when": time.strftime("%Y-%m-%d %H:%M")}))
    cold = json.loads(record.read_text())
    run, artifacts, plan = _artifacts(config_path)
    from xai.report.figures.workers import available_cpus

    print(f"{args.config.name}: stages {', '.join(artifacts)}; {available_cpus()} CPUs for figure workers")

    serial_docs, parallel_docs = scratch / "docs-serial", scratch / "docs-parallel"
    for folder in (serial_docs, parallel_docs):
        shutil.rmtree(folder, ignore_errors=True)
    serial_s, serial = _timed_render(run, artifacts, plan, serial_docs, workers=1, figure_cache=False)
    workers = args.workers or available_cpus()  # the pool even where the default draws serially (2 CPUs)
    parallel_s, parallel = _timed_render(run, artifacts, plan, parallel_docs, workers=workers)
    warm_s, warm = _timed_render(run, artifacts, plan, parallel_docs, workers=workers)

    files = _figure_files(serial_docs)
    same, different, missing = filecmp.cmpfiles(serial_docs, parallel_docs, [str(p) for p in files], shallow=False)
    if not (scratch / "docs-run" / ".figures.json").is_file():  # the cold run was timed elsewhere (--cold-s)
        _generate(config_path)
    rerun_s = _generate(config_path)  # docs-run holds the cold run's figures and manifest: nothing to draw

    print(f"\n  {'report stage':<34}{'wall s':>8}  figures")
    print(f"  {'serial, no cache (today)':<34}{serial_s:8.2f}  {serial.drawn} drawn in this process")
    print(f"  {'parallel, cold':<34}{parallel_s:8.2f}  {parallel.drawn} drawn by {parallel.workers} workers")
    print(f"  {'warm (nothing changed)':<34}{warm_s:8.2f}  {warm.cached} cached, {warm.drawn} drawn")
    print(f"\n  parallel / serial: {parallel_s / serial_s:.2f} (goal <= 0.5; <= 0.33 with 8+ cores)")
    print(f"  warm / serial: {warm_s / serial_s:.3f}")
    print(
        f"  byte-identical figure files, serial vs parallel: {len(same)} of {len(files)}"
        + (f"; DIFFERENT: {different[:5]}; missing: {missing[:5]}" if different or missing else "")
    )
    print(
        f"  whole rerun, nothing changed: {rerun_s:.1f} s of the cold run's {cold['cold_s']:.1f} s "
        f"({cold['when']}) = {100 * rerun_s / cold['cold_s']:.1f}% (goal < 2.5%)"
    )
    serial_cpu = sum(serial.cpu_by_process.values())
    worker_cpu = sorted(parallel.cpu_by_process.values(), reverse=True)
    print(
        f"  drawing CPU time: serial {serial_cpu:.1f} s; per worker {', '.join(f'{c:.1f}' for c in worker_cpu)} s "
        f"(sum {sum(worker_cpu):.1f}); wall summed over figures: serial {serial.draw_seconds:.1f} s, workers "
        f"{parallel.draw_seconds:.1f} s"
    )
    print(
        f"  on a machine whose cores are free the pool's drawing takes about its busiest worker's CPU time: "
        f"{worker_cpu[0] if worker_cpu else 0:.1f} s of serial {serial_cpu:.1f} s; load average now "
        f"{os.getloadavg()[0]:.1f} on {available_cpus()} CPUs; uncacheable figures: {warm.uncacheable}"
    )
