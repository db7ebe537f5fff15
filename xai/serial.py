"""One serialiser for every cached artifact: a dataclass <-> named numpy arrays + JSON meta, driven by its fields.

:func:`to_parts` walks the dataclass's init fields with their resolved type hints (``typing.get_type_hints``, so
``from __future__ import annotations`` is fine) and :func:`from_parts` rebuilds it through its constructor, so
``__post_init__`` runs again (read-only arrays, dtype casts). Per annotation:

* ``np.ndarray``: stored in the arrays under its path (``field``, ``outer/0/inner``, ``arrays/<key>``), dtype and
  shape kept (npz, no pickle: object arrays are refused); the meta holds that name.
* a dataclass, ``tuple[X, ...]``/``tuple[X, Y]``/``list[X]`` and ``dict[str, X]``/``Mapping[str, X]`` of any
  supported ``X``: recursively, the path growing by field name, index or key. Tuples and lists come back as the
  annotated container; a dict comes back with the meta's key order (the cache writes sorted keys).
* ``pd.DataFrame``: numeric and bool columns as arrays (``<path>/<position>``), every other column as JSON text
  with its dtype name; column order, dtypes and row count are restored (the index is not kept: a RangeIndex).
* ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``: JSON scalars, restored to the annotated type (a float
  stored as ``3`` comes back ``3.0``). JSON has no NaN: a NaN ``float`` is stored as null and restored as NaN; under
  ``float | None`` null means None, so a NaN there is stored as the string ``"NaN"``.
* ``X | None``: null or ``X``.
* ``Any`` (e.g. ``dict[str, Any]``): free JSON, stored and returned as given.

Any other annotation raises a TypeError naming the class and the field. A field missing from the meta takes its
dataclass default (none: ValueError); meta keys that are not fields are ignored.

This is the cache's on-disk format: a change to how anything is stored or read back must bump
:data:`xai.cache.CACHE_FORMAT`, so that entries written the old way are not found rather than misread.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal, TypeVar, Union

import numpy as np
import pandas as pd

Parts = tuple[dict[str, np.ndarray], dict[str, Any]]
"""How an artifact is stored: named arrays (``arrays.npz``) and JSON-able metadata (``meta.json``)."""

A = TypeVar("A")

SEPARATOR = "/"
"""Joins the parts of an array's path: field names, list indices, dict keys."""

_SCALARS = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    hint: Any
    has_default: bool
    where: str
    """``Class.field``, for error messages."""


def _optional(hint: Any) -> Any | None:
    """``X`` when ``hint`` is ``X | None`` (or ``Optional[X]``), else None."""
    if typing.get_origin(hint) not in (Union, types.UnionType):
        return None
    members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return members[0] if len(members) == 1 and len(typing.get_args(hint)) == 2 else None


def _is_array(hint: Any) -> bool:
    return hint is np.ndarray or typing.get_origin(hint) is np.ndarray


