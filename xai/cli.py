"""Command line: ``python generate.py [--config PATH] [--images DIR] [--weights pretrained|random] ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xai import config as config_module
from xai.config import ConfigError
from xai.errors import UserError
from xai.resources import resolve_config
from xai.stages import STAGES

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
        help=f"comma-separated stages to run: {','.join(STAGES)} (with the stages they need; the report is always "
        "rendered, from cached artifacts of the other stages when present)",
    )
    parser.add_argument("--force", action="store_true", help="recompute and overwrite cached artifacts")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="compute device (default: auto)")
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        help="where the heavy work runs: this process (local, default) or a Ray cluster (ray; config key ray:)",
    )
    parser.add_argument("--output", type=Path, help="where the site sources go (default: config output_dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the plan and what would be downloaded, and exit without computing or downloading (works offline)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run :func:`xai.pipeline.generate`, and map errors to exit codes: a user's mistake
    (:class:`~xai.errors.UserError`) or an environment error (disk, permissions) is one line and exit code 2, an
    interrupt exit code 130; anything else is a bug and keeps its traceback."""
    args = build_parser().parse_args(argv)
    try:
        source = resolve_config(args.config)
        if source.shipped:
            print(
                f"config: no {args.config} here; reading the copy shipped with xai-report: {source.path}",
                file=sys.stderr,
            )
        config = config_module.load(
            source.path,
            images=args.images,
            weights=args.weights,
            device=args.device,
            output_dir=args.output,
            executor=args.executor,
        )
        only = parse_stages(args.only)
        from xai.pipeline import generate  # imported after the config is read: it pulls in torch

        return generate(
            config, only=only, force=args.force, quiet=args.quiet, plan_only=args.plan, config_file=source.shown
        )
    except UserError as error:
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
