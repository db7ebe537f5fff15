"""Keys of the figure cache: a digest of what a figure function receives and of the code that draws it.

A figure is redrawn only when its key changes. The key is sha256 over

- the function (module and qualified name) and its arguments, read canonically by :class:`InputDigest`: arrays by
  dtype, shape and bytes; data frames by column names, dtypes, index and values; dataclasses and plain objects by
  class and fields; a path inside the docs folder by its relative name (moving the folder keeps the cache), any
  other existing file by its path, size and modification time (a probe image replaced under the same name
  redraws its strips);
- :func:`code_digest`: the source bytes of the function's module and of every ``xai`` module it imports,
  directly or through those (the artifacts' own methods draw too, e.g. ``LimeResult.pixel_weights``; the
  method registry names the panels), plus the versions of the libraries that turn the same inputs into pixels
  (matplotlib, numpy, Pillow, scikit-image).

Anything the digest cannot read canonically raises :class:`UndigestibleInput`; that figure is then drawn every
run rather than risk a stale file.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import hashlib
import importlib
import importlib.metadata
import importlib.util
import struct
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path, PurePath
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

import numpy as np

LIBRARIES = ("matplotlib", "numpy", "pillow", "scikit-image")
"""Distributions whose version is part of every key: they turn the same inputs into (possibly) other bytes."""
PACKAGE = "xai"
LONG_SEQUENCE = 256
"""Sequences longer than this (probe paths) are digested once per render however many figures receive them."""


class UndigestibleInput(TypeError):
    """An argument the digest cannot read canonically (the figure is drawn every run instead)."""


def _tag(hasher: Any, tag: str, payload: bytes = b"") -> None:
    """Length-prefixed ``tag`` and ``payload``: no two different inputs feed the same byte stream."""
    name = tag.encode()
    hasher.update(struct.pack("<II", len(name), len(payload)))
    hasher.update(name)
    hasher.update(payload)


class InputDigest:
    """Canonical sha256 of figure inputs. One instance per render: large objects met again (the same
    ``DissectionResult`` given to several figures) are read once, and each file outside the docs is stat'ed once."""

    def __init__(self, docs_dir: Path) -> None:
        self.docs_dir = Path(docs_dir).resolve()
        self._memo: dict[int, tuple[Any, bytes]] = {}
        """id -> (the object, kept alive so the id stays its own; its digest)."""
        self._files: dict[str, tuple[int, int] | None] = {}

    def digest(self, value: Any) -> bytes:
        hasher = hashlib.sha256()
        self._feed(hasher, value)
        return hasher.digest()

    def _memoised(self, value: Any, compute: Callable[[Any], None]) -> bytes:
        """The sub-digest of ``value``; remembered for arrays, frames, dataclasses and long sequences (artifacts,
        never mutated while a report renders), recomputed for small containers a builder may still change."""
        found = self._memo.get(id(value))
        if found is not None and found[0] is value:
            return found[1]
        hasher = hashlib.sha256()
        compute(hasher)
        result = hasher.digest()
        if not isinstance(value, list | tuple | dict) or len(value) > LONG_SEQUENCE:
            self._memo[id(value)] = (value, result)
        return result

    def _feed(self, hasher: Any, value: Any) -> None:
        if value is None or isinstance(value, bool):
            _tag(hasher, repr(value))
        elif isinstance(value, np.generic):
            _tag(hasher, f"np:{value.dtype.str}", value.tobytes())
        elif isinstance(value, enum.Enum):
            _tag(hasher, f"enum:{_qualified(type(value))}", value.name.encode())
        elif isinstance(value, int):
            _tag(hasher, "int", str(value).encode())
        elif isinstance(value, float):
            _tag(hasher, "float", value.hex().encode())
        elif isinstance(value, str):
            _tag(hasher, "str", value.encode("utf-8", "surrogatepass"))
        elif isinstance(value, bytes | bytearray | memoryview):
            _tag(hasher, "bytes", bytes(value))
        elif isinstance(value, PurePath):
            _tag(hasher, "path", self._path_identity(Path(value)).encode("utf-8", "surrogatepass"))
        elif isinstance(value, np.ndarray):
            _tag(hasher, "ndarray", self._memoised(value, lambda inner: self._feed_array(inner, value)))
        elif isinstance(value, list | tuple):  # a NamedTuple too: its fields in order
            _tag(hasher, type(value).__name__, self._memoised(value, lambda inner: self._feed_items(inner, value)))
        elif isinstance(value, Mapping):
            pairs = [item for pair in value.items() for item in pair]  # insertion order: it can order a legend
            _tag(hasher, "dict", self._memoised(value, lambda inner: self._feed_items(inner, pairs)))
        elif isinstance(value, set | frozenset):
            _tag(hasher, "set", b"".join(sorted(self.digest(item) for item in value)))
        elif isinstance(value, type | FunctionType | BuiltinFunctionType | ModuleType):
            _tag(hasher, "code", _qualified(value).encode())
        elif type(value).__module__.partition(".")[0] == "pandas":
            _tag(hasher, "pandas", self._memoised(value, lambda inner: self._feed_pandas(inner, value)))
        elif type(value).__module__.partition(".")[0] == "torch" and hasattr(value, "detach"):
            self._feed(hasher, value.detach().cpu().numpy())
        elif dataclasses.is_dataclass(value):
            fields = [item for field in dataclasses.fields(value) for item in (field.name, getattr(value, field.name))]
            self._feed_record(hasher, f"dataclass:{_qualified(type(value))}", value, fields)
        elif hasattr(value, "__dict__") and not callable(value):  # a plain record (SimpleNamespace, a class)
            fields = [item for name in sorted(vars(value)) for item in (name, vars(value)[name])]
            self._feed_record(hasher, f"object:{_qualified(type(value))}", value, fields)
        else:
            raise UndigestibleInput(f"cannot digest a {_qualified(type(value))} argument")

    def _feed_record(self, hasher: Any, tag: str, value: Any, fields: list[Any]) -> None:
        _tag(hasher, tag, self._memoised(value, lambda inner: self._feed_items(inner, fields)))

    def _feed_items(self, hasher: Any, items: Any) -> None:
        _tag(hasher, "len", str(len(items)).encode())
        for item in items:
            self._feed(hasher, item)

    def _feed_array(self, hasher: Any, array: np.ndarray) -> None:
        _tag(hasher, f"shape:{array.dtype.str}", repr(array.shape).encode())
        if array.dtype.hasobject:
            self._feed_items(hasher, array.ravel().tolist())
        else:
            hasher.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))  # empty arrays too

    def _feed_pandas(self, hasher: Any, value: Any) -> None:
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            _tag(hasher, "frame", repr(value.shape).encode())
            self._feed(hasher, [str(dtype) for dtype in value.dtypes])
            self._feed(hasher, value.columns)
            self._feed(hasher, value.index)
            for position in range(value.shape[1]):
                self._feed(hasher, value.iloc[:, position].to_numpy())
        elif isinstance(value, pd.Series):
            _tag(hasher, f"series:{value.dtype}")
            self._feed(hasher, value.name)
            self._feed(hasher, value.index)
            self._feed(hasher, value.to_numpy())
        elif isinstance(value, pd.Index):
            _tag(hasher, f"index:{type(value).__name__}:{value.dtype}")
            self._feed(hasher, list(value.names))
            self._feed(hasher, value.to_numpy())
        else:
            raise UndigestibleInput(f"cannot digest a {_qualified(type(value))} argument")

    def _path_identity(self, path: Path) -> str:
        """A path inside the docs folder by its relative name (an output); any other by name, size and mtime."""
        resolved = path.resolve()
        if resolved.is_relative_to(self.docs_dir):
            return f"docs:{resolved.relative_to(self.docs_dir).as_posix()}"
        key = str(resolved)
        if key not in self._files:
            try:
                stat = resolved.stat()
                self._files[key] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                self._files[key] = None
        return f"file:{key}:{self._files[key]}"


