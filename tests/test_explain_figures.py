"""Figure makers write readable PNGs for every artifact they are given."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from tests.helpers.explain_run import explain_context, explain_one
from xai.explain import METHODS
from xai.report.figures.explain import save_image_figures
from xai.testing import PlantedEvidenceNet, planted_image


@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory):
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    images = [planted_image(64, seed) for seed in range(2)]
    context = explain_context(
        tmp_path_factory.mktemp("cache"), model, methods=list(METHODS), num_samples=40, stability_seeds=1
    )
    return images, [explain_one(context, image) for image in images]


def test_per_image_figures(explained, tmp_path: Path) -> None:
    images, explanations = explained
    paths = save_image_figures(images[0], explanations[0], tmp_path / "one", categories=list("abcde"))
    assert set(paths) == {"original", "lime_boundaries", "lime_pros_cons", "lime_weights", *list(METHODS)[1:]}
    for path in paths.values():  # the gallery's panels (images x methods): tests/test_gallery.py
        pixels = matplotlib.image.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.std() > 0.01, path
    assert not list(tmp_path.rglob(".*"))  # no temp files left behind by the atomic save
