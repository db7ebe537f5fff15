"""Reading a user's checkpoint and class file, and loading a state dict into a built classifier with one-line
errors: ``torch.load(..., weights_only=True)`` only (a published legacy pickle goes through
:func:`xai.models._load_state`, trusted only when its full checksum matched), ``module.`` prefixes stripped, the state
dict's ``_metadata`` kept, and every missing, unexpected or mis-shaped tensor named with both shapes."""

from __future__ import annotations

import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai.errors import UserError
from xai.models import _load_state


class CheckpointError(UserError, ValueError):
    """A checkpoint or class-name file that cannot be used; the message is one line naming the file and the fix."""


def read_classes(path: Path) -> list[str]:
    """Class names, one per line in output order (trailing blank lines ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{path}: cannot read the class file ({error}); give a UTF-8 text file with one class name per line"
        ) from None
    lines = [line.strip() for line in text.rstrip().splitlines()]
    if not lines or lines == [""]:
        raise CheckpointError(f"{path}: the class file is empty; write one class name per line, in output order")
    blank = [number for number, line in enumerate(lines, 1) if not line]
    if blank:
        raise CheckpointError(
            f"{path}: line {blank[0]} is blank; write one class name per line with no blank lines in between"
        )
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if line in seen:
            raise CheckpointError(
                f"{path}: class {line!r} appears on lines {seen[line]} and {number}; give each "
                "class one line with a distinct name"
            )
        seen[line] = number
    return lines


def _listed(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > limit else ''})"


def check_state(state: Mapping[str, torch.Tensor], model: nn.Module, *, source: Path, model_label: str) -> None:
    """One line naming ``source`` when ``state`` does not fit ``model``: the first tensor whose shape differs
    (with both shapes), else the missing and unexpected keys (first few and counts)."""
    expected = model.state_dict()
    for key, tensor in state.items():
        if key in expected and tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: tensor {key!r} has shape {tuple(tensor.shape)} in the checkpoint but "
                f"{tuple(expected[key].shape)} in {model_label}; check the model name and the class file"
            )
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = [f"missing keys: {_listed(missing)}"] if missing else []
        parts += [f"unexpected keys: {_listed(unexpected)}"] if unexpected else []
        raise CheckpointError(
            f"{source}: does not fit {model_label}; {'; '.join(parts)}; save the model's "
            "state_dict() of this architecture"
        )


def read_state(path: Path, *, verified: bool, published: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in a checkpoint (or its ``state_dict`` entry), ``module.`` prefixes stripped, read with
    ``weights_only=True``; returns (state, note).

    Unlike :func:`xai.models._load_state` it keeps the state dict's ``_metadata``: ``load_state_dict`` passes each
    module its saved ``version``, and torchvision converts by it (MNASNet refuses a state without one and rebuilds
    its v1 stem for version 1; ViT's MLP blocks rename pre-v2 keys). Only a file torch's safe unpickler refuses goes
    through ``_load_state`` (the Places365 legacy pickle, trusted when ``verified``), and only when ``published``.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if published:
            return _load_state(path, verified=verified)
        raise
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, Mapping):
        raise TypeError(f"holds a {type(state).__name__}, not a state dict")
    metadata = getattr(state, "_metadata", None)
    stripped: Any = OrderedDict((key.removeprefix("module."), value) for key, value in state.items())
    if metadata is not None:
        stripped._metadata = OrderedDict(
            ("" if key == "module" else key.removeprefix("module."), value) for key, value in metadata.items()
        )
    return stripped, ""


def checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """A user's state dict (or a dict with a ``state_dict`` entry, keys maybe ``module.``-prefixed), read with
    ``weights_only=True`` and never anything else: the file has no published checksum to trust it by."""
    if not path.is_file():
        raise CheckpointError(
            f"{path}: checkpoint not found; give the path of a file saved with torch.save(model.state_dict(), path)"
        )
    try:
        state, _ = read_state(path, verified=False, published=False)
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if refused:
            raise CheckpointError(
                f"{path}: holds Python objects, not only tensors (torch's weights_only loader "
                f"refuses {refused.group(1)}); save torch.save(model.state_dict(), path) "
                "instead"
            ) from None
        first = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path}: not a readable state dict ({first}); save it with torch.save(model.state_dict(), path)"
        ) from None
    if not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise CheckpointError(
            f"{path}: holds entries that are not tensors; save it with torch.save(model.state_dict(), path)"
        )
    return state


def load_checked(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: Path, model_label: str) -> None:
    """``load_state_dict(strict=True)`` (with torchvision's version conversions); when it fails, one line from
    :func:`check_state`, or the first line of torch's own message."""
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        check_state(state, module, source=source, model_label=model_label)
        raise CheckpointError(
            f"{source}: does not load into {model_label} ({str(error).splitlines()[0][:200]})"
        ) from None
