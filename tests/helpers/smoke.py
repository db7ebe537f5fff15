"""The smoke site: ``generate.py`` with configs/smoke.yaml (seeded random weights) run twice, then
``mkdocs build --strict``. Built once per test run and read by every test that needs the real report (the smoke,
link-check and browser tests), across pytest-xdist workers: the first worker to ask builds it under the run's
shared temporary folder while holding a file lock; the others wait on the lock and read the record it wrote.

The record keeps what the second run saw, for the rerun test: every cache file's modification time and size
before and after it (a recompute rewrites an entry, a new key adds one) and the CSV tables' hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.helpers.mirror import mirror_path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SmokeSite:
    work: Path
    docs: Path
    """The generated site sources."""
    site: Path
    """The strict MkDocs build of ``docs``."""
    cache_before: dict[str, list[int]]
    """Cache file (relative path) -> [mtime_ns, size] after the first run."""
    cache_after: dict[str, list[int]]
    """The same after the second run, which had nothing to compute."""
    tables_before: dict[str, str]
    """CSV table (relative to ``docs``) -> sha256, after the first run."""
    tables_after: dict[str, str]


def cache_snapshot(cache: Path) -> dict[str, list[int]]:
    """Every file under ``cache``: relative path -> [mtime_ns, size]. An entry recomputed and saved again gets a
    new file (atomic rename), so a new modification time, even with identical bytes."""
    snapshot = {}
    for path in sorted(cache.rglob("*")):
        if path.is_file():
            status = path.stat()
            snapshot[path.relative_to(cache).as_posix()] = [status.st_mtime_ns, status.st_size]
    return snapshot


def table_hashes(docs: Path) -> dict[str, str]:
    return {
        path.relative_to(docs).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(docs.rglob("*.csv"))
    }


def run_twice(config: Path, work: Path, extra_args: tuple[str, ...] = ()) -> dict[str, object]:
    """``generate.py --config config`` twice in ``work`` (the working folder, so a scaffold lands there); what
    the cache and the tables looked like after each run. ``config`` must put its cache in ``work/cache`` and its
    output in ``work/docs``."""
    from xai.cli import main

    cache, docs = work / "cache", work / "docs"
    assert main(["--config", str(config), "--quiet", *extra_args]) == 0
    before, tables_before = cache_snapshot(cache), table_hashes(docs)
    assert main(["--config", str(config), "--quiet", *extra_args]) == 0
    return {
        "cache_before": before,
        "cache_after": cache_snapshot(cache),
        "tables_before": tables_before,
        "tables_after": table_hashes(docs),
    }


def _build(work: Path, mirror: Path) -> dict[str, object]:
    from tests.helpers.site_fixture import build_docs_site

    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update(output_dir=str(work / "docs"), cache_dir=str(work / "cache"))
    path = work / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    home = work / "home"
    with pytest.MonkeyPatch.context() as patch:  # nothing leaks to the tests that run after this one
        patch.setenv("XAI_MIRROR", str(mirror))
        patch.setenv("TORCH_HOME", str(home / "torch"))
        patch.setenv("XAI_DATA_DIR", str(home / "downloads"))
        patch.setenv("HF_HOME", str(home / "hf"))
        patch.chdir(work)
        observed = run_twice(path, work)
    build_docs_site(work / "docs", work / "site")
    return observed


def shared_smoke_site(tmp_path_factory: pytest.TempPathFactory) -> SmokeSite:
    """The smoke site of this test run, built by whichever worker asks first (see the module docstring)."""
    from filelock import FileLock

    mirror = mirror_path()
    if mirror is None:
        reason = "the smoke site needs the data mirror (../shared/data or $XAI_MIRROR)"
        if os.environ.get("XAI_REQUIRE_SMOKE") == "1":  # CI: the real-site checks must run, never skip
            pytest.fail(f"XAI_REQUIRE_SMOKE=1 but {reason}")
        pytest.skip(reason)
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # xdist: the run's folder
    work = shared / "smoke-site"
    record = work / "record.json"
    with FileLock(str(shared / "smoke-site.lock")):
        if not record.is_file():
            work.mkdir(parents=True, exist_ok=True)
            try:
                observed = _build(work, mirror)
            except BaseException:
                record.write_text(json.dumps({"error": traceback.format_exc()}))
                raise
            record.write_text(json.dumps(observed))
    observed = json.loads(record.read_text())
    if "error" in observed:
        pytest.fail(f"building the smoke site failed in another worker:\n{observed['error']}")
    return SmokeSite(work, work / "docs", work / "site", **observed)
