"""LIME for one image over the ``lime`` package, with the PyTorch tutorial's settings and a fast classifier.

LIME (Ribeiro et al., KDD 2016, https://arxiv.org/abs/1602.04938) segments the image into superpixels
(quickshift, kernel_size=4, max_dist=200, ratio=0.2), draws ``num_samples`` random on/off vectors z (row 0 all
on), paints the "off" superpixels with ``hide_color`` (0 = black, as in the tutorial), gets the model's class
probabilities f(z), and fits per explained label a ridge regression (alpha=1) of f(z) on z with sample weights
``sqrt(exp(-d^2 / 0.25^2))``, d = cosine distance of z to all-ones. A superpixel's coefficient is its weight.

What we change, none of which changes a number (tested against a plain ``explain_instance`` call):
- the classifier function normalises the whole batch in one op under ``torch.inference_mode()`` at the
  device's batch size (the tutorial: per-image PIL transforms, autograd on, batches of 10);
- ``data_labels`` builds each batch of perturbed images with one vectorised lookup instead of LIME's per-row
  Python loop (same random draws from the same RandomState, same images, no tqdm bar);
- the CPU-side work leaves the model's way: on a GPU the perturbed images are built and normalised there and every
  batch is queued without waiting (:func:`sample_probabilities`); quickshift of the next images can run in
  background threads (:func:`prefetch_segments`). A producer thread that prepares the next batch on the CPU is
  built (:func:`probabilities_overlapped`) but off (:data:`OVERLAP_ON_CPU`, measured). LIME's own ridge fits are
  left as they are: ~0.1 s of a 1000-sample run;
- a fresh ``LimeImageExplainer(random_state=seed)`` per call, so the same seed gives identical results.

Known limits kept from lime 0.2.0.1: ``score``/``local_pred`` are those of the last label fitted, which is the
top-1 label (LIME loops labels from least to most probable), i.e. the label we explain.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import torch
from lime.lime_image import LimeImageExplainer
from lime.wrappers.scikit_image import SegmentationAlgorithm
from torch import nn

from xai.explain.artifacts import LimeResult, LimeStability
from xai.explain.inference import (
    BatchClassifier,
    ToInput,
    check_eval_mode,
    default_batch_size,
    model_device,
    probabilities_fn,
)
from xai.overlap import prefetched


@dataclass(frozen=True)
class LimeParams:
    """LIME settings; defaults are the lime PyTorch tutorial's (quickshift defaults, 1000 samples, black)."""

    num_samples: int = 1000
    top_labels: int = 5
    hide_color: float | None = 0
    kernel_size: float = 4
    max_dist: float = 200
    ratio: float = 0.2
    ks: tuple[int, ...] = (5, 10)
    """Numbers of top positive superpixels to mask (the tutorial's 5; 10 as a wider view)."""
    stability_seeds: int = 3
    """LIME runs (seeds seed, seed+1, ...) whose top-k superpixels are compared for stability."""

    def to_dict(self) -> dict:
        return {**asdict(self), "ks": list(self.ks)}


DEFAULT_LIME_PARAMS = LimeParams()


class _BatchedLimeImageExplainer(LimeImageExplainer):
    """``LimeImageExplainer`` whose perturbed images are built a batch at a time, vectorised."""

    probabilities: np.ndarray | None = None

    def data_labels(
        self,
        image: np.ndarray,
        fudged_image: np.ndarray,
        segments: np.ndarray,
        classifier_fn: Callable[[np.ndarray], np.ndarray],
        num_samples: int,
        batch_size: int = 10,
    ) -> tuple[np.ndarray, np.ndarray]:
        n_features = np.unique(segments).shape[0]
        # The same draw, from the same RandomState, as LimeImageExplainer.data_labels.
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
        data[0, :] = 1
        # LIME hides segment id z when column z is 0; ids >= n_features are never hidden.
        hidden = np.zeros((num_samples, max(int(segments.max()) + 1, n_features)), dtype=bool)
        hidden[:, :n_features] = data == 0
        samples = Samples(image, fudged_image, segments, hidden, batch_size)
        self.probabilities = sample_probabilities(samples, classifier_fn)
        return data, self.probabilities


