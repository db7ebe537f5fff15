"""Where the shipped files are read (issue 18): a checkout reads its root files; a config path that does not exist
here falls back to the shipped config of that name; the MkDocs scaffold never overwrites a user's file. The
installed-wheel side is tests/test_packaging.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xai import resources
from xai.pipeline import write_site_scaffold

REPO = Path(__file__).resolve().parents[1]


def test_a_checkout_reads_its_root_files() -> None:
    from xai.report.page import TEMPLATE_DIR

    assert resources.checkout_root() == REPO and TEMPLATE_DIR == REPO / "templates"
    assert resources.shipped_configs() == ["assignment.yaml", "quick.yaml", "smoke.yaml"]


def test_a_config_here_wins_over_the_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "quick.yaml").write_text("name: mine\n")
    source = resources.resolve_config(Path("configs/quick.yaml"))
    assert (source.path, source.shown, source.shipped) == (Path("configs/quick.yaml"), "configs/quick.yaml", False)


@pytest.mark.parametrize("given", ["configs/quick.yaml", "quick.yaml"])
def test_a_missing_config_falls_back_to_the_shipped_one(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = resources.resolve_config(Path(given))
    assert source.path == REPO / "configs" / "quick.yaml" and source.shipped
    assert source.shown == f"{given} (the copy shipped with xai-report)"


@pytest.mark.parametrize("given", ["other/quick.yaml", "configs/nope.yaml", "/nowhere/configs/quick.yaml"])
def test_no_fallback_for_other_folders_or_names(given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = resources.resolve_config(Path(given))
    assert (source.path, source.shipped) == (Path(given), False)


def test_the_scaffold_is_the_shipped_mkdocs_yml_for_docs(tmp_path: Path) -> None:
    written = write_site_scaffold(tmp_path / "docs", tmp_path)
    stylesheets = tmp_path / "docs" / "stylesheets"
    assert written == [tmp_path / "mkdocs.yml", stylesheets / "extra.css", stylesheets / "report.js"]
    assert (tmp_path / "mkdocs.yml").read_text() == (REPO / "mkdocs.yml").read_text()
    assert write_site_scaffold(tmp_path / "docs", tmp_path) == []  # nothing rewritten on the next run


def test_the_scaffold_points_at_another_output_folder(tmp_path: Path) -> None:
    write_site_scaffold(tmp_path / "out" / "site-sources", tmp_path)
    assert yaml.safe_load((tmp_path / "mkdocs.yml").read_text().replace("!ENV", ""))["docs_dir"] == "out/site-sources"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_site_scaffold(tmp_path / "report", elsewhere)  # outside the folder: an absolute docs_dir
    docs_dir = yaml.safe_load((elsewhere / "mkdocs.yml").read_text().replace("!ENV", ""))["docs_dir"]
    assert docs_dir == (tmp_path / "report").resolve().as_posix()


def test_a_users_own_files_are_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text("site_name: mine\n")
    (tmp_path / "docs" / "stylesheets").mkdir(parents=True)
    (tmp_path / "docs" / "stylesheets" / "extra.css").write_text("/* mine */\n")
    # only the file the user lacks is added
    assert write_site_scaffold(tmp_path / "docs", tmp_path) == [tmp_path / "docs" / "stylesheets" / "report.js"]
    assert (tmp_path / "mkdocs.yml").read_text() == "site_name: mine\n"
    assert (tmp_path / "docs" / "stylesheets" / "extra.css").read_text() == "/* mine */\n"


def test_an_unwritable_folder_is_a_note_not_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folders would go")
    assert write_site_scaffold(blocked / "docs", blocked / "sub") == []
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 3 and all(note.startswith("note: no MkDocs scaffold written: ") for note in notes)
