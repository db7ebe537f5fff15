"""``generate.py`` as real processes: two runs on one cache at once, and a run killed with SIGKILL mid-explain.

Each run is a tiny config (ResNet50 with seeded random weights, two 80x100 images, LIME with 10 samples and
Grad-CAM, 2-step faithfulness, no sanity check), so a run costs a few seconds, most of it importing torch. The
reference is one uninterrupted run; the others must end with byte-identical CSVs and the same cache entries.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from xai.cache import ArtifactCache

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow]


def _setup(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a_first", "b_second"):
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(images / f"{name}.png")
    config = {
        "name": "processes",
        "weights": "random",
        "stages": ["explain", "compare"],
        "output_dir": str(root / "docs"),
        "cache_dir": str(root / "cache"),
        "explain": {
            "methods": ["lime", "gradcam"],
            "batch_size": 16,
            "lime": {"num_samples": 10, "stability_seeds": 1},
        },
        "compare": {"faithfulness_steps": 2, "sanity_check": False},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, images


def _start(config: Path, images: Path, output: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "generate.py"), "--config", str(config), "--images", str(images), "--quiet"]
    if output is not None:
        command += ["--output", str(output)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str]) -> tuple[str, int]:
    """stderr and how many artifacts the run computed (its ``Cache: ... computed`` line)."""
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    assert "Traceback" not in err, err
    line = next(line for line in out.splitlines() if line.startswith("Cache: "))
    return err, int(line.split()[-2])


def _csvs(docs: Path) -> dict[str, bytes]:
    return {p.relative_to(docs).as_posix(): p.read_bytes() for p in sorted(docs.rglob("*.csv"))}


def _visible(path: Path, root: Path) -> bool:
    """Not inside a hidden folder: staging and trash folders hold meta.json files that are no entries."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _entries(cache: Path) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in cache.rglob("meta.json") if _visible(p, cache)}


def _computed(docs: Path) -> tuple[int, int]:
    row = next(line for line in (docs / "index.md").read_text().splitlines() if line.startswith("| Cache |"))
    hits, computed = (int(word) for word in row.replace("|", " ").split() if word.isdigit())
    return hits, computed


def _stopped(process: subprocess.Popen[str]) -> bool:
    return Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def _stop_mid_save(process: subprocess.Popen[str], cache: Path) -> tuple[str, Path]:
    """SIGSTOP ``process`` while it saves an entry that is not in place yet: (the key, its staging folder)."""
    staging, deadline = cache / ".staging", time.monotonic() + 240
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run saved no entry"
        for folder in staging.iterdir() if staging.is_dir() else []:
            key = folder.name.split(".")[0]
            if ".trash." in folder.name:
                continue
            process.send_signal(signal.SIGSTOP)
            while not _stopped(process):
                time.sleep(0.001)
            if folder.is_dir() and not list(cache.glob(f"*/{key}/meta.json")):
                return key, folder
            process.send_signal(signal.SIGCONT)  # it had already put that entry in place: catch the next one
        time.sleep(0.001)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("reference")
    config, images = _setup(root)
    err, computed = _finish(_start(config, images))
    assert "warning" not in err
    csvs = _csvs(root / "docs")
    assert csvs, "the compare stage wrote no CSV"
    keys = set(_entries(root / "cache"))
    assert computed == len(keys)
    return {
        "csvs": csvs,
        "keys": keys,
        "files": sorted(p.relative_to(root / "docs").as_posix() for p in (root / "docs").rglob("*")),
    }


def test_two_concurrent_runs_on_one_cache_agree_with_a_single_run(tmp_path: Path, reference: dict[str, object]) -> None:
    """The same command in two terminals: one cache, one output folder. The race is made certain: the first run
    is frozen (SIGSTOP) mid-save of an entry, the second computes and saves that same entry, then the first
    resumes and both run on together, so at least one key is computed by both."""
    config, images = _setup(tmp_path)
    cache = tmp_path / "cache"
    first = _start(config, images)
    key, held = _stop_mid_save(first, cache)
    try:
        second = _start(config, images)
        deadline = time.monotonic() + 240
        # The second run computes the held key too: its own staging folder for it, or the entry in place.
        while not (
            list(cache.glob(f"*/{key}/meta.json"))
            or [p for p in (cache / ".staging").glob(f"{key}.*") if p != held and ".trash." not in p.name]
        ):
            assert second.poll() is None, second.communicate()
            assert time.monotonic() < deadline, "the second run never reached the held key"
            time.sleep(0.001)
    finally:
        first.send_signal(signal.SIGCONT)
    (err_1, computed_1), (err_2, computed_2) = _finish(first), _finish(second)
    assert "warning" not in err_1 + err_2
    entries = _entries(cache)
    assert set(entries) == reference["keys"] and key in entries
    assert computed_1 + computed_2 > len(entries)  # a real race: some key computed by both
    for entry in entries.values():
        ArtifactCache.read_entry(entry)  # every entry passes its checksums
    assert not list((cache / ".staging").iterdir())  # no staging or trash left behind
    docs = tmp_path / "docs"
    assert _csvs(docs) == reference["csvs"]
    assert sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*")) == reference["files"]  # no temp file


def test_run_killed_mid_explain_resumes_to_identical_tables(tmp_path: Path, reference: dict[str, object]) -> None:
    """Also a damaged entry: one survivor's arrays.npz is truncated before the rerun, which must say so in one
    line and recompute it with the missing ones."""
    config, images = _setup(tmp_path)
    cache = tmp_path / "cache"
    process = _start(config, images)
    deadline = time.monotonic() + 240
    # The first explain artifact is complete (a staging folder's meta.json is not).
    while not [p for p in (cache / "explain").glob("*/meta.json") if _visible(p, cache)]:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no explain artifact appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    survivors = {key: (entry / "meta.json").stat().st_ino for key, entry in _entries(cache).items()}
    assert 0 < len(survivors) < len(reference["keys"])
    for entry in _entries(cache).values():
        ArtifactCache.read_entry(entry)  # whatever the kill interrupted left no entry half-written
    damaged_key = sorted(survivors)[0]
    damaged = _entries(cache)[damaged_key] / "arrays.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    err, computed = _finish(_start(config, images))
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(damaged.parent) in warnings[0] and "recomputing" in warnings[0]
    entries = _entries(cache)
    assert set(entries) == reference["keys"]
    # Finished entries were kept as they were; the rerun computed exactly the missing and the damaged ones.
    kept = {key: inode for key, inode in survivors.items() if key != damaged_key}
    assert {key: (entries[key] / "meta.json").stat().st_ino for key in kept} == kept
    hits, computed_on_page = _computed(tmp_path / "docs")
    assert computed == computed_on_page == len(reference["keys"]) - len(kept) and hits >= len(kept)
    assert _csvs(tmp_path / "docs") == reference["csvs"]
