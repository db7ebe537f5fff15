"""Command line: ``python generate.py [--config PATH] [--images DIR] [--weights pretrained|random] ...``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xai import config as config_module
from xai.cache import ArtifactCache, StorageError, atomic_write_text
from xai.checkpoints import CheckpointError
from xai.classifiers import ModelChoiceError
from xai.config import STAGES, ConfigError
from xai.data import DataError
from xai.models import WeightsUnavailableError
from xai.resources import resolve_config, site_scaffold

DEFAULT_CONFIG = Path("configs/assignment.yaml")
"""Read from the working folder, else the copy shipped with the package (:func:`xai.resources.resolve_config`)."""


def parse_stages(text: str | None) -> list[str] | None:
    if text is None:
        return None
    stages = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"--only: unknown stage {unknown[0]!r}; allowed: {', '.join(STAGES)}")
    return stages


def build_parser() -> argparse.ArgumentParser:
    from xai.explain.registry import METHODS

    parser = argparse.ArgumentParser(
        prog="generate.py",
        description="Explain a torchvision classifier (or a fine-tuned checkpoint) and write the report's site "
        "sources.",
        epilog=f"Explanation methods (config explain.methods): {', '.join(METHODS)}.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    parser.add_argument("--images", help="explain the images in this folder instead of the ten task images")
    parser.add_argument(
        "--weights",
        choices=("pretrained", "random"),
        help="pretrained (real, downloaded and checksummed) or seeded random weights",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated stages to run: {','.join(STAGES)} (the report is always "
        "rendered, from cached artifacts of the other stages when present)",
    )
    parser.add_argument("--force", action="store_true", help="recompute and overwrite cached artifacts")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="compute device (default: auto)")
    parser.add_argument("--output", type=Path, help="where the site sources go (default: config output_dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the plan and what would be downloaded, and exit without computing or downloading (works offline)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        source = resolve_config(args.config)
        if source.shipped:
            print(
                f"config: no {args.config} here; reading the copy shipped with xai-report: {source.path}",
                file=sys.stderr,
            )
        config = config_module.load(
            source.path, images=args.images, weights=args.weights, device=args.device, output_dir=args.output
        )
        only = parse_stages(args.only)
        return _generate(
            config, only=only, force=args.force, quiet=args.quiet, plan_only=args.plan, config_file=source.shown
        )
    except (ConfigError, DataError, WeightsUnavailableError, StorageError, ModelChoiceError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the environment (disk, permissions), never a bug worth a traceback to the user
        where = f"{error.filename}: " if error.filename else ""
        print(
            f"error: {where}{error.strerror or error}; check that the path exists and that you can access it",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished artifacts are cached; run the same command to resume", file=sys.stderr)
        return 130


def _generate(
    config, *, only: list[str] | None, force: bool, quiet: bool, plan_only: bool, config_file: str = ""
) -> int:
    from xai import downloads, pipeline
    from xai.batching import configure_threads
    from xai.report.render import render_report

    started = time.perf_counter()
    configure_threads()
    stages = [s for s in config.stages if only is None or s in only]
    device = pipeline.resolve_device(config.device)
    pipeline.preflight(config, stages, writable=not plan_only)
    cache = ArtifactCache(config.cache_dir, force=force)
    context = pipeline.RunContext(config, cache, device, quiet=quiet)
    # --plan decodes nothing that is not on disk yet: it reports what is missing instead of fetching it.
    missing = downloads.missing_files(config, stages) if plan_only else {}
    if config.images != "task" and not plan_only:  # a folder without one valid image stops before any download
        context.images, context.skipped = pipeline.load_inputs(config)
    if not plan_only:  # every missing download named in one message, before minutes of compute
        downloads.fetch_downloads(config, stages)
        cache.remove_stale_staging()  # left by a run killed while it saved an entry
    if config.weights == "random":
        print(
            "WARNING: seeded RANDOM weights: every number and figure is meaningless for real models.", file=sys.stderr
        )
    if not context.images and "inputs" not in missing:
        context.images, context.skipped = pipeline.load_inputs(config)
    for skipped in context.skipped:
        print(f"skipped {skipped.reason}", file=sys.stderr)
    print("\n".join(pipeline.plan(context, stages, missing)))
    if plan_only:
        print("\n".join(downloads.download_plan(config, stages)))
        return 0
    pipeline.run(context, stages)
    pipeline.load_cached(context, [s for s in config.stages if s not in stages])
    context.timings["total"] = time.perf_counter() - started
    record = {**pipeline.run_record(context), "config_file": config_file}
    written = render_report(record, context.artifacts, config.output_dir)
    print(f"\nWrote {len(written)} files of site sources to {config.output_dir}/")
    for path in write_site_scaffold(config.output_dir):
        print(f"Wrote {path} (MkDocs scaffold: there was none)")
    print(f"Cache: {len(cache.stats.hits)} artifact(s) reused, {len(cache.stats.misses)} computed")
    print("View the report:    mkdocs serve      (then open http://127.0.0.1:8000)")
    print("Build static HTML:  mkdocs build --strict   -> site/")
    return 0


def write_site_scaffold(docs_dir: Path, folder: Path | None = None) -> list[Path]:
    """Make ``folder`` (default: the working folder) a MkDocs project for the report in ``docs_dir``, so that
    ``mkdocs serve`` works there: the shipped ``mkdocs.yml`` and its stylesheet, each written only where no file
    of that name exists (a user's own is never overwritten). Returns the files written."""
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
