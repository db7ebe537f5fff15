"""The runner: ``config -> plan -> stages -> artifacts -> pages``.

:func:`generate` is the whole run: resolve the config once into a :class:`~xai.plan.RunPlan`, check what can be
checked before any compute (:func:`preflight`), fetch every missing download in one go, load the inputs, print the
plan, run the planned stages of the registry (:data:`xai.stages.STAGES`, each after the stages it needs), load the
config's other stages from the cache, and render the report. Every expensive piece goes through the artifact cache,
so a rerun with nothing changed recomputes nothing and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from xai.cache import ArtifactCache, StorageError
from xai.config import Config, ConfigError
from xai.context import InputImage, RunContext, SkippedImage, stage
from xai.data import BadImageError, DataError, image_ids, list_images, load_image, sha256_of, task_image_paths
from xai.estimate import StageEstimate
from xai.plan import RunPlan, make_plan
from xai.stages import STAGES

VERSIONED_PACKAGES = (
    "torch",
    "torchvision",
    "grad-cam",
    "lime",
    "open_clip_torch",
    "numpy",
    "scikit-image",
    "mkdocs-material",
)


def generate(
    config: Config,
    *,
    only: list[str] | None = None,
    force: bool = False,
    quiet: bool = False,
    plan_only: bool = False,
    config_file: str = "",
) -> int:
    """One run of the tool; returns the exit code. ``only`` limits the stages computed now (``--only``); ``plan_only``
    prints the plan and what would be downloaded, offline, and stops; ``config_file`` is how the report names the
    config file read. User errors propagate as :class:`xai.errors.UserError` (the command line prints them in one
    line)."""
    from xai.batching import configure_threads

    started = time.perf_counter()
    configure_threads()
    # On a cluster the workers' device is the cluster's (xai.executors.ray); the driver takes what it has.
    device = resolve_device("auto" if config.executor == "ray" and config.device == "cuda" else config.device)
    plan = make_plan(config, only)
    preflight(plan, writable=not plan_only)
    cache = ArtifactCache(plan.cache_dir, force=force)
    context = RunContext(plan, cache, device, quiet=quiet)
    try:
        return _generate(context, plan_only=plan_only, config_file=config_file, started=started)
    finally:
        if context.executor is not None:
            context.executor.close()


def _generate(context: RunContext, *, plan_only: bool, config_file: str, started: float) -> int:
    from xai import downloads
    from xai.executors import make_executor
    from xai.report.render import render_report

    plan, cache = context.plan, context.cache
    context.executor = make_executor(context)  # Ray missing or a cluster nobody answers: one line, before any work
    # --plan decodes nothing that is not on disk yet: it reports what is missing instead of fetching it.
    missing = downloads.missing_files(plan) if plan_only else {}
    if plan.inputs.folder is not None and not plan_only:  # a folder without one valid image stops before downloads
        context.images, context.skipped = load_inputs(plan)
    if not plan_only:  # every missing download named in one message, before minutes of compute
        downloads.fetch_downloads(plan)
        cache.remove_stale_staging()  # left by a run killed while it saved an entry
    if plan.weights_mode == "random":
        print(
            "WARNING: seeded RANDOM weights: every number and figure is meaningless for real models.", file=sys.stderr
        )
    if not context.images and "inputs" not in missing:
        context.images, context.skipped = load_inputs(plan)
    for skipped in context.skipped:
        print(f"skipped {skipped.reason}", file=sys.stderr)
    print("\n".join(plan_lines(context, missing, plan_estimates(context, missing, store=not plan_only))))
    if plan_only:
        print("\n".join(downloads.download_plan(plan)))
        return 0
    run(context)
    load_cached(context)
    context.timings["total"] = time.perf_counter() - started
    record = {**run_record(context), "config_file": config_file}
    written = render_report(record, context.artifacts, plan.output_dir, plan)
    print(f"\nWrote {len(written)} files of site sources to {plan.output_dir}/")
    for path in write_site_scaffold(plan.output_dir):
        print(f"Wrote {path} (MkDocs scaffold: there was none)")
    print(f"Cache: {len(cache.stats.hits)} artifact(s) reused, {len(cache.stats.misses)} computed")
    print("View the report:    mkdocs serve      (then open http://127.0.0.1:8000)")
    print("Build static HTML:  mkdocs build --strict   -> site/")
    return 0


def write_site_scaffold(docs_dir: Path, folder: Path | None = None) -> list[Path]:
    """Make ``folder`` (default: the working folder) a MkDocs project for the report in ``docs_dir``, so that
    ``mkdocs serve`` works there: the shipped ``mkdocs.yml`` and its stylesheet, each written only where no file
    of that name exists (a user's own is never overwritten). Returns the files written."""
    from xai.cache import atomic_write_text
    from xai.resources import site_scaffold

    written = []
    for path, text in site_scaffold(docs_dir, folder or Path.cwd()).items():
        if path.exists():
            continue
        try:
            atomic_write_text(path, text)
        except StorageError as error:  # the report is written by now; the scaffold is a convenience
            print(f"note: no MkDocs scaffold written: {error}", file=sys.stderr)
            continue
        written.append(path)
    return written


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device 'cuda': torch {torch.__version__} sees no CUDA device "
            f"(built for CUDA {torch.version.cuda or 'none'}); use --device cpu or --device auto"
        )
    return torch.device(choice)


