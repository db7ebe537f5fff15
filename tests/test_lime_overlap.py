"""LIME's CPU-side work overlapped with the model's: the device-built samples, the producer thread and the
prefetched segmentation give exactly what the one-batch-after-the-other loop gives."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from xai.explain import lime_image
from xai.explain.inference import BatchClassifier
from xai.explain.lime_image import LimeParams, Samples, run_lime
from xai.models import to_input
from xai.overlap import prefetched
from xai.testing import PlantedEvidenceNet, planted_image

FINE = LimeParams(num_samples=150, kernel_size=2, max_dist=20)
BOX = (8, 8, 32, 32)


class _Tempered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = PlantedEvidenceNet(BOX, seed=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / 200.0


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return _Tempered().eval()


def _samples(batch_size: int = 16) -> Samples:
    image = planted_image(64, 1)
    segments = lime_image.quickshift_segmenter(FINE)(image)
    rng = np.random.default_rng(0)
    hidden = np.zeros((70, int(segments.max()) + 3), dtype=bool)  # ids beyond the segments are never hidden
    hidden[:, : int(segments.max()) + 1] = rng.integers(0, 2, (70, int(segments.max()) + 1)) == 0
    fudged = np.zeros_like(image)
    fudged[..., 1] = 77
    return Samples(image, fudged, segments, hidden, batch_size)


def test_the_samples_built_with_torch_are_the_numpy_ones() -> None:
    samples = _samples()
    built = list(samples.batches())
    assert [len(batch) for batch in built] == [16, 16, 16, 16, 6]
    assert all(
        np.array_equal(a, b.numpy()) for a, b in zip(built, samples.device_batches(torch.device("cpu")), strict=True)
    )
    first = built[0][3]  # sample 3 shows the fill exactly where its hidden segments are
    hidden_pixels = samples.hidden[3][samples.segments]
    assert np.array_equal(first[hidden_pixels], samples.fudged[hidden_pixels])
    assert np.array_equal(first[~hidden_pixels], samples.image[~hidden_pixels])


def test_every_way_of_getting_the_probabilities_gives_the_same_numbers(model: nn.Module) -> None:
    samples = _samples()
    classifier = BatchClassifier(model, to_input)
    assert classifier.takes_device_tensors
    one_by_one = np.concatenate([classifier(batch) for batch in samples.batches()])
    assert one_by_one.std() > 1e-4
    assert np.array_equal(lime_image.probabilities_on_device(samples, classifier), one_by_one)
    assert np.array_equal(lime_image.probabilities_overlapped(samples, classifier), one_by_one)


@pytest.mark.parametrize("spare", [0, 1])
def test_lime_is_the_same_with_and_without_a_spare_core(model: nn.Module, monkeypatch, spare: int) -> None:
    image = planted_image(64, 0)
    monkeypatch.setattr(lime_image, "OVERLAP_ON_CPU", True)  # off by default (measured slower), equal when on
    monkeypatch.setattr(lime_image, "spare_cpus", lambda: 0)
    plain = run_lime(model, image, to_input=to_input, params=FINE, seed=3, batch_size=32)
    monkeypatch.setattr(lime_image, "spare_cpus", lambda: spare)
    used = []
    monkeypatch.setattr(lime_image, "probabilities_overlapped", _spy(lime_image.probabilities_overlapped, used))
    again = run_lime(model, image, to_input=to_input, params=FINE, seed=3, batch_size=32)
    assert len(used) == spare  # the producer thread ran only with a core to spare
    assert np.abs(plain.weights).max() > 1e-3
    assert np.array_equal(plain.weights, again.weights) and plain.score == again.score


def _spy(function, calls: list):
    def spied(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)

    return spied


def test_a_prefetched_segmentation_is_used_and_equal(model: nn.Module, monkeypatch) -> None:
    image = planted_image(64, 2)
    plain = run_lime(model, image, to_input=to_input, params=FINE, seed=0, batch_size=32)
    lime_image.prefetch_segments([image], FINE, workers=1)
    monkeypatch.setattr(lime_image, "quickshift_segmenter", _no_quickshift)
    again = run_lime(model, image, to_input=to_input, params=FINE, seed=0, batch_size=32)
    assert np.array_equal(plain.segments, again.segments) and np.array_equal(plain.weights, again.weights)
    with pytest.raises(AssertionError, match="quickshift ran"):  # taken once: a second run segments again
        run_lime(model, image, to_input=to_input, params=FINE, seed=0, batch_size=32)


def _no_quickshift(params: LimeParams):
    raise AssertionError("quickshift ran although the segmentation was prefetched")


def test_prefetched_keeps_order_runs_ahead_and_raises_where_the_producer_failed() -> None:
    produced: list[int] = []

    def items():
        for index in range(5):
            produced.append(index)
            yield index
        raise ValueError("the sixth item failed")

    stream = prefetched(items(), depth=2)
    assert next(stream) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 3 and time.monotonic() < deadline:  # the producer runs ahead while we wait
        time.sleep(0.01)
    assert len(produced) == 3
    assert [next(stream) for _ in range(4)] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="sixth"):
        next(stream)


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    def endless():
        index = 0
        while True:
            yield index
            index += 1

    before = threading.active_count()
    for value in prefetched(endless(), depth=1):
        if value == 3:
            break
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
