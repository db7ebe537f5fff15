"""Where the tests find the data mirror (task images, ImageNet samples, concept sets)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
"""``../shared/data`` beside the checkout."""


def mirror_path() -> Path | None:
    """The data mirror: $XAI_MIRROR (CI sets it) or ../shared/data beside the checkout.

    ``XAI_NO_MIRROR=1`` hides both, to check that the suite passes on a machine without them.
    """
    if os.environ.get("XAI_NO_MIRROR") == "1":
        return None
    configured = os.environ.get("XAI_MIRROR")
    if configured and Path(configured, "MANIFEST.tsv").is_file():
        return Path(configured)
    return SHARED_DATA if (SHARED_DATA / "MANIFEST.tsv").is_file() else None