def printable(text: str) -> str:
    """``text`` (a file name or a message holding one) safe to print and write as UTF-8: bytes of a file name that
    are not UTF-8 (``caf\\xe9.png`` from a Latin-1 system) are shown as ``\\xe9`` instead of crashing the report."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


SYSTEM_FILES = re.compile(r"\.DS_Store|Thumbs\.db|desktop\.ini|\._.*")
"""Files a file manager leaves in a folder (macOS Finder, its AppleDouble ``._*`` twins, Windows Explorer):
skipped without opening, counted in one summary line."""


def load_inputs(plan: RunPlan) -> tuple[list[InputImage], list[SkippedImage]]:
    """Open every input file once: each is explained or listed with its reason, never losing the others.

    ``max_images`` counts valid images: every file is still opened, so a broken one is always reported; the
    valid ones beyond it, and file-manager leftovers (``.DS_Store``, ``._*``), are each summed up in one row.
    """
    root = plan.inputs.folder
    max_images = plan.inputs.max_images
    paths = task_image_paths() if root is None else list_images(root)
    system = [path for path in paths if root is not None and SYSTEM_FILES.fullmatch(path.name)]
    ignored = set(system)
    paths = [path for path in paths if path not in ignored]
    ids = image_ids(paths, root, fixed=root is None)
    loading = plan.inputs.loading.arguments()
    images, skipped, beyond = [], [], []
    for path, image_id in zip(paths, ids, strict=True):
        display = printable(path.name if root is None else path.relative_to(root).as_posix())
        try:
            pixels = load_image(path, **loading)
        except BadImageError as error:  # shown relative to the folder: no local absolute paths on the site
            skipped.append(SkippedImage(display, printable(str(error).replace(str(path), display, 1))))
            continue
        if max_images is not None and len(images) >= max_images:
            beyond.append(display)
            continue
        images.append(InputImage(image_id, path, sha256_of(path), pixels, display))
    if beyond:
        skipped.append(
            SkippedImage(
                f"{len(beyond)} valid image(s)",
                f"{len(beyond)} valid image(s) not explained "
                f"({beyond[0]}, ...): max_images is {max_images}; raise it to explain more",
            )
        )
    if system:
        skipped.append(
            SkippedImage(
                f"{len(system)} system file(s)",
                f"{len(system)} file-manager file(s) (.DS_Store, ._*, Thumbs.db) ignored",
            )
        )
    if not images:
        where = "the task images" if root is None else printable(str(root))
        reasons = f" (first: {skipped[0].reason})" if skipped else ""
        raise DataError(f"{where}: no valid image among {len(paths)} file(s){reasons}; add JPEG or PNG images")
    return images, skipped


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def plan_lines(
    context: RunContext,
    missing: dict[str, list[str]] | None = None,
    estimates: dict[str, StageEstimate] | None = None,
) -> list[str]:
    """Human-readable lines: what each stage will run, its forward passes, and how much is cached; with ``estimates``
    (:func:`plan_estimates`) each stage's estimated wall time on this machine, the total, and the suggestion of
    configs/quick.yaml when a CPU would take hours. A stage whose input files (``missing``, from
    :func:`xai.downloads.missing_files`) are not on disk is not described: that would read them."""
    from xai.estimate import stage_line, summary_lines

    plan = context.plan
    missing = missing or {}
    estimates = estimates or {}
    inputs = (
        f"{len(missing['inputs'])} input image(s) not downloaded yet"
        if "inputs" in missing
        else f"{len(context.images)} image(s), {len(context.skipped)} skipped"
    )
    config = plan.config
    lines = [f"config {config.name!r}, weights: {plan.weights_mode}, device: {context.device}, {inputs}"]
    for name in plan.run:
        waiting = len(missing.get(name, [])) + (len(missing.get("inputs", [])) if name != "dissect" else 0)
        lines.append(
            f"  {name}: "
            + (f"waits for {waiting} data file(s) listed under downloads" if waiting else stage(name).describe(context))
        )
        if name in estimates:
            lines.append(f"    {stage_line(estimates[name])}")
    if estimates:
        lines += summary_lines(list(estimates.values()), device_type=context.device.type, config_name=config.name)
    if context.executor is not None and context.executor.kind != "local":
        lines += context.executor.describe()
        counted = [stage(name).units(context) for name in plan.run if name not in missing]
        lines.append(f"  units to send: {'; '.join(counted)}")
    return lines


def plan_estimates(
    context: RunContext, missing: dict[str, list[str]] | None = None, *, store: bool = True
) -> dict[str, StageEstimate]:
    """Each planned stage's estimated seconds on this machine (:mod:`xai.estimate`): its forward passes from the plan
    times each network's measured seconds per image (:func:`xai.estimate_work.seconds_per_image`: stored, else timed
    now on one batch where the stage's ``batch_size`` is ``auto``). Stages whose inputs are not on disk are left
    out."""
    from xai.estimate import estimate
    from xai.estimate_work import explain_network, probe_networks, seconds_per_image, stage_work

    plan, missing = context.plan, missing or {}
    if "inputs" in missing or not context.images:
        return {}
    n_probe = _probe_count(context, missing)
    shape = context.images[0].pixels.shape
    works = stage_work(plan, n_images=len(context.images), image_shape=shape, n_probe=n_probe)
    measure = set()
    if plan.explain is not None and plan.explain.batch_size == "auto":
        measure.add(explain_network(plan.explain, shape).model_id)
    if plan.dissect is not None and plan.dissect.batch_size == "auto":
        measure |= {network.model_id for network in probe_networks(plan.dissect)}
    networks = [network for work in works for network in work.passes]
    per_image = seconds_per_image(networks, context, measure=measure, store=store, log=context.log)
    return {work.stage: estimate(work, per_image) for work in works if not missing.get(work.stage)}


def _probe_count(context: RunContext, missing: dict[str, list[str]]) -> int | None:
    """Probe images of the planned dissection (Task 1's, else the concepts stage's), or None without one. Broden's
    size is known without listing it; another probe is listed only when its files are on disk (nothing is fetched
    for an estimate)."""
    from xai.estimate_work import probe_count

    plan = context.plan
    planned = plan.dissect or (plan.concepts.dissect if plan.concepts is not None else None)
    if planned is None:
        return None
    if planned.probe == "broden":
        return probe_count(planned)
    if "dissect" in missing or "concepts" in missing:
        return None
    from xai.stages.dissect import probe_inputs

    return probe_count(planned, lambda: len(probe_inputs(planned, plan.seed, quiet=True).paths))


def run(context: RunContext) -> dict[str, Any]:
    """Run the planned stages in order (each after the stages it needs); return the artifacts by stage name."""
    from xai.memory import PeakMemory

    for name in context.plan.run:
        started = time.perf_counter()
        with PeakMemory(context.device) as peak:
            context.artifacts[name] = stage(name).run(context)
        context.timings[name] = time.perf_counter() - started
        context.memory[name] = peak.record()
        gpu = f", peak GPU memory {peak.gpu_mb:,.0f} MB" if peak.gpu_mb is not None else ""
        print(f"{name}: {context.timings[name]:.1f} s, peak RSS {peak.rss_mb:,.0f} MB{gpu}", flush=True)
    return context.artifacts


def load_cached(context: RunContext) -> None:
    """Artifacts of the config's stages not run now, when the cache holds them complete (and the stages they need
    are there); rendering then shows them too. Nothing is computed or downloaded."""
    for name in context.plan.load:
        if any(need not in context.artifacts for need in STAGES[name].needs):
            continue
        artifacts = stage(name).load_cached(context)
        if artifacts is not None:
            context.artifacts[name] = artifacts


def preflight(plan: RunPlan, *, writable: bool = True) -> None:
    """Mistakes found before any compute, each a one-line ConfigError/StorageError naming the thing and the fix:
    a concept set or probe folder that does not exist, an output or cache folder that cannot be written. (A layer a
    model lacks was found when the plan was made.)"""
    probed = plan.dissect if "dissect" in plan.run else None
    if probed is None and plan.concepts is not None and "concepts" in plan.run:
        probed = plan.concepts.dissect  # the explained model, dissected with the dissect section's settings
    if probed is not None:
        from xai.dissect.probes import CONCEPT_FILES, PROBE_SETS, folder_images

        settings = probed
        if settings.concepts not in CONCEPT_FILES and not Path(settings.concepts).is_file():
            raise ConfigError(
                f"dissect.concepts: {settings.concepts!r} is neither a concept set "
                f"({', '.join(CONCEPT_FILES)}) nor an existing file; pick a set or give the path of a "
                "text file with one concept per line"
            )
        if settings.probe not in PROBE_SETS:
            if not Path(settings.probe).is_dir():
                raise ConfigError(
                    f"dissect.probe: folder {settings.probe!r} does not exist; use "
                    f"{', '.join(repr(name) for name in PROBE_SETS)} or an existing folder of images"
                )
            try:
                folder_images(settings.probe)
            except FileNotFoundError as error:
                raise ConfigError(f"dissect.probe: {error}; add JPEG or PNG images to it") from None
    if writable:
        for what, folder in (("output_dir", plan.output_dir), ("cache_dir", plan.cache_dir)):
            check_writable(what, folder)


def check_writable(what: str, folder: Path) -> None:
    """Create ``folder`` if needed and write a test file in it, so a read-only folder fails now, not at the end."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise StorageError(
            f"{what} {folder}: not writable ({error.strerror or error}); fix its permissions or choose another folder"
        ) from None