def _check(hint: Any, where: str, seen: frozenset[type]) -> None:
    """Raise TypeError unless every type in ``hint`` is one this module stores."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    inner = _optional(hint)
    if hint is Any or hint in _SCALARS or _is_array(hint) or hint is pd.DataFrame or origin is Literal:
        return
    if inner is not None:
        _check(inner, where, seen)
    elif dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if hint not in seen:
            _schema_checked(hint, seen | {hint})
    elif (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or (origin is list and len(args) == 1):
        _check(args[0], where, seen)
    elif origin is tuple and args and Ellipsis not in args:
        for arg in args:
            _check(arg, where, seen)
    elif origin in (dict, Mapping) and len(args) == 2 and args[0] is str:
        _check(args[1], where, seen)
    else:
        raise TypeError(
            f"{where}: cannot serialise a field annotated {hint!r}; supported: np.ndarray, pd.DataFrame, "
            "dataclasses, tuple/list/dict[str, ...] of those, int/float/bool/str, Literal, X | None and Any"
        )


def _schema_checked(kind: type, seen: frozenset[type]) -> tuple[_Field, ...]:
    try:
        hints = typing.get_type_hints(kind)
    except NameError as error:
        raise TypeError(f"{kind.__qualname__}: cannot resolve its type hints ({error})") from None
    fields = []
    for item in dataclasses.fields(kind):
        if not item.init:
            continue  # derived in __post_init__, not passed to the constructor
        where = f"{kind.__qualname__}.{item.name}"
        _check(hints[item.name], where, seen)
        has_default = item.default is not dataclasses.MISSING or item.default_factory is not dataclasses.MISSING
        fields.append(_Field(item.name, hints[item.name], has_default, where))
    return tuple(fields)


@cache
def _schema(kind: type) -> tuple[_Field, ...]:
    """The init fields of dataclass ``kind`` with their resolved hints, every hint checked (nested ones too)."""
    if not (dataclasses.is_dataclass(kind) and isinstance(kind, type)):
        raise TypeError(f"{kind!r} is not a dataclass: the cache stores dataclasses only")
    return _schema_checked(kind, frozenset({kind}))


def _join(path: str, name: object) -> str:
    return f"{path}{SEPARATOR}{name}" if path else str(name)


def _store(arrays: dict[str, np.ndarray], path: str, value: Any, where: str) -> str:
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise TypeError(f"{where}: an object array cannot be stored without pickle (dtype {array.dtype})")
    if path in arrays:
        raise ValueError(f"{where}: two arrays would be stored as {path!r} (a dict key holding {SEPARATOR!r}?)")
    arrays[path] = array
    return path


def _wrong(value: Any, hint: Any, where: str) -> TypeError:
    return TypeError(f"{where}: {type(value).__name__} value {value!r:.80} does not match its annotation {hint!r}")


def _encode_scalar(value: Any, hint: type, where: str) -> Any:
    if hint is str:
        if not isinstance(value, str):
            raise _wrong(value, hint, where)
        return str(value)
    if hint is float:
        if not isinstance(value, numbers.Real):
            raise _wrong(value, hint, where)
        return None if math.isnan(value) else float(value)
    if not isinstance(value, numbers.Integral | np.bool_):
        raise _wrong(value, hint, where)
    return hint(value)


def _encode(value: Any, hint: Any, path: str, arrays: dict[str, np.ndarray], where: str) -> Any:
    """The JSON meta of ``value`` (annotated ``hint``); its arrays go into ``arrays`` under ``path``."""
    if hint in _SCALARS:  # first: the items of long tuples of strings (concepts, probe ids) come through here
        return _encode_scalar(value, hint, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    inner = _optional(hint)
    if hint is Any:
        return value
    if inner is not None:
        if value is None:
            return None
        if inner is float and isinstance(value, numbers.Real) and math.isnan(value):
            return "NaN"  # null already means None here
        return _encode(value, inner, path, arrays, where)
    if _is_array(hint):
        return _store(arrays, path, value, where)
    if hint is pd.DataFrame:
        if not isinstance(value, pd.DataFrame):
            raise _wrong(value, hint, where)
        return _frame_to_parts(value, path, arrays, where)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if type(value) is not hint:  # a subclass would come back as ``hint``
            raise _wrong(value, hint, where)
        return _encode_fields(value, path, arrays)
    if origin is Literal:
        if value not in args:
            raise _wrong(value, hint, where)
        return value
    if origin in (tuple, list):
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            raise _wrong(value, hint, where)
        if (origin is list or args[-1] is Ellipsis) and args[0] in _SCALARS:  # no array inside: no paths
            return [_encode_scalar(item, args[0], where) for item in value]
        return [_encode(item, _item_hint(hint, i, len(value), where), _join(path, i), arrays, where)
                for i, item in enumerate(value)]  # fmt: skip
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
            raise _wrong(value, hint, where)
        if args[1] is Any:
            return dict(value)
        return {key: _encode(item, args[1], _join(path, key), arrays, where) for key, item in value.items()}
    raise TypeError(f"{where}: cannot serialise a field annotated {hint!r}")


def _item_hint(hint: Any, index: int, length: int, where: str) -> Any:
    """The annotation of item ``index`` of a tuple or list of ``length`` items annotated ``hint``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list or args[-1] is Ellipsis:
        return args[0]
    if length != len(args):
        raise ValueError(f"{where}: {length} items where {hint!r} has {len(args)}")
    return args[index]


def _encode_fields(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        item.name: _encode(getattr(obj, item.name), item.hint, _join(path, item.name), arrays, item.where)
        for item in _schema(type(obj))
    }


