"""The smoke-site fixture's machinery (tests/helpers/smoke.py) with the run stubbed out: the environment it builds
in is undone afterwards, the site is built once and read by every later caller, a failed build fails the others
with its traceback, and the rerun snapshot sees an entry rewritten with identical bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import smoke


def test_the_build_environment_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XAI_MIRROR", raising=False)
    seen: dict[str, str] = {}

    def fake_run_twice(config: Path, work: Path) -> dict[str, object]:
        seen.update(mirror=os.environ["XAI_MIRROR"], cwd=os.getcwd(), data=os.environ["XAI_DATA_DIR"])
        return {"cache_before": {}, "cache_after": {}, "tables_before": {}, "tables_after": {}}

    monkeypatch.setattr(smoke, "run_twice", fake_run_twice)
    monkeypatch.setattr("tests.helpers.site_fixture.build_docs_site", lambda docs, site: None)
    data_dir, cwd = os.environ["XAI_DATA_DIR"], os.getcwd()
    smoke._build(tmp_path, tmp_path / "mirror")
    assert seen == {"mirror": str(tmp_path / "mirror"), "cwd": str(tmp_path), "data": str(tmp_path / "home/downloads")}
    assert "XAI_MIRROR" not in os.environ and os.environ["XAI_DATA_DIR"] == data_dir and os.getcwd() == cwd


class _Factory:
    """A stand-in for pytest's TempPathFactory: one fixed base folder."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def getbasetemp(self) -> Path:
        return self.base


def test_built_once_and_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Path] = []

    def fake_build(work: Path, mirror: Path) -> dict[str, object]:
        builds.append(work)
        return {"cache_before": {"a": [1, 2]}, "cache_after": {"a": [1, 2]}, "tables_before": {}, "tables_after": {}}

    monkeypatch.setattr(smoke, "_build", fake_build)
    monkeypatch.setattr(smoke, "mirror_path", lambda: tmp_path / "mirror")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    first = smoke.shared_smoke_site(_Factory(tmp_path))  # type: ignore[arg-type]
    second = smoke.shared_smoke_site(_Factory(tmp_path))  # type: ignore[arg-type]
    assert builds == [tmp_path / "smoke-site"] and first == second and first.cache_before == {"a": [1, 2]}


def test_a_failed_build_fails_the_other_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_build(work: Path, mirror: Path) -> dict[str, object]:
        raise RuntimeError("planted failure")

    monkeypatch.setattr(smoke, "_build", broken_build)
    monkeypatch.setattr(smoke, "mirror_path", lambda: tmp_path / "mirror")
    with pytest.raises(RuntimeError, match="planted failure"):
        smoke.shared_smoke_site(_Factory(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(pytest.fail.Exception, match="planted failure"):
        smoke.shared_smoke_site(_Factory(tmp_path))  # type: ignore[arg-type]


def test_no_mirror_skips_or_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smoke, "mirror_path", lambda: None)
    monkeypatch.delenv("XAI_REQUIRE_SMOKE", raising=False)
    with pytest.raises(pytest.skip.Exception):
        smoke.shared_smoke_site(_Factory(tmp_path))  # type: ignore[arg-type]
    monkeypatch.setenv("XAI_REQUIRE_SMOKE", "1")
    with pytest.raises(pytest.fail.Exception, match="XAI_REQUIRE_SMOKE=1"):
        smoke.shared_smoke_site(_Factory(tmp_path))  # type: ignore[arg-type]


def test_the_snapshot_sees_an_entry_rewritten_with_the_same_bytes(tmp_path: Path) -> None:
    entry = tmp_path / "cache" / "explain" / "k1" / "meta.json"
    entry.parent.mkdir(parents=True)
    entry.write_text("{}")
    before = smoke.cache_snapshot(tmp_path / "cache")
    assert smoke.cache_snapshot(tmp_path / "cache") == before
    time.sleep(0.01)
    replacement = entry.with_name(".meta.json.tmp")  # as atomic_write_bytes saves: a new file renamed into place
    replacement.write_text("{}")
    replacement.replace(entry)
    assert smoke.cache_snapshot(tmp_path / "cache") != before