@dataclass(frozen=True)
class Samples:
    """LIME's perturbed images, described: sample i shows ``fudged`` where ``hidden[i, segments]``, else ``image``."""

    image: np.ndarray
    fudged: np.ndarray
    segments: np.ndarray
    hidden: np.ndarray
    """(num_samples, segment ids) bool: which segments each sample hides."""
    batch_size: int

    def batches(self) -> Iterator[np.ndarray]:
        """The (n, H, W, 3) images of each batch, built on the CPU (one vectorised lookup per batch)."""
        for start in range(0, len(self.hidden), self.batch_size):
            mask = self.hidden[start : start + self.batch_size][:, self.segments][..., None]
            yield np.where(mask, self.fudged, self.image)

    def device_batches(self, device: torch.device) -> Iterator[torch.Tensor]:
        """The same images as :meth:`batches`, built on ``device`` from the image, the fill and the segments
        uploaded once (per batch only the kernels run there: nothing is copied from the CPU)."""
        image, fudged = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (self.image, self.fudged))
        segments = torch.from_numpy(self.segments.astype(np.int64)).to(device)
        hidden = torch.from_numpy(self.hidden).to(device)
        for start in range(0, len(self.hidden), self.batch_size):
            mask = hidden[start : start + self.batch_size][:, segments][..., None]
            yield torch.where(mask, fudged, image)


OVERLAP_ON_CPU = False
"""Whether a model on the CPU gets :func:`probabilities_overlapped` when a core is spare. Off: measured on the
2-core machine (``bench_pipeline.py --case overlap``) it hid nothing for ResNet50 (preparing is ~2% of its
forward) and made a fast model slower (0.86 s against 0.53 s for MobileNetV3-small: the two threads hand the
GIL back and forth between small kernels)."""


