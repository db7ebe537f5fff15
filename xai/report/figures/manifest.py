"""The figure cache's record, ``<docs>/.figures.json``: per figure (named by its first output) its key, its output
files with their sizes, the figure function's return value (a figure's alt text) and its last drawing time.
Written atomically after every render with the figures of that render that exist; an unreadable or other-format
record counts as empty (every figure is drawn again)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xai.cache import atomic_write_text

MANIFEST = ".figures.json"
MANIFEST_FORMAT = 1


def relative_to_docs(docs_dir: Path, path: Path) -> str:
    """``path`` as a name inside the docs folder (``assets/x.png``); a path outside it is refused."""
    resolved, docs = Path(path).resolve(), Path(docs_dir).resolve()
    if not resolved.is_relative_to(docs):
        raise ValueError(f"figure output {path} is outside the docs folder {docs_dir}")
    return resolved.relative_to(docs).as_posix()


def read_manifest(docs_dir: Path) -> dict[str, dict[str, Any]]:
    """The recorded figures, by name; empty when there is no readable record of this format."""
    try:
        data = json.loads((Path(docs_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return {}
    figures = data.get("figures")
    return figures if isinstance(figures, dict) else {}


def still_there(docs_dir: Path, recorded: dict[str, Any], key: str, outputs: tuple[str, ...]) -> bool:
    """Whether ``recorded`` holds ``key`` for exactly ``outputs`` and every one is on disk with its size."""
    if recorded.get("key") != key or tuple(recorded.get("outputs", ())) != outputs:
        return False
    sizes = recorded.get("sizes", [])
    for name, size in zip(outputs, sizes, strict=False):
        path = Path(docs_dir) / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return len(sizes) == len(outputs)


def write_manifest(docs_dir: Path, figures: Iterable[tuple[str, str, tuple[str, ...], Any, float]]) -> None:
    """Record ``(name, key, outputs, return value, seconds)`` of each figure whose outputs all exist; nothing else
    survives."""
    docs_dir = Path(docs_dir)
    body = {}
    for name, key, outputs, value, seconds in sorted(figures, key=lambda figure: figure[0]):
        paths = [docs_dir / output for output in outputs]
        if all(path.is_file() for path in paths):
            body[name] = {
                "key": key,
                "outputs": list(outputs),
                "sizes": [path.stat().st_size for path in paths],
                "result": encode_result(docs_dir, value),
                "seconds": round(seconds, 4),
            }
    text = json.dumps({"format": MANIFEST_FORMAT, "figures": body}, indent=1, sort_keys=True, ensure_ascii=False)
    atomic_write_text(docs_dir / MANIFEST, text)


def encode_result(docs_dir: Path, value: Any) -> Any:
    """A return value as JSON: text as is, paths relative to the docs folder, sequences and dicts of those."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Path):
        return {"path": relative_to_docs(docs_dir, value)}
    if isinstance(value, list | tuple):
        return [encode_result(docs_dir, item) for item in value]
    if isinstance(value, dict):
        return {"dict": [[key, encode_result(docs_dir, item)] for key, item in value.items()]}
    return None


def decode_result(docs_dir: Path, value: Any) -> Any:
    """The value :func:`encode_result` recorded (paths made absolute again)."""
    if isinstance(value, list):
        return [decode_result(docs_dir, item) for item in value]
    if isinstance(value, dict) and "path" in value:
        return Path(docs_dir) / value["path"]
    if isinstance(value, dict) and "dict" in value:
        return {key: decode_result(docs_dir, item) for key, item in value["dict"]}
    return value
