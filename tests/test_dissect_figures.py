"""CLIP-Dissect figures are written from artifacts; thumbnail strips show top images in order."""

from __future__ import annotations

import numpy as np
from PIL import Image

from xai.dissect import DissectionResult, LayerDissection, compare_models, summarise_model
from xai.report.figures import dissect as figures

VOCABULARY = {"colour": frozenset({"red"}), "object": frozenset({"dog"})}


def _result(name: str, labels: list[int], n_probe: int = 6) -> DissectionResult:
    k = len(labels)
    rng = np.random.default_rng(len(name))
    layer = LayerDissection(
        layer="layer4",
        concept_ids=np.array([[label, (label + 1) % 4] for label in labels], np.int32),
        scores=np.sort(rng.normal(size=(k, 2)).astype(np.float32), axis=1)[:, ::-1].copy(),
        top_images=np.array([np.roll(np.arange(n_probe), -unit)[:5] for unit in range(k)], np.int32),
        top_activations=np.zeros((k, 5), np.float32),
        null_scores=rng.normal(size=k).astype(np.float32),
    )
    concepts = ("dog", "red", "kitchen", "the")
    return DissectionResult(name, "soft_wpmi", {}, concepts, tuple(f"p{i}" for i in range(n_probe)), (layer,))


def test_summary_figures_are_png_files(tmp_path):
    a, b = _result("imagenet", [0, 0, 1, 3]), _result("places", [2, 2, 1, 1])
    summaries = [summarise_model(r, vocabulary=VOCABULARY) for r in (a, b)]
    paths = [
        figures.concept_frequency_figure(summaries[0].layer("layer4"), "imagenet", tmp_path / "freq.png"),
        figures.score_distribution_figure([a, b], "layer4", tmp_path / "scores.png"),
        figures.overlap_figure(compare_models(a, b), tmp_path / "overlap.png"),
        figures.category_figure(summaries, tmp_path / "categories.png"),
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 200
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_thumbnail_strips_show_top_images_in_order(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    probe_paths = []
    for index, colour in enumerate(colours):
        probe_paths.append(tmp_path / f"p{index}.jpg")
        Image.new("RGB", (120, 90), colour).save(probe_paths[-1])
    result = _result("imagenet", [0, 1, 2])
    decoded = []

    def counting_loader(path, size):
        decoded.append(path)
        return figures.load_thumbnail(path, size)

    strips = figures.thumbnail_strips(result, "layer4", probe_paths, tmp_path / "strips", loader=counting_loader)
    assert [p.name for p in strips] == [
        "layer4-unit-0000.jpg",
        "layer4-unit-0001.jpg",
        "layer4-unit-0002.jpg",
    ]
    assert len(decoded) == len(set(decoded)) == 6  # every probe image decoded once
    with Image.open(strips[1]) as image:
        assert image.size == (5 * 64 + 4 * figures.STRIP_GAP_PX, 64)
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    for slot in range(5):
        expected = colours[result.layer("layer4").top_images[1, slot]]
        centre = pixels[32, slot * (64 + figures.STRIP_GAP_PX) + 32]
        assert np.abs(centre - np.array(expected)).max() < 40
