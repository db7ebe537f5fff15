"""``pip install .`` without the checkout (issue 18): the wheel carries the templates, the shipped configs and the
MkDocs scaffold, and an install of it runs from an empty folder: a tiny run renders the report, writes the
scaffold, and ``mkdocs build --strict`` builds it there; ``--config configs/quick.yaml`` reads the shipped copy.

The wheel is built from a copy of the files a build reads (so no stale ``build/`` of the checkout leaks in) and
installed with ``pip install --no-deps --target``; the runs use ``PYTHONPATH`` to that folder and check that
``xai`` is imported from it, not from the checkout or an editable install.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from xai.resources import SHIPPED, SHIPPED_DIR

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "xai", *SHIPPED)
"""What ``pip wheel`` reads from the checkout."""


def _shipped_files() -> list[str]:
    """Every file the wheel must carry under xai/_shipped/, as root-relative paths."""
    files = []
    for relative in SHIPPED:
        path = REPO / relative
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [p.relative_to(REPO).as_posix() for p in found if "__pycache__" not in p.parts]
    return files


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for relative in BUILD_INPUTS:
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / relative).is_dir():
            shutil.copytree(REPO / relative, source / relative, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / relative, source / relative)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(source)]
    # The venv's own setuptools when it can build a wheel by itself (70.1 has bdist_wheel; offline, faster); else
    # pip's isolated build environment, which downloads setuptools as pyproject.toml requires.
    if int(importlib.metadata.version("setuptools").split(".")[0]) >= 71:
        command.insert(4, "--no-build-isolation")
    built = _run(command, work, dict(os.environ))
    assert built.returncode == 0, built.stdout + built.stderr
    return next((work / "dist").glob("xai_report-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site-packages")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target)]
    done = _run([*command, str(wheel)], target, dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def _env(installed: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(installed), "NO_MKDOCS_2_WARNING": "true"}


def _generate(installed: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``xai-report`` command (pip wrote it under ``bin/``, for this interpreter)."""
    return _run([str(installed / "bin" / "xai-report"), *args], folder, _env(installed))


def _imported_from(installed: Path, folder: Path) -> Path:
    done = _run([sys.executable, "-c", "import xai; print(xai.__file__)"], folder, _env(installed))
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_the_wheel_carries_templates_configs_and_the_scaffold(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = _shipped_files()
    assert {"templates/home.md.j2", "configs/quick.yaml", "mkdocs.yml", "docs/stylesheets/extra.css"} <= set(shipped)
    missing = [name for name in shipped if f"xai/{SHIPPED_DIR}/{name}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert {"xai/manifest.tsv", "xai/compare/step_error.json", "xai/resources.py"} <= names
    assert not [name for name in names if name.startswith(("tests/", "templates/", "configs/", "docs/"))]


def test_an_installed_wheel_runs_from_an_empty_folder(installed: Path, tmp_path: Path, mirror: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    config = {
        "name": "tiny",
        "weights": "random",
        "images": "task",
        "max_images": 1,
        # explain alone: with every stage listed, --only explain would look for the dissection's cached probe
        # set (Broden) to load the other stages' results, and fetch it
        "stages": ["explain"],
        "explain": {
            "methods": ["lime", "gradcam"],
            "batch_size": 8,
            "lime": {"num_samples": 16, "stability_seeds": 1, "top_labels": 1},
        },
    }
    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    # the install runs, not the checkout or an editable install of it
    assert _imported_from(installed, folder) == installed / "xai" / "__init__.py"
    done = _generate(installed, folder, "--config", "tiny.yaml", "--only", "explain", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    docs = folder / "docs"
    assert len(list((docs / "explanations").glob("image-*.md"))) == 1
    for page in ("index.md", "methods.md", "explanations/index.md", "dissection/index.md", "comparison/index.md"):
        assert (docs / page).is_file(), page
    assert "| Config file | tiny.yaml |" in (docs / "index.md").read_text()
    # the scaffold, so that the README's `mkdocs serve` works here
    assert (folder / "mkdocs.yml").read_text() == (REPO / "mkdocs.yml").read_text()
    assert (docs / "stylesheets" / "extra.css").read_text() == (REPO / "docs/stylesheets/extra.css").read_text()
    assert "MkDocs scaffold" in done.stdout
    built = _run([sys.executable, "-m", "mkdocs", "build", "--strict"], folder, _env(installed))
    assert built.returncode == 0, built.stdout + built.stderr
    assert (folder / "site" / "explanations" / "index.html").is_file()


def test_a_shipped_config_is_found_from_any_folder(installed: Path, tmp_path: Path, mirror: Path) -> None:
    done = _generate(installed, tmp_path, "--config", "configs/quick.yaml", "--plan")
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = installed / "xai" / SHIPPED_DIR / "configs" / "quick.yaml"
    assert f"config: no configs/quick.yaml here; reading the copy shipped with xai-report: {shipped}" in done.stderr
    assert not (tmp_path / "mkdocs.yml").exists()  # --plan writes nothing
