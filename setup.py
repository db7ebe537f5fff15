"""The wheel's copy of the root files the package reads at run time (templates, example configs, the MkDocs
scaffold): setuptools' ``build_py`` plus one step that copies :data:`xai.resources.SHIPPED` into
``xai/_shipped/``, where :mod:`xai.resources` finds them through ``importlib.resources``.

Everything else is declared in pyproject.toml. An editable install skips the copy: it runs from the checkout,
whose root files :mod:`xai.resources` reads directly.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _resources():
    # xai/resources.py on its own: importing the package would need its dependencies inside the build env.
    spec = importlib.util.spec_from_file_location("_xai_resources", ROOT / "xai" / "resources.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class BuildPyWithShippedFiles(build_py):
    """``build_py``, then the root files the package reads copied under ``xai/_shipped/`` (same relative paths)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        resources = _resources()
        target = Path(self.build_lib) / "xai" / resources.SHIPPED_DIR
        for relative in resources.SHIPPED:
            source, destination = ROOT / relative, target / relative
            if not source.exists():
                raise FileNotFoundError(f"{source}: shipped with the wheel (xai/resources.py SHIPPED) but missing")
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", ".*")
                shutil.copytree(source, destination, ignore=ignore, dirs_exist_ok=True)
            else:
                shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
