"""Helpers shared by the comparison artifacts: read-only arrays, table (de)serialisation, stable CSV."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from xai.cache import Parts


def frozen_array(values: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy, so a frozen dataclass cannot be mutated through its arrays."""
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


def json_float(value: float) -> float | None:
    """JSON has no NaN: store it as null (``from_json_float`` restores it)."""
    value = float(value)
    return None if math.isnan(value) else value


def from_json_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def frame_to_parts(frame: pd.DataFrame, prefix: str) -> Parts:
    """Split a table into numeric column arrays and JSON text columns (``frame_from_parts`` inverts it)."""
    arrays: dict[str, np.ndarray] = {}
    text: dict[str, list[str]] = {}
    kinds: list[str] = []
    for position, column in enumerate(frame.columns):
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            arrays[f"{prefix}.{position}"] = series.to_numpy(copy=True)
            kinds.append("array")
        else:
            text[str(position)] = [str(value) for value in series.tolist()]
            kinds.append(f"text:{series.dtype}")
    meta = {"columns": [str(c) for c in frame.columns], "kinds": kinds, "text": text, "rows": len(frame)}
    return arrays, meta


def frame_from_parts(arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for position, (column, kind) in enumerate(zip(meta["columns"], meta["kinds"], strict=True)):
        if kind == "array":
            data[column] = np.asarray(arrays[f"{prefix}.{position}"])
        else:
            data[column] = pd.Series(meta["text"][str(position)], dtype=kind.removeprefix("text:"))
    frame = pd.DataFrame(data, columns=meta["columns"])
    if len(frame) != meta["rows"]:
        raise ValueError(f"table {prefix!r}: expected {meta['rows']} rows, got {len(frame)}")
    return frame


def table_csv(frame: pd.DataFrame) -> str:
    """CSV text: fixed float format, ``\\n`` line ends, no index: byte-identical for equal tables."""
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n", na_rep="")
