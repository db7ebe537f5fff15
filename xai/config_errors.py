"""Config validation errors as one line each: ``<file>: <key>: <what is wrong>; <the fix>``.

Pydantic reports a location (``("explain", "lime", "num_samples")``) and a message per problem; a user needs the
dotted key, the value they wrote and what to write instead. An unknown key lists the keys allowed at that place,
the closest spellings first (:func:`difflib.get_close_matches`); a union's failed branches (``'auto'`` or a list)
become one "must be A or B"; pydantic's branch tags (``literal['auto']``) never reach the key. A problem with no
key (a check across keys) is the validator's own sentence, which names the keys.
"""

from __future__ import annotations

import difflib
from typing import Any, get_args

from pydantic import BaseModel, ValidationError


def _sections(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """``model`` and every section model under it, by class name (a ValidationError's ``title``)."""
    found = {model.__name__: model}
    for field in model.model_fields.values():
        nested = _section_of(field.annotation)
        if nested is not None and nested.__name__ not in found:
            found |= _sections(nested)
    return found


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds (``LimeConfig``, or ``ModelEntry`` inside ``tuple[str | ModelEntry, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((found for arg in get_args(annotation) if (found := _section_of(arg)) is not None), None)


def _key_path(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[str | int, ...], type[BaseModel] | None]:
    """``loc`` without pydantic's union-branch tags (``literal['auto']``, ``tuple[str, ...]``), and the section
    model holding its last key (``None`` when the key is not a section's field)."""
    path: list[str | int] = []
    section: type[BaseModel] | None = model
    holder: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            path.append(part)
        elif section is not None and part in section.model_fields:
            path.append(part)
            holder, section = section, _section_of(section.model_fields[part].annotation)
        elif section is not None and part != section.__name__:  # every section forbids keys it does not declare
            path.append(part)
            holder, section = section, None
        # else: a union's branch tag (``literal['auto']``, ``ModelEntry``) after the key it belongs to
    return tuple(path), holder


def _dotted(key: tuple[str | int, ...]) -> str:
    """``explain.lime.num_samples``; a list position in brackets: ``stages[1]``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in key).removeprefix(".")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(detail: Any) -> str:
    """What a value must be, from one pydantic error: ``'pretrained' or 'random'``, ``a list ...``."""
    kind, message = detail["type"], detail["msg"]
    if kind == "literal_error":
        return str(detail.get("ctx", {}).get("expected", message.removeprefix("Input should be ")))
    if kind in ("tuple_type", "list_type", "set_type", "iterable_type"):
        return "a list, e.g. [a, b]"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "a mapping of keys to values (nested 'key: value' lines)"
    return message.removeprefix("Input should be ")


def _problem(details: list[dict[str, Any]], holder: type[BaseModel] | None) -> str:
    """What is wrong with one key and the fix, from its pydantic errors (several when a union's branches all
    failed)."""
    first = details[0]
    kind, name = first["type"], str(first["loc"][-1]) if first["loc"] else ""
    if kind == "extra_forbidden":
        allowed = list(holder.model_fields) if holder is not None else []
        close = difflib.get_close_matches(name, allowed, n=3, cutoff=0.6)
        ordered = close + [key for key in allowed if key not in close]
        return f"unknown key; allowed keys here: {', '.join(ordered)}"
    if kind == "missing":
        return "required key missing; add it"
    if kind in ("value_error", "assertion_error"):  # our validators' own messages name the fix
        return first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    expected = list(dict.fromkeys(_expected(detail) for detail in details))
    return f"got {_shown(first['input'])}; must be {' or '.join(expected)}"


def one_line(error: ValidationError, source: str, root: type[BaseModel]) -> str:
    """The first problem of ``error`` (raised validating ``root`` or a section model under it) as one line:
    ``<file>: <key>: <what is wrong>; <the fix>``, then how many other keys have problems. ``source`` may be
    empty (an entry validated inside another key's validator)."""
    model = _sections(root).get(error.title, root)
    by_key: dict[tuple[str | int, ...], list[dict[str, Any]]] = {}
    holders: dict[tuple[str | int, ...], type[BaseModel] | None] = {}
    for detail in error.errors():
        key, holder = _key_path(model, tuple(detail["loc"]))
        by_key.setdefault(key, []).append(detail)
        holders.setdefault(key, holder)
    key, details = next(iter(by_key.items()))
    where = ": ".join(part for part in (source, _dotted(key)) if part)
    more = f" (and {len(by_key) - 1} more)" if len(by_key) > 1 else ""
    message = _problem(details, holders[key])
    return f"{where}: {message}{more}" if where else f"{message}{more}"