def _qualified(value: Any) -> str:
    return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', getattr(value, '__name__', '?'))}"


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _package_imports(name: str) -> set[str]:
    """The ``xai`` modules module ``name`` imports anywhere in its source (functions too): ``import a.b``, ``from
    a.b import c`` (``a.b``, and ``a.b.c`` when that is a module). Read from the source, so a constant imported
    from another module (the method registry's titles) counts as that module."""
    path = _module_file(name)
    if path is None:
        return set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}"))
    return {module for module in found if module.partition(".")[0] == PACKAGE and _module_file(module)}


def reachable_modules(module_name: str) -> list[str]:
    """``module_name`` and every ``xai`` module it imports, directly or through those, sorted."""
    seen = {module_name}
    todo = [module_name]
    while todo:
        for name in _package_imports(todo.pop()) - seen:
            seen.add(name)
            todo.append(name)
    return sorted(seen)


@cache
def library_versions() -> tuple[tuple[str, str], ...]:
    versions = []
    for name in LIBRARIES:
        try:
            versions.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((name, "absent"))
    return tuple(versions)


@cache
def code_digest(module_name: str) -> bytes:
    """sha256 of the sources of ``module_name`` and the ``xai`` modules it reaches, and of the library versions."""
    hasher = hashlib.sha256()
    for name in reachable_modules(module_name):
        source = _module_file(name)
        _tag(hasher, f"module:{name}", source.read_bytes() if source else b"")
    for name, version in library_versions():
        _tag(hasher, f"library:{name}", version.encode())
    return hasher.digest()


def figure_key(digest: InputDigest, function: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> str:
    """The cache key of ``function(*args, **kwargs)``: its name, its code and its inputs (see the module docs)."""
    hasher = hashlib.sha256()
    _tag(hasher, "function", _qualified(function).encode())
    _tag(hasher, "code", code_digest(function.__module__))
    _tag(hasher, "args", digest.digest(list(args)))
    _tag(hasher, "kwargs", digest.digest(dict(sorted(kwargs.items()))))
    return hasher.hexdigest()
