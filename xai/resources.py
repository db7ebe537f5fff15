"""The files the package reads besides its code: the report's templates, the example configs and the MkDocs
scaffold (``mkdocs.yml`` and the stylesheet it names).

They live at the repository root (``templates/``, ``configs/``, ``mkdocs.yml``, ``docs/stylesheets/``). In a
checkout, editable install or not, those root files are what is read, so an edit shows at once. A wheel carries
copies of them under ``xai/_shipped/`` (``setup.py`` copies :data:`SHIPPED` there when it builds one), read through
:mod:`importlib.resources`.

This module imports nothing of the package: ``setup.py`` loads it on its own to learn :data:`SHIPPED`.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from pathlib import Path

SHIPPED = ("templates", "configs", "mkdocs.yml", "docs/stylesheets")
"""Root-relative paths the wheel carries, each under :data:`SHIPPED_DIR` at the same relative path."""
SHIPPED_DIR = "_shipped"
"""The folder inside the installed ``xai`` package that holds the copies."""
SCAFFOLD = "mkdocs.yml"
STYLESHEETS = "docs/stylesheets"
"""The scaffold's stylesheet folder; ``mkdocs.yml`` names its files relative to ``docs_dir``."""

_CHECKOUT = Path(__file__).resolve().parents[1]


def checkout_root() -> Path | None:
    """The repository root when this package runs from a checkout (its ``pyproject.toml`` names xai-report and
    ``templates/`` is beside it), else ``None`` (an installed wheel)."""
    pyproject = _CHECKOUT / "pyproject.toml"
    ours = re.compile(r'^name\s*=\s*"xai-report"', re.MULTILINE)
    if (_CHECKOUT / "templates").is_dir() and pyproject.is_file() and ours.search(pyproject.read_text("utf-8")):
        return _CHECKOUT
    return None


def shipped_root() -> Path:
    """Where the shipped files are read: the checkout's root, else the installed package's ``_shipped/``."""
    root = checkout_root()
    if root is not None:
        return root
    installed = importlib.resources.files("xai").joinpath(SHIPPED_DIR)
    if not isinstance(installed, Path) or not installed.is_dir():
        # A wheel unpacked on disk gives a Path; a zip import or a build without setup.py's step does not.
        raise FileNotFoundError(
            f"xai-report's shipped files (templates, configs) are not on disk at {installed}; reinstall it with "
            "'pip install xai-report' (or 'pip install .' from a checkout), not from a zip"
        )
    return installed


def shipped_path(relative: str) -> Path:
    """A shipped file or folder by its root-relative path, e.g. ``templates`` or ``configs/quick.yaml``."""
    return shipped_root() / relative


def template_dir() -> Path:
    """The Jinja2 templates of the report's pages."""
    return shipped_path("templates")


def shipped_configs() -> list[str]:
    """The example configs' file names (``assignment.yaml``, ``quick.yaml``, ...), sorted."""
    return sorted(path.name for path in shipped_path("configs").glob("*.yaml"))


@dataclass(frozen=True)
class ConfigSource:
    """The config file a run reads, and how the report names it."""

    path: Path
    """The file to read."""
    shown: str
    """The file as the report names it: the path given, marked when the shipped copy stood in for it (never an
    absolute local path)."""
    shipped: bool = False
    """True when the given path did not exist and the shipped config of that name was read instead."""


def resolve_config(given: Path) -> ConfigSource:
    """``given`` if it exists; else, when it is a bare name or ``configs/<name>`` of a shipped config (the
    README's ``--config configs/quick.yaml`` run from any folder), that shipped config; else ``given`` (whose
    loading then names the missing file)."""
    if given.exists() or given.is_absolute() or given.parent not in (Path(), Path("configs")):
        return ConfigSource(given, str(given))
    shipped = shipped_path("configs") / given.name
    if not shipped.is_file():
        return ConfigSource(given, str(given))
    return ConfigSource(shipped, f"{given} (the copy shipped with xai-report)", True)


def site_scaffold(docs_dir: Path, folder: Path) -> dict[Path, str]:
    """The files that make ``folder`` a MkDocs project for the report written to ``docs_dir``: the shipped
    ``mkdocs.yml`` (its ``docs_dir`` pointed at ``docs_dir``, relative to ``folder`` when inside it) and the
    stylesheets it names, under ``docs_dir``. Keys are absolute target paths; the caller writes those missing."""
    try:
        docs = docs_dir.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:  # outside the folder: MkDocs takes an absolute docs_dir
        docs = docs_dir.resolve().as_posix()
    text = shipped_path(SCAFFOLD).read_text(encoding="utf-8")
    line = re.search(r"^docs_dir: *(.*?) *$", text, flags=re.MULTILINE)
    if line is None:
        raise ValueError(f"{shipped_path(SCAFFOLD)}: no top-level 'docs_dir:' line to point at the report")
    if line.group(1).strip("\"'") != docs:  # the shipped file as it is when the report goes to its docs_dir
        text = text[: line.start(1)] + json.dumps(docs) + text[line.end(1) :]
    files = {folder.resolve() / SCAFFOLD: text}
    stylesheets = shipped_path(STYLESHEETS)
    for sheet in sorted(stylesheets.rglob("*")):
        if sheet.is_file():
            files[docs_dir.resolve() / "stylesheets" / sheet.relative_to(stylesheets)] = sheet.read_text(
                encoding="utf-8"
            )
    return files