def run_record(context: RunContext) -> dict[str, Any]:
    """What the home page says about this run: config, versions, device, weights, timings, skipped inputs."""
    import yaml

    plan = context.plan
    config = plan.config
    return {
        "config_name": config.name,
        "config": config.model_dump(mode="json"),
        "config_yaml": yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False),
        "weights": plan.weights_mode,
        "random_weights": plan.weights_mode == "random",
        "seed": plan.seed,
        "device": str(context.device),
        "versions": versions(),
        "weights_ids": plan.weights_keys(),
        "timings": dict(context.timings),
        "memory": dict(context.memory),
        "weights_notes": {
            **context.load_notes,
            **{name: model.load_note for name, model in context.loaded_classifiers().items() if model.load_note},
        },
        "batch_sizes": {label: choice.to_record() for label, choice in context.batch_sizes.items()},
        "executor": context.executor.kind if context.executor is not None else "local",
        "torch_threads": torch.get_num_threads(),
        "images": [
            {"name": image.name, "file": image.display or image.path.name, "sha256": image.sha256}
            for image in context.images
        ],
        "skipped": [{"path": s.path, "reason": s.reason} for s in context.skipped],
        "cache": {"hits": len(context.cache.stats.hits), "misses": len(context.cache.stats.misses)},
        "stages": list(context.artifacts),
    }
