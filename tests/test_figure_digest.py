"""The figure cache's keys: equal inputs give equal keys, any change to what a figure receives changes its key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from xai.report.figures import digest
from xai.report.figures.digest import InputDigest, UndigestibleInput, figure_key


def figure(*args, **kwargs) -> None:
    """Stands for a figure function (only its name and module enter the key)."""


@dataclass(frozen=True)
class Record:
    values: np.ndarray
    table: pd.DataFrame
    label: str


def _key(tmp_path: Path, *args, **kwargs) -> str:
    return figure_key(InputDigest(tmp_path), figure, args, kwargs)


def _record(**changes) -> Record:
    fields = {
        "values": np.arange(6, dtype=np.float32).reshape(2, 3),
        "table": pd.DataFrame({"method": ["a", "b"], "iou": [0.25, np.nan]}),
        "label": "x",
    }
    return Record(**{**fields, **changes})


def test_equal_inputs_have_equal_keys_and_every_change_shows(tmp_path: Path) -> None:
    base = _key(tmp_path, _record(), path=tmp_path / "a.png", k=5)
    assert base == _key(tmp_path, _record(), path=tmp_path / "a.png", k=5)  # other objects, same content
    changed = [
        _key(tmp_path, _record(values=np.arange(6, dtype=np.float64).reshape(2, 3)), path=tmp_path / "a.png", k=5),
        _key(tmp_path, _record(values=np.arange(6, dtype=np.float32).reshape(3, 2)), path=tmp_path / "a.png", k=5),
        _key(
            tmp_path,
            _record(table=pd.DataFrame({"method": ["a", "b"], "iou": [0.25, 0.5]})),
            path=tmp_path / "a.png",
            k=5,
        ),
        _key(
            tmp_path,
            _record(table=pd.DataFrame({"method": ["a", "c"], "iou": [0.25, np.nan]})),
            path=tmp_path / "a.png",
            k=5,
        ),
        _key(tmp_path, _record(label="y"), path=tmp_path / "a.png", k=5),
        _key(tmp_path, _record(), path=tmp_path / "b.png", k=5),
        _key(tmp_path, _record(), path=tmp_path / "a.png", k=10),
        _key(tmp_path, _record(), path=tmp_path / "a.png", k=5.0),
        _key(tmp_path, _record(), tmp_path / "a.png", k=5),
    ]
    assert len({base, *changed}) == len(changed) + 1


def test_plain_records_empty_arrays_and_nested_containers(tmp_path: Path) -> None:
    one = SimpleNamespace(map=np.zeros((0, 4)), names=("a", "b"), options={"k": [5, 10]})
    two = SimpleNamespace(map=np.zeros((0, 4)), names=("a", "b"), options={"k": [5, 11]})
    assert _key(tmp_path, one) == _key(tmp_path, SimpleNamespace(**vars(one)))
    assert _key(tmp_path, one) != _key(tmp_path, two)
    assert _key(tmp_path, {"a": 1, "b": 2}) != _key(tmp_path, {"b": 2, "a": 1})  # order can order a legend


def test_a_file_outside_the_docs_counts_with_its_size_and_time(tmp_path: Path) -> None:
    docs, probe = tmp_path / "docs", tmp_path / "probe.jpg"
    probe.write_bytes(b"one")
    first = figure_key(InputDigest(docs), figure, ([probe],), {})
    assert first == figure_key(InputDigest(docs), figure, ([probe],), {})
    probe.write_bytes(b"two!")
    os.utime(probe, ns=(1, 1))
    assert figure_key(InputDigest(docs), figure, ([probe],), {}) != first
    moved = tmp_path / "elsewhere"  # a figure's own output is keyed by its name in the docs, not where they are
    assert figure_key(InputDigest(docs), figure, (), {"path": docs / "a.png"}) == figure_key(
        InputDigest(moved), figure, (), {"path": moved / "a.png"}
    )


def test_the_code_and_library_versions_are_part_of_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "xai.explain.artifacts" in digest.reachable_modules("xai.report.figures.explain")
    explain = digest.reachable_modules("xai.report.figures.explain")
    assert {"xai.report.figures", "xai.explain.registry", "xai.explain.artifacts", "xai.cache"} <= set(explain)
    assert "xai.report.figures.jobs" not in explain  # the queue's own code draws nothing
    before = _key(tmp_path, 1)
    digest.code_digest.cache_clear()
    monkeypatch.setattr(digest, "library_versions", lambda: (("matplotlib", "0.0"),))
    try:
        assert _key(tmp_path, 1) != before
    finally:
        digest.code_digest.cache_clear()


def test_an_input_without_a_canonical_reading_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UndigestibleInput):
        _key(tmp_path, iter([1, 2]))
