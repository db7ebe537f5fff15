"""LIME's CPU-side work against the model's, with the CPU standing in for the device. Run through
``bench/bench_pipeline.py --case overlap``.

The "device" is torch with one intra-op thread running ResNet50 (seeded random weights) on LIME's batches; the
CPU-side work is building and normalising each batch of perturbed images (:class:`xai.explain.lime_image.Samples`)
and quickshift. Measured in one process, medians of a few repeats:

- ``prepare``: every batch built and normalised, no model;  ``model``: the model on every prepared batch;
- ``sequential``: one batch after the other (LIME's loop);  ``overlapped``: the producer thread
  (:func:`xai.explain.lime_image.probabilities_overlapped`);
- hidden = (sequential - overlapped) / min(prepare, model): the share of the shorter side that the overlap hid
  (1.0: all of it); overlapped / max(prepare, model): 1.0 is the floor of a two-stage pipeline;
- quickshift of several images one after the other vs :func:`xai.explain.lime_image.prefetch_segments`.

Needs at least two CPUs (a core beside the "device" thread). On a GPU the samples are built on the device
(:func:`xai.explain.lime_image.probabilities_on_device`): there the CPU only launches kernels, measured by
``bench_pipeline --device cuda``'s LIME row against its floor.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def _median(function: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _measure(name: str, classifier: Any, samples: Any, repeats: int, cpus: int) -> None:
    """One stand-in device: its LIME samples prepared and classified one after the other vs overlapped."""
    import numpy as np

    from xai.explain import lime_image

    batches = list(samples.batches())
    prepared = [classifier.prepare(batch) for batch in batches]
    classifier(batches[0])  # warm-up
    prepare_s = _median(lambda: [classifier.prepare(batch) for batch in samples.batches()], repeats)
    model_s = _median(lambda: [classifier.probabilities(batch) for batch in prepared], repeats)
    sequential = np.concatenate([classifier(batch) for batch in samples.batches()])
    sequential_s = _median(lambda: [classifier(batch) for batch in samples.batches()], repeats)
    overlapped = lime_image.probabilities_overlapped(samples, classifier)
    overlapped_s = _median(lambda: lime_image.probabilities_overlapped(samples, classifier), repeats)
    hidden_share = (sequential_s - overlapped_s) / min(prepare_s, model_s)
    print(f"LIME, {len(samples.hidden)} samples in batches of {samples.batch_size}, {name} on 1 torch thread, "
          f"{cpus} CPUs")  # fmt: skip
    print(f"  prepare (build + normalise)   {prepare_s:7.2f} s")
    print(f"  model                         {model_s:7.2f} s")
    print(f"  sequential                    {sequential_s:7.2f} s")
    print(f"  overlapped (producer thread)  {overlapped_s:7.2f} s   equal to sequential: "
          f"{np.array_equal(sequential, overlapped)}")  # fmt: skip
    print(f"  hidden share of the shorter side: {hidden_share:.2f} (1.0 = all of it)")
    print(f"  overlapped / max(prepare, model): {overlapped_s / max(prepare_s, model_s):.2f} (1.0 = the floor)")


def bench_overlap(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from torchvision.models import mobilenet_v3_small, resnet50

    from xai.batching import usable_cpus
    from xai.explain import lime_image
    from xai.explain.inference import BatchClassifier
    from xai.explain.lime_image import DEFAULT_LIME_PARAMS, Samples, quickshift_segmenter
    from xai.models import to_input
    from xai.testing import planted_image

    torch.set_num_threads(1)
    cpus = len(usable_cpus())
    if cpus < 2:
        print("one CPU only: nothing to overlap with; run this on a machine with 2+ CPUs")
        return
    images = [planted_image(224, seed) for seed in range(4)]
    segments = quickshift_segmenter(DEFAULT_LIME_PARAMS)(images[0])
    rng = np.random.default_rng(0)
    n_samples, batch_size = args.probe_limit or 128, 16
    hidden = np.zeros((n_samples, int(segments.max()) + 1), dtype=bool)
    hidden[:] = rng.integers(0, 2, hidden.shape) == 0
    samples = Samples(images[0], np.zeros_like(images[0]), segments, hidden, batch_size)
    repeats = 3
    # The explained ResNet50, and a fast stand-in for a device that keeps up with the CPU (a GPU runs ResNet50
    # faster than one CPU core prepares its images): the overlap matters when the two sides are comparable.
    for name, model in (("resnet50", resnet50()), ("mobilenet_v3_small", mobilenet_v3_small())):
        _measure(name, BatchClassifier(model.eval(), to_input), samples, repeats, cpus)

    segmenter = quickshift_segmenter(DEFAULT_LIME_PARAMS)
    serial_s = _median(lambda: [segmenter(image) for image in images], 1)

    def prefetch_all() -> None:
        lime_image.prefetch_segments(images, DEFAULT_LIME_PARAMS, workers=cpus)
        for image in images:
            lime_image._prefetched_segments(image, DEFAULT_LIME_PARAMS)

    prefetch_s = _median(prefetch_all, 1)

    print(f"quickshift of {len(images)} images: one after the other {serial_s:.2f} s, prefetched on {cpus} "
          f"threads {prefetch_s:.2f} s ({serial_s / prefetch_s:.2f}x)")  # fmt: skip
