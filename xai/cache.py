"""Content-addressed artifact store with atomic writes.

An artifact is stored under a key hashed from everything that determines it: the stage name, the model and
weights id, input hashes, parameters, the seed and the source code of the modules that compute it. A rerun with
nothing changed finds every key; change one input and only the keys that include it miss. Each entry is written
into a temporary directory under ``<root>/.staging`` and renamed into place, so an interrupted run never leaves a
half-written entry; stale staging is cleaned only there, in a root marked with ``CACHEDIR.TAG``.

``meta.json`` is written last and records sha256 checksums of ``arrays.npz`` and of its own content: a truncated,
edited or otherwise damaged entry is reported in one line and recomputed. Two processes computing the same key
both end with a valid entry: whoever renames second finds a complete entry in place and keeps it.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import xai
from xai import serial
from xai.errors import UserError

PACKAGE_ROOT = Path(xai.__file__).parent
CACHE_FORMAT = 3
"""Part of every key: entries of an older layout (2: each class's own to_parts; 1: no checksums) are simply not
found, never misread."""


CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file marks the folder as the xai-report artifact cache; it can be deleted and rebuilt.\n"
)


LEGACY_STAGING_FOLDERS = ("dissect", "explain", "compare")
"""The stage folders where the previous layout (``CACHE_FORMAT`` 2 before ``.staging``) staged entries."""


def _listdir(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


class StorageError(UserError, OSError):
    """A file could not be written (disk full, read-only, no permission); one line naming the path and the fix."""


def storage_error(path: Path, error: OSError, action: str = "write") -> StorageError:
    """A one-line StorageError for ``error`` raised while writing (or reading) ``path``, with the fix for its
    cause."""
    fixes = {
        errno.ENOSPC: "the disk is full; free space or point the config's cache_dir/output_dir elsewhere",
        errno.EDQUOT: "the disk quota is exceeded; free space or point cache_dir/output_dir elsewhere",
        errno.EACCES: "permission denied; fix the folder's permissions or choose a writable folder",
        errno.EPERM: "permission denied; fix the folder's permissions or choose a writable folder",
        errno.EROFS: "the file system is read-only; choose a writable folder",
        errno.EIO: "an input/output error: check the disk (or network share) holding it",
        errno.EMFILE: "too many open files: raise the limit (ulimit -n) and run again",
    }
    default = "check that the folder exists and is writable" if action == "write" else "check that it is readable"
    fix = fixes.get(error.errno, default)
    return StorageError(f"{path}: cannot {action} ({error.strerror or error}): {fix}")


A = TypeVar("A")
"""An artifact: any dataclass :mod:`xai.serial` can store (arrays in ``arrays.npz``, the rest in ``meta.json``)."""


SHARED_SOURCES = ("data", "models", "clip", "classifiers", "checkpoints", "architectures", "shapes", "serial")
SHARED_SOURCES += ("overlap",)
"""Modules every artifact depends on, whatever the stage: image decoding and preprocessing, model construction
(e.g. CLIP's activation), shape planning, the artifact serialiser and the CPU-overlap helpers. The stage glue
(``xai/stages``, the plan, the runner, the context) is not among them: it computes nothing, and every value it passes
is in the key's parts."""

COMPUTE_PACKAGES = ("torch", "torchvision", "open_clip_torch", "grad-cam", "lime", "numpy", "scipy", "scikit-image")
"""Libraries whose version can change a computed number (kernels, transforms, model code, fits, segmentation)."""


def _normalised_source(path: Path) -> str:
    """The module's syntax tree without docstrings or other bare string statements, so a comment, a docstring or
    a reformatting never invalidates an artifact; a change to the code always does."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            kept = [
                statement
                for statement in node.body
                if not (
                    isinstance(statement, ast.Expr)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                )
            ]
            node.body = kept or [ast.Pass()]
    return ast.dump(tree)


def _source_files(root: Path, names: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for name in dict.fromkeys(names):
        target = root / name
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return [path for path in dict.fromkeys(files) if path.is_file()]


def _package_versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    found = [f"python=={platform.python_version()}"]
    for package in COMPUTE_PACKAGES:
        try:
            found.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} missing")
    return found


@cache
def code_version(*modules: str) -> str:
    """The code part of every cache key, by one rule: the package version, the Python and :data:`COMPUTE_PACKAGES`
    versions, and the code (:func:`_normalised_source`) of :data:`SHARED_SOURCES` and ``modules`` (subpackages such
    as ``"explain"`` or modules such as ``"dissect/probe_pass"``) — the domain code that computes the artifact."""
    digest = hashlib.sha256(xai.__version__.encode())
    for line in _package_versions():
        digest.update(f"{line}\n".encode())
    for path in _source_files(PACKAGE_ROOT, (*SHARED_SOURCES, *modules)):
        digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
        digest.update(_normalised_source(path).encode())
    return digest.hexdigest()[:16]


def make_key(stage: str, parts: dict[str, Any]) -> str:
    """A stable hash of ``parts`` (JSON with sorted keys; tuples and lists alike; paths as strings)."""
    canonical = json.dumps(
        {"stage": stage, "format": CACHE_FORMAT, **parts}, sort_keys=True, default=str, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and an atomic rename.

    Raises:
        StorageError: one line, when the disk is full or the folder is not writable (no temp file is left).
    """
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except OSError as error:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        raise storage_error(path, error) from None
    except BaseException:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@dataclass
class CacheStats:
    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _meta_digest(body: dict[str, Any]) -> str:
    return _digest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


class CorruptEntryError(ValueError):
    """A cache entry fails its checksums or cannot be decoded."""


class ArtifactCache:
    """Artifacts as ``<root>/<stage>/<key>/{arrays.npz,meta.json}``; ``force`` recomputes and overwrites."""

    def __init__(self, root: Path, *, force: bool = False) -> None:
        self.root = Path(root)
        self.force = force
        self.stats = CacheStats()

    STAGING = ".staging"
    """Folder under the root where entries are written and discarded: renamed into place (same file system)."""
    MARKER = "CACHEDIR.TAG"
    """Marks the root as this tool's cache (https://bford.info/cachedir/: backup tools skip it)."""
    _OURS = re.compile(r"[0-9a-f]{24}\.(trash\.)?[\w.-]+")
    _LEGACY = re.compile(r"\.[0-9a-f]{24}\.(trash\.)?[\w.-]+")

    def remove_stale_staging(self, older_than_s: float = 3600.0) -> list[Path]:
        """Delete staging and trash folders a killed process left behind (an entry is staged for seconds, so
        one older than ``older_than_s`` belongs to no live writer). Returns what was removed.

        Only folders this cache wrote are candidates: in a root that carries :attr:`MARKER`, the folders under
        ``.staging`` named ``<24 hex key>.<suffix>`` (and the same names with a leading dot directly in the
        pipeline's stage folders, where an older version staged entries). Anything else, however old, is never touched.
        """
        import time

        if not (self.root / self.MARKER).is_file():
            return []
        removed = []
        cutoff = time.time() - older_than_s
        candidates = [p for p in _listdir(self.root / self.STAGING) if self._OURS.fullmatch(p.name)]
        for stage in LEGACY_STAGING_FOLDERS:
            candidates += [p for p in _listdir(self.root / stage) if self._LEGACY.fullmatch(p.name)]
        for folder in candidates:
            try:
                if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            except OSError:
                continue
        return removed

    def _staging_dir(self) -> Path:
        """``<root>/.staging``, created with the root's marker on first use."""
        staging = self.root / self.STAGING
        staging.mkdir(parents=True, exist_ok=True)
        marker = self.root / self.MARKER
        if not marker.is_file():
            atomic_write_text(marker, CACHEDIR_TAG)
        return staging

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def contains(self, stage: str, parts: dict[str, Any]) -> bool:
        """Whether a complete entry is present (its checksums are verified when it is loaded)."""
        return not self.force and (self.path(stage, make_key(stage, parts)) / "meta.json").is_file()

    @staticmethod
    def read_entry(entry: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and meta of a complete entry, both checked against the checksums in meta.json.

        Raises:
            CorruptEntryError: a missing, truncated or altered file, or one that does not decode.
            StorageError: the files cannot be read (permission, I/O error, too many open files): not damage,
                so the entry is left alone.
        """
        try:
            meta_bytes = (entry / "meta.json").read_bytes()
            data = (entry / "arrays.npz").read_bytes()
        except FileNotFoundError as error:
            raise CorruptEntryError(f"{Path(error.filename or '').name or 'a file'} is missing") from None
        except OSError as error:
            raise storage_error(entry, error, action="read") from None
        try:
            stored = json.loads(meta_bytes.decode("utf-8"))
            integrity = stored.pop("integrity")
            if _meta_digest(stored) != integrity["meta_sha256"]:
                raise CorruptEntryError("meta.json was altered")
            if _digest(data) != integrity["arrays_sha256"]:
                raise CorruptEntryError(f"arrays.npz fails its checksum ({len(data):,} bytes)")
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except CorruptEntryError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as error:
            first_line = str(error).splitlines()[0] if str(error) else ""
            raise CorruptEntryError(f"{type(error).__name__}: {first_line}") from None
        return arrays, stored

    @staticmethod
    def _identity(entry: Path) -> tuple[int, int, int] | None:
        """Which copy of ``entry`` is in place (meta.json's device, inode and mtime), or None when absent."""
        try:
            found = (entry / "meta.json").stat()
        except OSError:
            return None
        return found.st_dev, found.st_ino, found.st_mtime_ns

    def load(self, stage: str, parts: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The entry for ``parts``, or None when absent; a damaged entry is reported, removed and reads as absent."""
        entry = self.path(stage, make_key(stage, parts))
        if self.force or not (entry / "meta.json").is_file():
            return None
        identity = self._identity(entry)
        try:
            return self.read_entry(entry)
        except CorruptEntryError as error:
            if self._identity(entry) != identity:
                return None  # another process replaced it meanwhile: recompute, and keep whichever is in place
            self.stats.corrupt.append(f"{stage}:{entry.name}")
            print(f"warning: cache entry {entry} is damaged ({error}); recomputing it", file=sys.stderr, flush=True)
            self._discard(entry, identity)
            return None

    def _discard(self, entry: Path, identity: tuple[int, int, int] | None) -> None:
        """Remove ``entry`` if it is still the copy identified by ``identity`` (see :meth:`_identity`): renamed
        aside first (atomic), so a reader never sees it half deleted."""
        if self._identity(entry) != identity:
            return  # another process replaced it with a fresh copy: not ours to delete
        trash = self._staging_dir() / f"{entry.name}.trash.{os.getpid()}.{os.urandom(4).hex()}"
        try:
            os.replace(entry, trash)
        except OSError:
            return  # already gone: another process discarded or replaced it
        shutil.rmtree(trash, ignore_errors=True)

    def save(self, stage: str, parts: dict[str, Any], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
        """Store an entry atomically; safe when another process stores the same key at the same time.

        Raises:
            StorageError: one line, when the cache folder is full or not writable (nothing half-written is left).
        """
        entry = self.path(stage, make_key(stage, parts))
        staging = None
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=self._staging_dir(), prefix=f"{entry.name}."))
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            data = buffer.getvalue()
            (staging / "arrays.npz").write_bytes(data)
            body = json.loads(json.dumps({"key_parts": parts, **meta}, default=str))
            body_with_checks = {
                **body,
                "integrity": {"arrays_sha256": _digest(data), "meta_sha256": _meta_digest(body)},
            }
            # meta.json is what marks an entry complete, so it is written last.
            (staging / "meta.json").write_text(json.dumps(body_with_checks, sort_keys=True, indent=1), encoding="utf-8")
            self._install(staging, entry)
        except StorageError:
            raise
        except OSError as error:
            raise storage_error(entry, error) from None
        finally:
            if staging is not None and staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return entry

    def _install(self, staging: Path, entry: Path) -> None:
        """Rename ``staging`` to ``entry``. If a complete entry is already there (another process finished the
        same key first), keep it unless this cache is forcing recomputation or that entry is damaged."""
        for _ in range(5):
            try:
                os.replace(staging, entry)
                return
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
                    raise
            identity = self._identity(entry)
            if not self.force:
                try:
                    self.read_entry(entry)
                    return  # the same key, computed from the same inputs: keep the one in place
                except CorruptEntryError:
                    pass
            self._discard(entry, identity)
        raise OSError(errno.EBUSY, "another process keeps replacing this cache entry", str(entry))

    def get_or_compute(self, stage: str, parts: dict[str, Any], compute: Callable[[], A], kind: type[A]) -> A:
        """The cached artifact of type ``kind`` for ``parts``, computing and storing it on a miss."""
        stored = self.load(stage, parts)
        label = f"{stage}:{make_key(stage, parts)}"
        if stored is not None:
            self.stats.hits.append(label)
            arrays, meta = stored
            meta.pop("key_parts", None)
            return serial.from_parts(kind, arrays, meta)
        self.stats.misses.append(label)
        arrays, meta = serial.to_parts(compute())
        self.save(stage, parts, arrays, meta)
        # Returned through the same decoding as a hit (its meta as meta.json holds it: JSON, keys sorted), so a
        # fresh run and a cached one render identically.
        return serial.from_parts(kind, arrays, json.loads(json.dumps(meta, default=str, sort_keys=True)))
