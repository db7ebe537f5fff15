"""CLIP-Dissect similarity functions: hand-computed values, planted concepts, the layer prior, memory-bounded
path versus the straightforward implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai.dissect import reference
from xai.dissect.similarity import (
    cos_similarity,
    pmi_log_likelihood,
    rank_reorder,
    soft_membership,
    soft_wpmi,
    top_image_indices,
    wpmi,
)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _random_case(seed: int = 0, n: int = 300, m: int = 60, d: int = 32, k: int = 12):
    rng = np.random.default_rng(seed)
    images = _normalise(rng.normal(size=(n, d)))
    texts = _normalise(rng.normal(size=(m, d)))
    acts = rng.normal(size=(n, k)).astype(np.float32)
    return acts, images, texts


def _scalar_pmi(acts, images, texts, top_k, a, lam, eps, weights):
    """The spec's formulas with Python scalars and loops, independent of numpy/torch vectorisation."""
    n, k_count = acts.shape
    m_count = texts.shape[0]
    cos = [
        [sum(float(images[i, d]) * float(texts[m, d]) for d in range(images.shape[1])) for m in range(m_count)]
        for i in range(n)
    ]
    probs = []
    for i in range(n):
        exps = [math.exp(a * c) for c in cos[i]]
        probs.append([e / sum(exps) for e in exps])
    log_lik = []
    for k in range(k_count):
        order = sorted(range(n), key=lambda i: (-acts[i, k], i))[:top_k]
        log_lik.append(
            [
                sum(math.log(1 + weights[r] * (probs[i][m] - 1) + eps) for r, i in enumerate(order))
                for m in range(m_count)
            ]
        )
    prior = [math.log(sum(math.exp(log_lik[k][m]) for k in range(k_count)) / k_count) for m in range(m_count)]
    return np.array([[log_lik[k][m] - lam * prior[m] for m in range(m_count)] for k in range(k_count)])


def test_soft_membership_is_the_spec_ramp():
    weights = soft_membership(100)
    assert weights[0] == pytest.approx(0.998)
    assert weights[99] == pytest.approx(0.998 - 0.99 * 0.028)
    assert np.all(np.diff(weights) < 0)


def test_soft_wpmi_matches_hand_computed_tiny_example():
    acts = np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 5.0], [0.0, 4.0]], np.float32)
    images = _normalise(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], float))
    texts = _normalise(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float))
    expected = _scalar_pmi(acts, images, texts, 2, 10.0, 1.0, 1e-7, [0.998, 0.998 - 0.5 * 0.028])
    got = soft_wpmi(acts, images, texts, top_k=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_wpmi_matches_hand_computed_tiny_example():
    acts = np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 5.0], [0.0, 4.0]], np.float32)
    images = _normalise(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], float))
    texts = _normalise(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float))
    expected = _scalar_pmi(acts, images, texts, 3, 2.0, 0.6, 1e-7, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(wpmi(acts, images, texts, top_k=3), expected, rtol=1e-5, atol=1e-5)


def test_single_neuron_layer_has_zero_soft_wpmi():
    # With K = 1 and λ = 1 the prior equals the neuron's own likelihood, so every score is exactly 0:
    # the reason labels must be computed per full layer.
    acts, images, texts = _random_case(k=1)
    np.testing.assert_allclose(soft_wpmi(acts, images, texts), 0.0, atol=1e-4)
    log_lik = wpmi(acts, images, texts) / 0.4  # S = L - 0.6 L
    np.testing.assert_allclose(wpmi(acts, images, texts, lam=0.0), log_lik, rtol=1e-5)


def test_cos_similarity_hand_computed():
    # P = [[1, 0.6], [0, 0.8]]; q = (1, 0): cos with column 0 is 1, with column 1 is 0.6 / 1 = 0.6.
    images = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    texts = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)
    acts = np.array([[1.0], [0.0]], np.float32)
    np.testing.assert_allclose(cos_similarity(acts, images, texts), [[1.0, 0.6]], atol=1e-6)


