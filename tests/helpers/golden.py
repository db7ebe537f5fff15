"""Golden files: a rendered page compared with its committed rendering in tests/golden/.

``XAI_UPDATE_GOLDEN=1 python -m pytest tests/test_render.py tests/test_golden_pages.py`` rewrites them after an
intended change; review the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("XAI_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    """``text`` must equal ``tests/golden/<name>`` (rewritten instead when ``XAI_UPDATE_GOLDEN=1``)."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; run with XAI_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file; rerun with XAI_UPDATE_GOLDEN=1 if intended"
