"""SoftWPMI at the real softmax size: CLIP-Dissect's 20k concept set, D=512 embeddings with CLIP-like cosines,
a 1000-image probe and a 64-neuron layer, against the spec's formula in float64 and the reference code path.

Why this size is realistic where it matters: the softmax runs over the concept axis, so its normaliser and every
probability (π ≈ 1/20,000 ≈ 5e-5 here, as with real CLIP at a=10) depend on M and on the cosine spread, not on
N or K. Each term is then ``log(1 + w(π - 1) + ε)`` ≈ ``log(0.002..0.03)``: the float32 cancellation the
memory-bounded rewrite avoids only shows at this M. N=1000 is the ``imagenet-samples`` probe; K=64 is a whole
real layer (ResNet conv1), so the layer prior is a real one. Broden-sized runs (63k images) change only how many
rows are gathered; their concept-chunked path (the (U, M) softmax block above ``MAX_PROB_BYTES``) is run here too.
"""

from __future__ import annotations

import numpy as np
import pytest

from xai.dissect import reference
from xai.dissect.probes import CONCEPT_FILES, load_concepts
from xai.dissect.similarity import (
    pmi_log_likelihood,
    pmi_scores,
    soft_membership,
    soft_wpmi,
    top_image_indices,
)

N_IMAGES, DIM, N_NEURONS, TOP_K = 1000, 512, 64, 100
TOPICS = ["dog", "car", "water", "tree", "food", "music", "red", "church"]
TOPICS += ["snow", "book", "horse", "kitchen", "baby", "airport", "fire", "beach"]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _clip_like_case(concepts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings with CLIP's cosine statistics (image-text cosines ≈ 0.26 ± 0.036 across concepts, ≈ 0.40 for an
    image's own topic; spec 1.3: typical entries 0.1-0.35) and a layer whose neuron k fires on topic k mod 16.

    A shared direction (CLIP's modality offset) sets the mean cosine; each concept has its own direction; each
    image mixes in its topic concept's direction. Returns activations, images, texts and the topic concept ids.
    """
    rng = np.random.default_rng(0)
    shared = _unit(rng.standard_normal(DIM))
    own = rng.standard_normal((len(concepts), DIM)) / np.sqrt(DIM)
    texts = _unit(0.6 * shared + own).astype(np.float32)
    topic_ids = np.array([concepts.index(name) for name in TOPICS])
    topic = rng.integers(0, len(TOPICS), N_IMAGES)
    noise = rng.standard_normal((N_IMAGES, DIM)) / np.sqrt(DIM)
    images = _unit(0.6 * shared + noise + 0.2 * own[topic_ids[topic]]).astype(np.float32)
    detects = np.arange(N_NEURONS) % len(TOPICS)
    acts = (topic[:, None] == detects[None, :]) + 0.5 * rng.standard_normal((N_IMAGES, N_NEURONS))
    return acts.astype(np.float32), images, texts, topic_ids[detects]


def _spec_soft_wpmi_float64(acts: np.ndarray, images: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Spec 1.4(a) line by line in float64: π = softmax_m(10 P), w_r = 0.998 - (r/100)(0.998 - 0.97),
    L = Σ_r log(1 + w_r(π - 1) + 1e-7), log p(t_m) = log mean_k exp(L_km), S = L - log p(t_m)."""
    logits = 10.0 * (images.astype(np.float64) @ texts.astype(np.float64).T)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    weights = 0.998 - np.arange(TOP_K) / TOP_K * (0.998 - 0.97)
    order = np.lexsort((np.arange(N_IMAGES)[:, None].repeat(N_NEURONS, 1), -acts), axis=0)[:TOP_K].T
    log_lik = np.stack([np.log(1 + weights[:, None] * (probs[rows] - 1) + 1e-7).sum(axis=0) for rows in order])
    peak = log_lik.max(axis=0)
    return log_lik - (np.log(np.exp(log_lik - peak).mean(axis=0)) + peak)


@pytest.fixture(scope="module")
def real_size_case() -> tuple[np.ndarray, ...]:
    from tests.helpers.mirror import mirror_path

    if mirror_path() is None:
        pytest.skip("needs the data mirror (../shared/data or $XAI_MIRROR) for the 20k concept set")
    concepts = load_concepts(mirror_path() / CONCEPT_FILES["20k"])
    assert len(concepts) == 20000
    acts, images, texts, planted = _clip_like_case(concepts)
    return acts, images, texts, planted, _spec_soft_wpmi_float64(acts, images, texts)


def test_case_has_clip_sized_probabilities(real_size_case: tuple[np.ndarray, ...]) -> None:
    _, images, texts, _, truth = real_size_case
    cosines = images[:50] @ texts.T
    assert 0.2 < cosines.mean() < 0.3 and 0.02 < cosines.std(axis=1).mean() < 0.05
    probs = np.exp(10 * cosines - np.log(np.exp(10 * cosines).sum(axis=1, keepdims=True)))
    assert 2e-5 < np.median(probs) < 1e-4 and probs.max() < 1e-3  # nearly flat over 20k concepts
    assert 0.5 < truth.max(axis=1).mean() < 1.5  # PMI maxima in the range CLIP-Dissect reports for real layers


def test_soft_wpmi_at_20k_concepts_equals_the_spec_and_the_reference(real_size_case: tuple[np.ndarray, ...]) -> None:
    acts, images, texts, planted, truth = real_size_case
    ours = soft_wpmi(acts, images, texts)
    # the concept-chunked path a Broden-sized run takes (the (U, M) softmax block over MAX_PROB_BYTES): 5 chunks
    top = top_image_indices(acts, TOP_K)
    used = len(np.unique(top))
    block = used * 4096 * 4
    chunked = pmi_scores(
        pmi_log_likelihood(top, soft_membership(TOP_K), images, texts, a=10.0, min_prob=1e-7, max_prob_bytes=block),
        1.0,
    )
    repo_path = reference.soft_wpmi_reference(acts, images, texts)  # CLIP-Dissect's float32 code path
    # |L| ≈ 431 here, so float32 holds it to about 3e-5 per rounding; measured max errors 1.2e-4 (ours, both paths)
    # and 2.1e-4 (the repo's path). For scale: a = 10.05 instead of 10 moves S by 1.1e-2, top-99 by 1.3e-2.
    for scores in (ours, chunked):
        np.testing.assert_allclose(scores, truth, rtol=0, atol=3e-4)
    np.testing.assert_allclose(repo_path, truth, rtol=0, atol=5e-4)
    np.testing.assert_allclose(ours, repo_path, rtol=0, atol=5e-4)
    labels = truth.argmax(axis=1)
    assert np.array_equal(ours.argmax(axis=1), labels) and np.array_equal(chunked.argmax(axis=1), labels)
    assert np.array_equal(labels, planted)  # each neuron is labelled with the topic it was built to detect
