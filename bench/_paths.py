"""Where the benchmarks find the data mirror: ``$XAI_MIRROR`` when set (as CI sets it), else ``../shared/data``
beside the checkout (as the tests find it), never an absolute path of one machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (this checkout)."""
DEFAULT_MIRROR = ROOT.parent / "shared" / "data"


def mirror_dir() -> Path:
    """The data mirror holding ``MANIFEST.tsv``; exits with one line naming the fix when there is none."""
    configured = os.environ.get("XAI_MIRROR")
    mirror = Path(configured) if configured else DEFAULT_MIRROR
    if not (mirror / "MANIFEST.tsv").is_file():
        sys.exit(
            f"{mirror}: no MANIFEST.tsv there; set XAI_MIRROR to the data mirror (default: ../shared/data "
            "beside the checkout)"
        )
    return mirror