def _decode_scalar(stored: Any, hint: type) -> Any:
    if hint is float:
        return math.nan if stored is None else float(stored)  # also reads the "NaN" of a float | None
    return hint(stored)


def _decode(stored: Any, hint: Any, path: str, arrays: Mapping[str, np.ndarray], where: str) -> Any:
    """Inverse of :func:`_encode`: the value annotated ``hint`` from its meta ``stored``."""
    if hint in _SCALARS:
        return _decode_scalar(stored, hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    inner = _optional(hint)
    if hint is Any:
        return stored
    if inner is not None:
        return None if stored is None else _decode(stored, inner, path, arrays, where)
    if _is_array(hint):
        if not isinstance(stored, str) or stored not in arrays:
            raise ValueError(f"{where}: array {stored!r} is not among the stored arrays")
        return arrays[stored]
    if hint is pd.DataFrame:
        return _frame_from_parts(arrays, stored, path)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_fields(hint, stored, path, arrays)
    if origin is Literal:
        if stored not in args:
            raise ValueError(f"{where}: {stored!r} is none of {args}")
        return stored
    if origin in (tuple, list):
        if (origin is list or args[-1] is Ellipsis) and args[0] in _SCALARS:
            return origin(_decode_scalar(item, args[0]) for item in stored)
        items = [_decode(item, _item_hint(hint, i, len(stored), where), _join(path, i), arrays, where)
                 for i, item in enumerate(stored)]  # fmt: skip
        return origin(items)
    if origin in (dict, Mapping):
        return {key: _decode(item, args[1], _join(path, key), arrays, where) for key, item in stored.items()}
    raise TypeError(f"{where}: cannot deserialise a field annotated {hint!r}")


def _decode_fields(kind: type[A], meta: Mapping[str, Any], path: str, arrays: Mapping[str, np.ndarray]) -> A:
    values = {}
    for item in _schema(kind):
        if item.name in meta:
            values[item.name] = _decode(meta[item.name], item.hint, _join(path, item.name), arrays, item.where)
        elif not item.has_default:
            raise ValueError(f"{item.where}: missing from the stored meta")
    return kind(**values)


def to_parts(obj: Any) -> Parts:
    """Split dataclass ``obj`` into named arrays and JSON meta (one key per init field).

    Raises:
        TypeError: ``obj`` is not a dataclass, a field's annotation is not supported, or a value does not match it.
    """
    arrays: dict[str, np.ndarray] = {}
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"{type(obj).__qualname__} is not a dataclass instance: the cache stores dataclasses only")
    return arrays, _encode_fields(obj, "", arrays)


def from_parts(kind: type[A], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> A:
    """Rebuild a ``kind`` from :func:`to_parts`'s arrays and meta (after a JSON round trip) via its constructor.

    Raises:
        TypeError: ``kind`` is not a dataclass or a field's annotation is not supported.
        ValueError: a field without default is missing, or an array it names is absent.
    """
    return _decode_fields(kind, meta, "", arrays)


def _frame_to_parts(frame: pd.DataFrame, path: str, arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    """Numeric and bool columns as arrays ``<path>/<position>``, other columns as text with their dtype name."""
    text: dict[str, list[str]] = {}
    kinds: list[str] = []
    for position, column in enumerate(frame.columns):
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            _store(arrays, _join(path, position), series.to_numpy(copy=True), where)
            kinds.append("array")
        else:
            text[str(position)] = [str(value) for value in series.tolist()]
            kinds.append(f"text:{series.dtype}")
    return {"columns": [str(c) for c in frame.columns], "kinds": kinds, "text": text, "rows": len(frame)}


def _frame_from_parts(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], path: str) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for position, (column, kind) in enumerate(zip(meta["columns"], meta["kinds"], strict=True)):
        if kind == "array":
            data[column] = np.asarray(arrays[_join(path, position)])
        else:
            data[column] = pd.Series(meta["text"][str(position)], dtype=kind.removeprefix("text:"))
    # No columns: a bare frame of that many rows, whose (empty) columns are a RangeIndex as ``pd.DataFrame()``'s.
    frame = pd.DataFrame(data, columns=meta["columns"]) if data else pd.DataFrame(index=pd.RangeIndex(meta["rows"]))
    if len(frame) != meta["rows"]:
        raise ValueError(f"table {path!r}: expected {meta['rows']} rows, got {len(frame)}")
    return frame
