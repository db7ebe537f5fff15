"""Straightforward implementations of the CLIP-Dissect similarities, written line by line from the spec.

They materialise the full (N, M) concept-activation matrix ``P`` and its softmax and loop over neurons, as the
reference repository does. They exist as the yardstick for tests (equality with the memory-bounded versions in
:mod:`xai.dissect.similarity`) and for ``bench/bench_dissect.py``; the pipeline never calls them.
"""

from __future__ import annotations

import numpy as np
import torch


def concept_activation_matrix(image_embeddings: np.ndarray, text_embeddings: np.ndarray) -> torch.Tensor:
    """``P = I Tᵀ`` (N, M), float32."""
    return (
        torch.from_numpy(np.asarray(image_embeddings, np.float32))
        @ torch.from_numpy(np.asarray(text_embeddings, np.float32)).T
    )


def _pmi(activations, image_embeddings, text_embeddings, top_k, a, lam, min_prob, weights) -> np.ndarray:
    probs = torch.softmax(a * concept_activation_matrix(image_embeddings, text_embeddings), dim=1)
    acts = torch.from_numpy(np.asarray(activations, np.float32))
    top = torch.topk(acts, k=min(top_k, acts.shape[0]), dim=0).indices.T  # (K, T)
    weights = torch.as_tensor(weights[: top.shape[1]], dtype=torch.float32)[:, None]
    rows = []
    for k in range(acts.shape[1]):
        gathered = probs[top[k]]  # (T, M)
        rows.append(torch.log(1 + weights * (gathered - 1) + min_prob).sum(dim=0))
    log_lik = torch.stack(rows)
    prior = torch.logsumexp(log_lik, dim=0) - np.log(log_lik.shape[0])
    return (log_lik - lam * prior).numpy()


def soft_wpmi_reference(
    activations,
    image_embeddings,
    text_embeddings,
    *,
    top_k=100,
    a=10.0,
    lam=1.0,
    min_prob=1e-7,
    p_start=0.998,
    p_end=0.97,
) -> np.ndarray:
    """SoftWPMI on the materialised softmax, one neuron at a time."""
    ranks = np.arange(top_k, dtype=np.float64)
    weights = (p_start - ranks / top_k * (p_start - p_end)).astype(np.float32)
    return _pmi(activations, image_embeddings, text_embeddings, top_k, a, lam, min_prob, weights)


def wpmi_reference(
    activations, image_embeddings, text_embeddings, *, top_k=28, a=2.0, lam=0.6, min_prob=1e-7
) -> np.ndarray:
    """Hard WPMI on the materialised softmax (membership 1 gives ``log(π + ε)``)."""
    weights = np.ones(top_k, dtype=np.float32)
    return _pmi(activations, image_embeddings, text_embeddings, top_k, a, lam, min_prob, weights)


def cos_similarity_reference(activations, image_embeddings, text_embeddings) -> np.ndarray:
    """Cosine over images between each activation column and each column of ``P``."""
    concept_acts = concept_activation_matrix(image_embeddings, text_embeddings)
    concept_acts = concept_acts / concept_acts.norm(dim=0, keepdim=True)
    acts = torch.from_numpy(np.asarray(activations, np.float32))
    acts = acts / acts.norm(dim=0, keepdim=True)
    return (acts.T @ concept_acts).numpy()


def rank_reorder_reference(
    activations, image_embeddings, text_embeddings, *, top_fraction=0.05, p=3.0, scale_p=0.5, seed=0
) -> np.ndarray:
    """Rank-reorder with explicit double loops over neurons and concepts (tiny inputs only)."""
    concept_acts = concept_activation_matrix(image_embeddings, text_embeddings).numpy().astype(np.float64)
    acts = np.asarray(activations, np.float64)
    n_top = max(1, int(np.floor(top_fraction * acts.shape[0])))
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(n_top) for _ in range(5)]
    scores = np.empty((acts.shape[1], concept_acts.shape[1]))
    for k in range(acts.shape[1]):
        top = np.lexsort((np.arange(acts.shape[0]), -acts[:, k]))[:n_top]
        values = acts[top, k]
        ascending = values[::-1]
        baseline = max(np.mean([np.mean(np.abs(ascending - ascending[q]) ** p) for q in perms]), 1e-12)
        for m in range(concept_acts.shape[1]):
            cos = concept_acts[top, m]
            ranks = np.argsort(np.argsort(cos, kind="stable"), kind="stable")
            reordered = ascending[ranks]
            err = np.mean(np.abs(values - reordered) ** p)
            scores[k, m] = -(err / baseline) / max(cos.mean(), 1e-6) ** scale_p
    return scores.astype(np.float32)
