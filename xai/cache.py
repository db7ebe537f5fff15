"""Content-addressed artifact store with atomic writes.

An artifact is stored under a key hashed from everything that determines it: the stage name, the model and
weights id, input hashes, parameters, the seed and the source code of the modules that compute it. A rerun with
nothing changed finds every key; change one input and only the keys that include it miss. Each entry is written
into a temporary directory and renamed into place, so an interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

import xai

PACKAGE_ROOT = Path(xai.__file__).parent


class Artifact(Protocol):
    def to_parts(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Artifact: ...


A = TypeVar("A")


SHARED_SOURCES = ("config", "data", "models", "stages")
"""Modules every artifact depends on, whatever the stage: configuration defaults, image decoding and
preprocessing, model construction (e.g. CLIP's activation), and the stage glue that wires inputs to methods."""


def _hash_sources(digest: Any, names: tuple[str, ...]) -> None:
    for name in dict.fromkeys(names):
        target = PACKAGE_ROOT / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
        for path in files:
            if not path.is_file():
                continue
            digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
            digest.update(path.read_bytes())


@cache
def code_version(*subpackages: str) -> str:
    """Hash of the source of :data:`SHARED_SOURCES` and the given subpackages (e.g. ``"explain"``): editing any
    of them invalidates the artifacts keyed by it."""
    digest = hashlib.sha256(xai.__version__.encode())
    _hash_sources(digest, (*SHARED_SOURCES, *subpackages))
    return digest.hexdigest()[:16]


PROBE_SOURCES = ("dissect/activations", "dissect/probe_pass", "dissect/clip_embed", "dissect/probes", "models",
                 "data", "stages/dissect", "stages/__init__", "cache")
"""The modules that compute the expensive probe artifacts (CLIP image and text embeddings, pooled activations):
decoding, preprocessing, model construction, the forward passes, their wiring and their serialisation. Analysis or
report code (e.g. ``dissect/findings.py``, ``stages/explain.py``) is left out so that editing it does not throw
away a 63k-image probe pass."""
PROBE_PACKAGES = ("torch", "torchvision", "open_clip_torch")
"""Libraries whose version can change those numbers (kernels, transforms, model code)."""


@cache
def probe_code_version() -> str:
    """Hash of :data:`PROBE_SOURCES` and the versions of :data:`PROBE_PACKAGES`: the code version of the probe
    artifacts (narrower than :func:`code_version`, which keys labels and analyses)."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(xai.__version__.encode())
    for package in PROBE_PACKAGES:
        try:
            digest.update(f"{package}=={version(package)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{package} missing\n".encode())
    _hash_sources(digest, PROBE_SOURCES)
    return digest.hexdigest()[:16]


def make_key(stage: str, parts: dict[str, Any]) -> str:
    """A stable hash of ``parts`` (JSON with sorted keys; tuples and lists alike; paths as strings)."""
    canonical = json.dumps({"stage": stage, **parts}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@dataclass
class CacheStats:
    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


class ArtifactCache:
    """Artifacts as ``<root>/<stage>/<key>/{arrays.npz,meta.json}``; ``force`` recomputes and overwrites."""

    def __init__(self, root: Path, *, force: bool = False) -> None:
        self.root = Path(root)
        self.force = force
        self.stats = CacheStats()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def contains(self, stage: str, parts: dict[str, Any]) -> bool:
        return not self.force and (self.path(stage, make_key(stage, parts)) / "meta.json").is_file()

    def load(self, stage: str, parts: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        entry = self.path(stage, make_key(stage, parts))
        if self.force or not (entry / "meta.json").is_file():
            return None
        meta = json.loads((entry / "meta.json").read_text())
        with np.load(entry / "arrays.npz", allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        return arrays, meta

    def save(self, stage: str, parts: dict[str, Any], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
        entry = self.path(stage, make_key(stage, parts))
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
        try:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            (staging / "arrays.npz").write_bytes(buffer.getvalue())
            # meta.json is what marks an entry complete, so it is written last.
            (staging / "meta.json").write_text(json.dumps({"key_parts": parts, **meta}, sort_keys=True,
                                                          default=str, indent=1))
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(staging, entry)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return entry

    def get_or_compute(self, stage: str, parts: dict[str, Any], compute: Callable[[], A], kind: type[A]) -> A:
        """The cached artifact of type ``kind`` for ``parts``, computing and storing it on a miss."""
        stored = self.load(stage, parts)
        label = f"{stage}:{make_key(stage, parts)}"
        if stored is not None:
            self.stats.hits.append(label)
            arrays, meta = stored
            meta.pop("key_parts", None)
            return kind.from_parts(arrays, meta)  # type: ignore[attr-defined]
        self.stats.misses.append(label)
        arrays, meta = compute().to_parts()  # type: ignore[attr-defined]
        self.save(stage, parts, arrays, meta)
        # Returned through the same decoding as a hit, so a fresh run and a cached one render identically.
        return kind.from_parts(arrays, json.loads(json.dumps(meta, default=str)))  # type: ignore[attr-defined]
