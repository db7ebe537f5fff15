"""The figure queue: worker processes write the serial bytes, a rerun draws nothing, one changed input redraws
exactly its figure, and a figure that raises or whose worker dies is reported by name (the others are kept)."""

from __future__ import annotations

import filecmp
import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from tests.helpers import report_artifacts
from tests.helpers.run_record import RUN, run_plan
from xai.report.figures import save_figure
from xai.report.figures.jobs import FigureError, draw, figure_queue
from xai.report.figures.manifest import MANIFEST
from xai.report.render import BUILDERS, render


def line_figure(values: np.ndarray, path: Path, *, title: str = "") -> str:
    """A small real figure; its return value is its alt text."""
    figure = Figure(figsize=(2, 2))
    figure.subplots().plot(values)
    figure.suptitle(title)
    save_figure(figure, path)
    return f"line of {len(values)} values {title}"


def raising_figure(path: Path) -> str:
    raise ValueError("nothing to plot")


def dying_figure(path: Path) -> str:
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return "never"


def _explain_artifacts(cache: Path):
    """LIME and every CAM of two planted 64 px images, by the code the pipeline runs."""
    from tests.helpers.explain_run import explain_context, explain_one
    from xai.explain import METHODS
    from xai.explain.explained import ExplainArtifacts, ExplainedImage
    from xai.testing import PlantedEvidenceNet, planted_image

    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    context = explain_context(cache, model, methods=list(METHODS), num_samples=40, stability_seeds=2)
    images = [planted_image(64, seed) for seed in range(2)]
    explained = [ExplainedImage(f"planted-{i}", image, explain_one(context, image)) for i, image in enumerate(images)]
    return ExplainArtifacts("planted", list("abcde"), "layer4[-1]", tuple(METHODS), images=explained)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every section's artifacts, small: dissection (two models), explanations (two images, every method) and
    the comparison (three images)."""
    return {
        "dissect": report_artifacts.dissect_artifacts(tmp_path_factory.mktemp("probe")),
        "explain": _explain_artifacts(tmp_path_factory.mktemp("cache")),
        "compare": report_artifacts.compare_artifacts()["compare"],
    }


def _figures(docs: Path) -> list[str]:
    return sorted(str(p.relative_to(docs)) for p in docs.rglob("*") if p.suffix in {".png", ".jpg"})


def test_worker_processes_write_the_serial_bytes_and_a_rerun_draws_nothing(artifacts, tmp_path: Path) -> None:
    run = RUN
    serial = render(run, artifacts, tmp_path / "serial", run_plan(), BUILDERS, workers=1, figure_cache=False)
    pooled = render(run, artifacts, tmp_path / "pooled", run_plan(), BUILDERS, workers=2)
    files = _figures(tmp_path / "serial")
    assert len(files) > 20 and files == _figures(tmp_path / "pooled")
    assert pooled.figures.pooled and pooled.figures.drawn == serial.figures.drawn == pooled.figures.requested
    assert len(pooled.figures.cpu_by_process) == 2  # a worker and this process drew
    _, different, errors = filecmp.cmpfiles(tmp_path / "serial", tmp_path / "pooled", files, shallow=False)
    assert (different, errors) == ([], [])
    pages = [name for name in serial.written if name.endswith(".md")]
    for name in pages:  # alt texts came back from the workers
        assert (tmp_path / "serial" / name).read_text() == (tmp_path / "pooled" / name).read_text(), name

    stamps = {name: (tmp_path / "pooled" / name).stat().st_mtime_ns for name in files}
    again = render(run, artifacts, tmp_path / "pooled", run_plan(), BUILDERS, workers=2)
    assert (again.figures.drawn, again.figures.cached) == (0, again.figures.requested)
    assert stamps == {name: (tmp_path / "pooled" / name).stat().st_mtime_ns for name in files}
    for name in pages:  # the alt texts now come from the manifest
        assert (tmp_path / "serial" / name).read_text() == (tmp_path / "pooled" / name).read_text(), name


def test_one_changed_input_redraws_exactly_its_figure(artifacts, tmp_path: Path) -> None:
    run = RUN
    docs = tmp_path / "docs"
    render(run, artifacts, docs, run_plan(), BUILDERS, workers=1)
    compared = artifacts["compare"]
    image = compared.explain.images[1]
    cams = tuple(replace_map(cam) for cam in image.explanation.cams)
    images = list(compared.explain.images)
    images[1] = replace(image, explanation=type(image.explanation)(lime=image.explanation.lime, cams=cams))
    changed = {**artifacts, "compare": replace(compared, explain=replace(compared.explain, images=images))}
    again = render(run, changed, docs, run_plan(), BUILDERS, workers=1)
    assert again.figures.drawn_files == ["assets/comparison/panel-img1.png"]

    (docs / "assets/comparison/complexity.png").unlink()  # a deleted output is drawn again, alone
    assert render(run, changed, docs, run_plan(), BUILDERS, workers=1).figures.drawn_files == [
        "assets/comparison/complexity.png"
    ]


def replace_map(cam):
    return type(cam)(method=cam.method, map=np.flipud(cam.map).copy())


def test_a_figure_that_raises_is_named_and_the_others_are_kept(tmp_path: Path) -> None:
    values = np.arange(5.0)
    with pytest.raises(FigureError) as raised, figure_queue(tmp_path, workers=2, share=False) as queue:
        draw(raising_figure, path=tmp_path / "broken.png")
        for index in range(8):
            draw(line_figure, values + index, path=tmp_path / f"line{index}.png", title=str(index))
    message = str(raised.value)
    assert "1 figure(s)" in message and "broken.png: ValueError: nothing to plot" in message
    assert queue.stats.pooled and queue.stats.drawn == 8
    recorded = json.loads((tmp_path / MANIFEST).read_text())["figures"]
    assert sorted(recorded) == [f"line{index}.png" for index in range(8)]

    with figure_queue(tmp_path, workers=2) as queue:  # a rerun draws only what is missing
        for index in range(8):
            draw(line_figure, values + index, path=tmp_path / f"line{index}.png", title=str(index))
        draw(line_figure, values, path=tmp_path / "broken.png", title="fixed")
    assert queue.stats.drawn_files == ["broken.png"]


def test_a_killed_worker_is_reported_and_the_figures_it_took_along_are_drawn(tmp_path: Path) -> None:
    values = np.arange(5.0)
    with pytest.raises(FigureError) as raised, figure_queue(tmp_path, workers=2, share=False) as queue:
        for index in range(8):
            draw(line_figure, values * index, path=tmp_path / f"line{index}.png")
            if index == 1:
                draw(dying_figure, path=tmp_path / "killed.png")
    assert "killed.png: its worker process died" in str(raised.value)
    assert str(raised.value).count("\n") == 1  # only the figure that killed its worker
    assert sorted(queue.stats.drawn_files) == [f"line{index}.png" for index in range(8)]
    assert all((tmp_path / f"line{index}.png").is_file() for index in range(8))


def test_serial_drawing_reports_a_raising_figure_too(tmp_path: Path) -> None:
    with (
        pytest.raises(FigureError, match=r"broken\.png: ValueError: nothing to plot"),
        figure_queue(tmp_path, workers=1),
    ):
        draw(raising_figure, path=tmp_path / "broken.png")


def test_outside_a_queue_draw_calls_the_function(tmp_path: Path) -> None:
    assert draw(line_figure, np.arange(3.0), path=tmp_path / "a.png") == "line of 3 values "
    assert (tmp_path / "a.png").is_file() and not (tmp_path / MANIFEST).exists()


def test_two_figures_may_not_write_one_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"two figures write a\.png"), figure_queue(tmp_path, workers=1):
        draw(line_figure, np.arange(3.0), path=tmp_path / "a.png")
        draw(line_figure, np.arange(4.0), path=tmp_path / "a.png")


def test_the_default_pool_needs_three_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xai.report.figures import jobs

    for cpus, expected in ((1, 1), (2, 1), (3, 3), (16, 16)):
        monkeypatch.setattr(jobs, "available_cpus", lambda cpus=cpus: cpus)
        assert jobs.FigureQueue(tmp_path).workers == expected
    assert jobs.FigureQueue(tmp_path, workers=2).workers == 2  # asked for: given
