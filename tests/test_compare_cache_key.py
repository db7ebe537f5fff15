"""The compare artifacts' cache key covers every module whose change could alter them."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import xai
import xai.cache as cache_module
from xai.config import Config
from xai.stages import compare as stage

PACKAGE = Path(xai.__file__).parent


def _key() -> str:
    cache_module.code_version.cache_clear()
    return stage._base_parts(SimpleNamespace(config=Config()), "sha")["code"]


@pytest.mark.parametrize(
    "edited",
    [
        "stages/compare.py",
        "data.py",
        "compare/stats.py",
        "compare/layer_groups.py",
        "architectures.py",
        "classifiers.py",
        "explain/lime_image.py",
        "explain/cams/base.py",
        "models.py",
        "config.py",
    ],
)
def test_editing_a_module_the_compare_artifacts_depend_on_changes_their_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edited: str
) -> None:
    copy = tmp_path / "xai"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_module, "PACKAGE_ROOT", copy)
    before = _key()
    assert _key() == before
    target = copy / edited
    target.write_text(target.read_text() + "\n# edited\n")
    assert _key() != before
    cache_module.code_version.cache_clear()


def test_every_module_the_compare_stage_imports_is_hashed() -> None:
    """Import what the compare stage imports (also lazily, inside its functions) in a fresh interpreter; every
    xai module loaded must be part of the key's source hash, except the package version (hashed as a string)
    and the cache and its serialiser (their on-disk format is versioned by CACHE_FORMAT in every key)."""
    lazily = [
        "xai.stages.compare",
        "xai.compare",
        "xai.compare.layer_groups",
        "xai.architectures",
        "xai.classifiers",
        "xai.explain.cams.base",
        "xai.explain.lime_image",
        "xai.models",
        "xai.stages.explain",
        "xai.data",
        "xai.config",
    ]
    code = (
        f"import importlib, sys\nfor m in {lazily!r}: importlib.import_module(m)\n"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('xai') and m.__file__))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent
    ).stdout.split()
    covered = set()
    for name in (*cache_module.SHARED_SOURCES, "compare", "explain"):
        target = PACKAGE / name
        covered |= set(target.rglob("*.py")) if target.is_dir() else {target.with_suffix(".py")}
    exempt = {PACKAGE / "__init__.py", PACKAGE / "cache.py", PACKAGE / "serial.py"}
    missing = [path for path in map(Path, loaded) if path.resolve() not in {p.resolve() for p in covered | exempt}]
    assert not missing
    importlib.invalidate_caches()