def sample_probabilities(samples: Samples, classifier_fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The classifier's probabilities of every sample, (num_samples, K), batch by batch:

    - :func:`probabilities_on_device`, on an accelerator whose classifier normalises tensors where they are;
    - :func:`probabilities_overlapped` on the CPU with a core to spare, when :data:`OVERLAP_ON_CPU` is set;
    - else one batch after the other, as LIME does.

    The batches, their order and their images are the same in all three; on the CPU the numbers are identical.
    """
    if isinstance(classifier_fn, BatchClassifier):
        if classifier_fn.device.type != "cpu" and classifier_fn.takes_device_tensors:
            return probabilities_on_device(samples, classifier_fn)
        if OVERLAP_ON_CPU and spare_cpus() > 0 and len(samples.hidden) > samples.batch_size:
            return probabilities_overlapped(samples, classifier_fn)
    return np.concatenate([np.asarray(classifier_fn(batch)) for batch in samples.batches()])


def probabilities_on_device(samples: Samples, classifier: BatchClassifier) -> np.ndarray:
    """The samples built and normalised on the classifier's device, every batch queued without waiting, one copy
    back at the end: the CPU only launches kernels."""
    found = [
        classifier.probabilities(classifier.to_input(batch)) for batch in samples.device_batches(classifier.device)
    ]
    return torch.cat(found).cpu().numpy()


def probabilities_overlapped(samples: Samples, classifier: BatchClassifier) -> np.ndarray:
    """A producer thread builds and normalises the next batches while the model runs the current one."""
    prepared = prefetched(classifier.prepare(batch) for batch in samples.batches())
    return np.concatenate([classifier.probabilities(batch).cpu().numpy() for batch in prepared])


def quickshift_segmenter(params: LimeParams) -> SegmentationAlgorithm:
    """LIME's default segmenter with ``params``'s quickshift settings.

    LIME also passes ``random_seed`` to quickshift; scikit-image >= 0.23 renamed it ``rng`` and LIME's wrapper
    silently drops unknown arguments, so quickshift runs with its fixed default seed: segmentation is
    deterministic and the same as the tutorial's.
    """
    return SegmentationAlgorithm(
        "quickshift", kernel_size=params.kernel_size, max_dist=params.max_dist, ratio=params.ratio
    )


def spare_cpus() -> int:
    """:func:`xai.batching.spare_cpus`, imported when called (:mod:`xai.batching` imports the config, which imports
    this package's registry)."""
    from xai.batching import spare_cpus as found

    return found()


_PREFETCHED: dict[tuple[bytes, tuple[float, float, float]], Future[np.ndarray]] = {}
_SEGMENTERS: list[ThreadPoolExecutor] = []


def _segmentation_key(image: np.ndarray, params: LimeParams) -> tuple[bytes, tuple[float, float, float]]:
    identity = hashlib.sha256(repr((image.shape, image.dtype.str)).encode())
    identity.update(np.ascontiguousarray(image).reshape(-1).view(np.uint8))
    return identity.digest(), (params.kernel_size, params.max_dist, params.ratio)


def prefetch_segments(images: Sequence[np.ndarray], params: LimeParams, workers: int | None = None) -> None:
    """Start quickshift on ``images`` in background threads (quickshift releases the GIL): :func:`run_lime`
    then takes an image's segmentation from there instead of computing it, so the segmentation of the next
    images overlaps the model's work on this one. Same function, same segments.

    Args:
        workers: threads (default: the CPUs beside torch's threads, at least one).
    """
    if not _SEGMENTERS:
        _SEGMENTERS.append(ThreadPoolExecutor(max_workers=workers or max(1, spare_cpus()), thread_name_prefix="lime"))
    segmenter = quickshift_segmenter(params)
    for image in images:
        key = _segmentation_key(image, params)
        if key not in _PREFETCHED:
            _PREFETCHED[key] = _SEGMENTERS[0].submit(segmenter, image)


def _prefetched_segments(image: np.ndarray, params: LimeParams) -> np.ndarray | None:
    """The segmentation :func:`prefetch_segments` started for ``image`` (waited for), or None."""
    future = _PREFETCHED.pop(_segmentation_key(image, params), None) if _PREFETCHED else None
    return None if future is None else future.result()


def run_lime(
    model: nn.Module,
    image: np.ndarray,
    *,
    to_input: ToInput,
    params: LimeParams = DEFAULT_LIME_PARAMS,
    seed: int = 0,
    batch_size: int | None = None,
    segments: np.ndarray | None = None,
    label: int | None = None,
) -> LimeResult:
    """Explain the model's top-1 class on ``image`` with LIME; identical to the tutorial's call for ``seed``.

    Args:
        model: classifier in eval mode.
        image: (H, W, 3) uint8 RGB, in the pixel space LIME perturbs (already resized/cropped).
        to_input: (N, H, W, 3) images -> normalised (N, 3, H, W) float tensor.
        params: LIME settings.
        seed: ``random_state`` of a fresh ``LimeImageExplainer`` (drives the perturbation samples).
        batch_size: images per forward; None picks the device's best.
        segments: a precomputed segmentation of ``image`` with ``params`` (saves quickshift when the same
            image is explained with several seeds); None takes the one :func:`prefetch_segments` started, else
            runs quickshift.
        label: explain this class instead of LIME's top label (``labels=(label,)``, ``top_labels=None``), as
            the sanity check needs: a randomised model's top class is not the class being explained.

    Returns:
        The explanation of the top-1 label with the top-k positive masks for every k in ``params.ks``.
    """
    check_eval_mode(model)
    batch_size = batch_size or default_batch_size(model_device(model), image.shape[0] * image.shape[1])
    if segments is None:
        segments = _prefetched_segments(image, params)
    return lime_with_classifier(
        image,
        probabilities_fn(model, to_input),
        params=params,
        seed=seed,
        batch_size=batch_size,
        segments=segments,
        label=label,
    )


def lime_with_classifier(
    image: np.ndarray,
    classifier_fn: Callable[[np.ndarray], np.ndarray],
    *,
    params: LimeParams,
    seed: int,
    batch_size: int,
    segments: np.ndarray | None = None,
    label: int | None = None,
) -> LimeResult:
    """:func:`run_lime` with any LIME classifier function ((N, H, W, 3) images -> (N, K) probabilities)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    start = time.perf_counter()
    explainer = _BatchedLimeImageExplainer(random_state=seed)
    segmenter = quickshift_segmenter(params) if segments is None else (lambda _image: segments.copy())
    labels = {} if label is None else {"labels": (int(label),), "top_labels": None}
    explanation = explainer.explain_instance(
        image,
        classifier_fn,
        **{"top_labels": params.top_labels, **labels},
        hide_color=params.hide_color,
        num_samples=params.num_samples,
        batch_size=batch_size,
        segmentation_fn=segmenter,
    )
    seconds = time.perf_counter() - start

    label = int(explanation.top_labels[0]) if label is None else int(label)
    found_segments = explanation.segments.astype(np.int32)
    local_exp = explanation.local_exp[label]
    weights = np.zeros(int(found_segments.max()) + 1, dtype=np.float64)
    for segment, weight in local_exp:
        weights[segment] = weight
    masks = [
        explanation.get_image_and_mask(label, positive_only=True, num_features=k, hide_rest=False)[1] for k in params.ks
    ]
    score = explanation.score[label] if isinstance(explanation.score, dict) else explanation.score
    local_pred = explanation.local_pred
    local_pred = local_pred[label] if isinstance(local_pred, dict) else local_pred
    original = explainer.probabilities[0]
    top_labels = np.asarray(getattr(explanation, "top_labels", None) or [label], dtype=np.int64)
    return LimeResult(
        label=label,
        segments=found_segments,
        weights=weights,
        ranking=np.asarray([segment for segment, _ in local_exp], dtype=np.int32),
        intercept=float(explanation.intercept[label]),
        score=float(score),
        local_pred=float(np.ravel(local_pred)[0]),
        model_probability=float(original[label]),
        top_labels=top_labels,
        top_probabilities=original[top_labels].astype(np.float32),
        ks=tuple(params.ks),
        positive_masks=np.stack(masks).astype(bool),
        seed=seed,
        num_samples=params.num_samples,
        seconds=seconds,
        forward_passes=params.num_samples,
    )


def seed_stability(
    model: nn.Module,
    image: np.ndarray,
    first: LimeResult,
    *,
    to_input: ToInput,
    params: LimeParams,
    batch_size: int | None = None,
) -> LimeStability:
    """How stable ``first`` is under LIME's sampling: :func:`lime_stability` of ``first`` and reruns with seeds
    ``first.seed + 1 .. first.seed + params.stability_seeds - 1``.

    The reruns reuse ``first``'s segmentation: quickshift is deterministic, so this only saves time.
    """
    others = [
        run_lime(
            model,
            image,
            to_input=to_input,
            params=params,
            seed=first.seed + offset,
            batch_size=batch_size,
            segments=first.segments,
        )
        for offset in range(1, params.stability_seeds)
    ]
    return lime_stability([first, *others])


def jaccard(first: set[int] | np.ndarray, second: set[int] | np.ndarray) -> float:
    """|A & B| / |A | B| of two sets or two boolean masks; 1.0 when both are empty."""
    if isinstance(first, np.ndarray):
        union = np.logical_or(first, second).sum()
        return float(np.logical_and(first, second).sum() / union) if union else 1.0
    union_set = first | second
    return len(first & second) / len(union_set) if union_set else 1.0


def lime_stability(results: list[LimeResult], ks: tuple[int, ...] | None = None) -> LimeStability:
    """Pairwise Jaccard overlap of the top-k positive superpixels of LIME runs with different seeds.

    Superpixel-id sets are compared when every run has the same segmentation (the deterministic case);
    otherwise the top-k pixel masks are.
    """
    ks = tuple(ks or results[0].ks)
    same_segments = all(np.array_equal(r.segments, results[0].segments) for r in results)
    overlaps = np.zeros((len(ks), len(results) * (len(results) - 1) // 2), dtype=np.float64)
    for i, k in enumerate(ks):
        for j, (a, b) in enumerate(itertools.combinations(results, 2)):
            if same_segments:
                overlaps[i, j] = jaccard(set(a.positive_superpixels(k)), set(b.positive_superpixels(k)))
            else:
                overlaps[i, j] = jaccard(a.positive_mask(k), b.positive_mask(k))
    weights = None
    if same_segments and len({r.weights.shape for r in results}) == 1:
        weights = np.stack([r.weights for r in results]).astype(np.float64)
    return LimeStability(seeds=tuple(r.seed for r in results), ks=ks, jaccard=overlaps, weights=weights)
