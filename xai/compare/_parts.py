"""Helpers shared by the comparison artifacts: read-only arrays and stable CSV (their storage is :mod:`xai.serial`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def frozen_array(values: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy, so a frozen dataclass cannot be mutated through its arrays."""
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


def table_csv(frame: pd.DataFrame) -> str:
    """CSV text: fixed float format, ``\\n`` line ends, no index: byte-identical for equal tables."""
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n", na_rep="")