def test_rank_reorder_hand_computed():
    # N = 20, top 5% -> n = 1 image: the reordering is the identity, err = 0, score = -0 for every concept.
    acts, images, texts = _random_case(n=20, k=2)
    np.testing.assert_allclose(rank_reorder(acts, images, texts), 0.0, atol=1e-7)
    # n = 2: v = (2, 1) at images (0, 1). Concept 0 agrees in order (err 0); concept 1 disagrees:
    # v' = (1, 2), err = mean(|2-1|^3, |1-2|^3) = 1. B = mean over perms of mean |u - u_π|^3, u = (1, 2).
    acts = np.zeros((40, 1), np.float32)
    acts[0, 0], acts[1, 0] = 2.0, 1.0
    images = np.zeros((40, 2), np.float32)
    images[:, 0] = 1.0
    images[0], images[1] = [0.8, 0.6], [0.6, 0.8]
    texts = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    rng = np.random.default_rng(0)
    baseline = np.mean(
        [np.mean(np.abs(np.array([1.0, 2.0]) - np.array([1.0, 2.0])[rng.permutation(2)]) ** 3) for _ in range(5)]
    )
    expected_1 = -(1.0 / baseline) / math.sqrt((0.6 + 0.8) / 2)
    got = rank_reorder(acts, images, texts, seed=0)
    assert got[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert got[0, 1] == pytest.approx(expected_1, rel=1e-5)


def test_top_image_indices_descending_with_index_tiebreak():
    acts = np.array([[1.0], [3.0], [3.0], [2.0]], np.float32)
    assert top_image_indices(acts, 3).tolist() == [[1, 2, 3]]
    assert top_image_indices(acts, 10).tolist() == [[1, 2, 3, 0]]


@pytest.mark.parametrize("function", [soft_wpmi, wpmi, cos_similarity, rank_reorder])
def test_planted_concept_neurons_get_their_concept(function):
    rng = np.random.default_rng(3)
    n, m, d = 600, 80, 128  # CLIP is 512-d; in very low dimensions random concepts overlap
    images = _normalise(rng.normal(size=(n, d)))
    texts = _normalise(rng.normal(size=(m, d)))
    concept_acts = images @ texts.T
    planted = rng.choice(m, size=16, replace=False)
    noise = 0.2 * concept_acts.std() * rng.normal(size=(n, 16))
    acts = np.concatenate([concept_acts[:, planted] + noise, rng.normal(size=(n, 8))], axis=1).astype(np.float32)
    labels = function(acts, images, texts).argmax(axis=1)
    assert labels[:16].tolist() == planted.tolist()


def test_label_depends_on_the_other_neurons_of_the_layer():
    # Concepts A, B, C are orthonormal text vectors, so P equals the images' coordinates.
    texts = np.eye(3, dtype=np.float32)
    groups = [[0.60, 0.55, 0.10], [0.90, 0.10, 0.10], [0.40, 0.40, 0.40]]  # A just above B; clearly A; mixed
    images = np.concatenate([_normalise(np.tile([group], (10, 1))) for group in groups])
    indicator = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0) + np.linspace(0, 0.01, 30)[:, None]
    n0, n_a, n_mixed = indicator[:, 0], indicator[:, 1], indicator[:, 2]
    with_a_neighbour = soft_wpmi(np.stack([n0, n_a, n_mixed], 1), images, texts, top_k=10)
    with_mixed_neighbours = soft_wpmi(np.stack([n0, n_mixed, n_mixed], 1), images, texts, top_k=10)
    # Next to a clear A-neuron, A is common in the layer (high prior), so n0 is called B; next to neurons
    # that like A and B alike, the same n0 with the same activations is called A.
    assert with_a_neighbour[0].argmax() == 1
    assert with_mixed_neighbours[0].argmax() == 0


def test_memory_bounded_pass_equals_straightforward_implementation():
    acts, images, texts = _random_case(seed=5, n=250, m=70, k=9)
    np.testing.assert_allclose(
        soft_wpmi(acts, images, texts, top_k=40),
        reference.soft_wpmi_reference(acts, images, texts, top_k=40),
        rtol=1e-4,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        wpmi(acts, images, texts), reference.wpmi_reference(acts, images, texts), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        cos_similarity(acts, images, texts),
        reference.cos_similarity_reference(acts, images, texts),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        rank_reorder(acts, images, texts, top_fraction=0.1),
        reference.rank_reorder_reference(acts, images, texts, top_fraction=0.1),
        rtol=1e-4,
    )


def test_chunk_sizes_do_not_change_the_log_likelihood():
    acts, images, texts = _random_case(seed=7, n=200, m=150, k=6)
    top = top_image_indices(acts, 30)
    weights = soft_membership(30)
    whole = pmi_log_likelihood(top, weights, images, texts, a=10.0, min_prob=1e-7)
    used = len(np.unique(top))
    # concept chunks of 64, 64, 22 columns (log-normalisers computed first), tiny row and neuron blocks
    chunked = pmi_log_likelihood(
        top,
        weights,
        images,
        texts,
        a=10.0,
        min_prob=1e-7,
        max_prob_bytes=used * 64 * 4 - 1,
        row_chunk=7,
        pair_chunk=13,
    )
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="memberships"):
        pmi_log_likelihood(top, np.zeros(30), images, texts, a=10.0, min_prob=1e-7)
