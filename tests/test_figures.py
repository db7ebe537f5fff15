"""save_figure: the bytes matplotlib writes to a file, written once and atomically; a full disk is one line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from xai import cache as cache_module
from xai.report.figures import DPI, save_figure


def _figure() -> Figure:
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.imshow(np.random.default_rng(0).random((8, 8)), cmap="viridis")
    axes.set_title("seeded")
    return figure


def _is_open(figure: Figure) -> bool:
    return figure.number in plt.get_fignums()


def test_bytes_equal_matplotlib_writing_the_file_itself(tmp_path: Path) -> None:
    """The report's figures must not change a byte when saved through memory: same format, same metadata."""
    direct = tmp_path / "direct.png"
    reference = _figure()
    reference.savefig(direct, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(reference)
    figure = _figure()
    saved = save_figure(figure, tmp_path / "assets" / "saved.png")
    assert saved.read_bytes() == direct.read_bytes()
    assert not _is_open(figure)


def test_figure_on_a_full_disk_is_one_line_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(source: str, target: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module.os, "replace", full)
    figure = _figure()
    with pytest.raises(cache_module.StorageError, match="disk is full") as raised:
        save_figure(figure, tmp_path / "assets" / "plot.png")
    assert "\n" not in str(raised.value) and "plot.png" in str(raised.value)
    assert list((tmp_path / "assets").iterdir()) == []
    assert not _is_open(figure)


def test_a_failed_draw_writes_nothing_and_closes_the_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plot.png").write_bytes(b"previous run")

    def broken(self: Figure, target: object, **kwargs: object) -> None:
        raise ValueError("cannot draw")

    monkeypatch.setattr(Figure, "savefig", broken)
    figure = _figure()
    with pytest.raises(ValueError, match="cannot draw"):
        save_figure(figure, tmp_path / "plot.png")
    assert os.listdir(tmp_path) == ["plot.png"] and (tmp_path / "plot.png").read_bytes() == b"previous run"
    assert not _is_open(figure)
