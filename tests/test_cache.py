"""Artifact cache: hits, misses, invalidation, and atomic writes that survive interruption."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xai import cache as cache_module
from xai.cache import ArtifactCache, atomic_write_text, make_key


@dataclass(frozen=True)
class Counted:
    values: np.ndarray
    label: str

    def to_parts(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"values": self.values}, {"label": self.label}

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Counted:
        return cls(arrays["values"], meta["label"])


class Computer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, scale: float = 1.0) -> Counted:
        self.calls += 1
        return Counted(np.arange(4.0) * scale, f"x{scale}")


def test_hit_after_miss_computes_once(tmp_path: Path) -> None:
    store, compute = ArtifactCache(tmp_path), Computer()
    parts = {"image": "abc", "seed": 0}
    first = store.get_or_compute("stage", parts, compute, Counted)
    second = ArtifactCache(tmp_path).get_or_compute("stage", parts, compute, Counted)
    assert compute.calls == 1
    np.testing.assert_array_equal(first.values, second.values)
    assert first.label == second.label == "x1.0"


def test_changed_parameter_misses_and_others_still_hit(tmp_path: Path) -> None:
    store, compute = ArtifactCache(tmp_path), Computer()
    for seed in (0, 1):
        store.get_or_compute("stage", {"image": "abc", "seed": seed}, compute, Counted)
    store.get_or_compute("stage", {"image": "abc", "seed": 1}, compute, Counted)
    store.get_or_compute("stage", {"image": "abd", "seed": 1}, compute, Counted)
    assert compute.calls == 3
    assert len(store.stats.hits) == 1 and len(store.stats.misses) == 3


def test_force_recomputes(tmp_path: Path) -> None:
    compute = Computer()
    ArtifactCache(tmp_path).get_or_compute("stage", {"a": 1}, compute, Counted)
    ArtifactCache(tmp_path, force=True).get_or_compute("stage", {"a": 1}, compute, Counted)
    assert compute.calls == 2


def test_key_is_order_independent_and_sensitive_to_values() -> None:
    assert make_key("s", {"a": 1, "b": [1, 2]}) == make_key("s", {"b": (1, 2), "a": 1})
    assert make_key("s", {"a": 1}) != make_key("s", {"a": 2}) != make_key("t", {"a": 2})


def test_code_version_follows_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkg"
    (package / "stage").mkdir(parents=True)
    (package / "stage" / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(cache_module, "PACKAGE_ROOT", package)
    cache_module.code_version.cache_clear()
    before = cache_module.code_version("stage")
    (package / "stage" / "a.py").write_text("x = 2\n")
    cache_module.code_version.cache_clear()
    assert cache_module.code_version("stage") != before
    cache_module.code_version.cache_clear()


def test_failed_compute_leaves_no_entry(tmp_path: Path) -> None:
    store = ArtifactCache(tmp_path)

    def crash() -> Counted:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.get_or_compute("stage", {"a": 1}, crash, Counted)
    assert not store.contains("stage", {"a": 1})


def test_interrupted_save_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArtifactCache(tmp_path)
    store.get_or_compute("stage", {"a": 0}, Computer(), Counted)

    def interrupted_savez(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        store.get_or_compute("stage", {"a": 1}, Computer(), Counted)
    monkeypatch.undo()
    assert not store.contains("stage", {"a": 1}) and store.contains("stage", {"a": 0})
    leftovers = [p for p in (tmp_path / "stage").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    # The next run resumes: the finished entry is a hit, the interrupted one is computed.
    compute = Computer()
    for a in (0, 1):
        ArtifactCache(tmp_path).get_or_compute("stage", {"a": a}, compute, Counted)
    assert compute.calls == 1


def test_atomic_text_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "page.md"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
