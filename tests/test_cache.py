"""Artifact cache: hits, misses, invalidation, and atomic writes that survive interruption."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xai import cache as cache_module
from xai import serial
from xai.cache import ArtifactCache, atomic_write_text, make_key


@dataclass(frozen=True)
class Counted:
    values: np.ndarray
    label: str


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


def test_explain_key_covers_image_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing xai/data.py (how images are decoded and resized) invalidates the explain artifacts."""
    import shutil

    package = tmp_path / "xai"
    shutil.copytree(cache_module.PACKAGE_ROOT, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_module, "PACKAGE_ROOT", package)
    cache_module.code_version.cache_clear()
    before = cache_module.code_version("explain")
    with (package / "data.py").open("a") as stream:
        stream.write("\nDRAFT_ABOVE_PIXELS = 1\n")
    cache_module.code_version.cache_clear()
    assert cache_module.code_version("explain") != before
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


def _entry(tmp_path: Path, parts: dict[str, Any]) -> Path:
    return tmp_path / "stage" / make_key("stage", parts)


@pytest.mark.parametrize(
    "damage",
    ["truncate arrays", "flip a byte", "edit meta value", "break meta json", "drop checksums", "delete arrays"],
)
def test_damaged_entry_is_reported_in_one_line_and_recomputed(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = {"a": 1}
    ArtifactCache(tmp_path).get_or_compute("stage", parts, Computer(), Counted)
    entry = _entry(tmp_path, parts)
    arrays, meta = entry / "arrays.npz", entry / "meta.json"
    if damage == "truncate arrays":
        arrays.write_bytes(arrays.read_bytes()[:40])
    elif damage == "flip a byte":
        data = bytearray(arrays.read_bytes())
        data[-30] ^= 0xFF
        arrays.write_bytes(bytes(data))
    elif damage == "edit meta value":
        meta.write_text(meta.read_text().replace('"x1.0"', '"x9.0"'))
    elif damage == "break meta json":
        meta.write_text(meta.read_text()[:-5])
    elif damage == "drop checksums":
        import json

        body = json.loads(meta.read_text())
        del body["integrity"]
        meta.write_text(json.dumps(body))
    else:
        arrays.unlink()
    capsys.readouterr()
    store, compute = ArtifactCache(tmp_path), Computer()
    result = store.get_or_compute("stage", parts, compute, Counted)
    err = capsys.readouterr().err
    assert compute.calls == 1 and result.label == "x1.0" and len(store.stats.corrupt) == 1
    assert err.count("\n") == 1 and err.startswith(f"warning: cache entry {entry} is damaged")
    # The recomputed entry is sound: the next run hits it silently.
    again = ArtifactCache(tmp_path)
    again.get_or_compute("stage", parts, compute, Counted)
    assert compute.calls == 1 and not again.stats.corrupt and capsys.readouterr().err == ""


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real = Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(cache_module.StorageError) as raised:
        ArtifactCache(tmp_path).get_or_compute("stage", {"a": 1}, Computer(), Counted)
    message = str(raised.value)
    assert "\n" not in message and "disk is full" in message and str(_entry(tmp_path, {"a": 1})) in message
    assert list((tmp_path / "stage").iterdir()) == []  # no staging folder, no entry
    monkeypatch.setattr(Path, "write_bytes", real)
    real_fdopen = os.fdopen

    class FullStream:
        def __init__(self, handle: int, mode: str) -> None:
            self.stream = real_fdopen(handle, mode)

        def __enter__(self) -> FullStream:
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", FullStream)
    with pytest.raises(cache_module.StorageError, match="disk is full"):
        atomic_write_text(tmp_path / "page.md", "text")
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging", "CACHEDIR.TAG", "stage"]  # no page temp file
    assert list((tmp_path / ".staging").iterdir()) == []
    compute = Computer()
    ArtifactCache(tmp_path).get_or_compute("stage", {"a": 1}, compute, Counted)
    assert compute.calls == 1  # the next run computes the artifact the full disk lost


def test_same_key_saved_by_two_writers_keeps_one_valid_entry(tmp_path: Path) -> None:
    """The race of two processes: both computed the key; the second rename finds the first's entry in place."""
    parts = {"a": 1}
    first, second = ArtifactCache(tmp_path), ArtifactCache(tmp_path)
    arrays, meta = serial.to_parts(Computer()())
    first.save("stage", parts, arrays, meta)
    inode = (_entry(tmp_path, parts) / "meta.json").stat().st_ino
    second.save("stage", parts, arrays, meta)  # would fail with ENOTEMPTY on a plain os.replace
    assert (_entry(tmp_path, parts) / "meta.json").stat().st_ino == inode
    assert [p.name for p in (tmp_path / "stage").iterdir()] == [make_key("stage", parts)]
    ArtifactCache(tmp_path).read_entry(_entry(tmp_path, parts))
    # --force replaces the entry in place of keeping it.
    ArtifactCache(tmp_path, force=True).save("stage", parts, arrays, meta)
    assert (_entry(tmp_path, parts) / "meta.json").stat().st_ino != inode
    assert [p.name for p in (tmp_path / "stage").iterdir()] == [make_key("stage", parts)]


def test_staging_left_by_a_killed_writer_is_removed_once_stale(tmp_path: Path) -> None:
    import time

    store = ArtifactCache(tmp_path)
    store.get_or_compute("stage", {"a": 1}, Computer(), Counted)
    key = make_key("stage", {"b": 2})
    old, fresh = tmp_path / ".staging" / f"{key}.killed", tmp_path / ".staging" / f"{key}.writing"
    old_trash, legacy = tmp_path / ".staging" / f"{key}.trash.12.ab", tmp_path / "explain" / f".{key}.x1y2"
    for folder in (old, fresh, old_trash, legacy):
        folder.mkdir(parents=True)
        (folder / "arrays.npz").write_bytes(b"partial")
    hours_ago = time.time() - 2 * 3600
    for folder in (old, old_trash, legacy):
        os.utime(folder, (hours_ago, hours_ago))
    assert sorted(store.remove_stale_staging()) == sorted([old, old_trash, legacy])
    assert fresh.is_dir() and store.contains("stage", {"a": 1})  # a live writer's folder and entries stay


def test_stale_staging_cleanup_never_touches_what_it_did_not_write(tmp_path: Path) -> None:
    """cache_dir pointed at a home-like folder: an old ``project/.git`` (or any hidden folder) must survive."""
    import time

    foreign = [
        tmp_path / "project" / ".git",
        tmp_path / "stage" / ".config",
        tmp_path / ".staging-not-ours",
        tmp_path / "stage" / ".notakey.trash.1.ab",
        tmp_path / "project" / f".{make_key('stage', {})}.x",
    ]
    for folder in foreign:
        folder.mkdir(parents=True)
        (folder / "HEAD").write_text("ref: refs/heads/main\n")
    hours_ago = time.time() - 2 * 24 * 3600
    for folder in foreign:
        os.utime(folder, (hours_ago, hours_ago))
    store = ArtifactCache(tmp_path)
    assert store.remove_stale_staging() == []  # no marker yet: not known to be our cache
    store.get_or_compute("stage", {"a": 1}, Computer(), Counted)
    assert (tmp_path / "CACHEDIR.TAG").is_file()
    assert store.remove_stale_staging(older_than_s=0) == []
    assert all((folder / "HEAD").is_file() for folder in foreign)


def test_unreadable_entry_is_a_storage_error_not_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EACCES, EIO or EMFILE while reading an entry says so in one line and deletes nothing."""
    import errno

    parts = {"a": 1}
    ArtifactCache(tmp_path).get_or_compute("stage", parts, Computer(), Counted)
    real = Path.read_bytes
    for code in (errno.EACCES, errno.EIO, errno.EMFILE):

        def failing(self: Path, code: int = code) -> bytes:
            if self.name == "arrays.npz":
                raise OSError(code, os.strerror(code), str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", failing)
        compute = Computer()
        with pytest.raises(cache_module.StorageError) as raised:
            ArtifactCache(tmp_path).get_or_compute("stage", parts, compute, Counted)
        assert "\n" not in str(raised.value) and "cannot read" in str(raised.value) and compute.calls == 0
        monkeypatch.setattr(Path, "read_bytes", real)
        assert (_entry(tmp_path, parts) / "arrays.npz").is_file()  # nothing discarded


def test_damaged_entry_replaced_meanwhile_is_not_discarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process rewrote the entry between this read and the discard: its fresh copy stays."""
    parts = {"a": 1}
    ArtifactCache(tmp_path).get_or_compute("stage", parts, Computer(), Counted)
    real = ArtifactCache.read_entry
    replaced = []

    def read_then_replaced(entry: Path) -> Any:
        if not replaced:
            replaced.append(True)
            arrays, meta = serial.to_parts(Computer()())
            ArtifactCache(tmp_path, force=True).save("stage", parts, arrays, meta)  # the other process
            raise cache_module.CorruptEntryError("arrays.npz fails its checksum")
        return real(entry)

    monkeypatch.setattr(ArtifactCache, "read_entry", staticmethod(read_then_replaced))
    store = ArtifactCache(tmp_path)
    assert store.load("stage", parts) is None
    inode = (_entry(tmp_path, parts) / "meta.json").stat().st_ino
    monkeypatch.setattr(ArtifactCache, "read_entry", staticmethod(real))
    assert ArtifactCache(tmp_path).load("stage", parts) is not None  # the other process's copy is in place
    assert (_entry(tmp_path, parts) / "meta.json").stat().st_ino == inode
