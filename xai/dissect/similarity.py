"""CLIP-Dissect similarity functions between neuron activations and CLIP concept activations.

Notation (Oikarinen & Weng, "CLIP-Dissect", ICLR 2023, Sec. 3): ``Q`` is the (N, K) matrix of pooled neuron
activations on N probe images, ``I`` the (N, D) L2-normalised CLIP image embeddings, ``T`` the (M, D)
L2-normalised CLIP text embeddings of M concepts, and ``P = I Tᵀ`` the (N, M) concept-activation matrix.
Every function returns the (K, M) score matrix ``S``; a neuron's label is ``argmax_m S[k, m]``.

Memory: ``P`` for Broden (63k x 20k) is 5 GB and its softmax another 5 GB. None of these functions
materialise it. The (soft) WPMI family needs softmax rows only for images in some neuron's top-T, so those
rows are computed in chunks straight from the embeddings, consumed, and dropped; ``cos_similarity`` never
needs ``P``
(``Qᵀ P = (Qᵀ I) Tᵀ`` and the column norms of ``P`` follow from the D x D Gram matrix ``IᵀI``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

ROW_CHUNK = 256
"""Probe images per matrix multiply (ROW_CHUNK x M floats)."""
PAIR_CHUNK = 512
"""(neuron, rank) rows whose log-terms are materialised at once (PAIR_CHUNK x concept-chunk floats)."""
MAX_PROB_BYTES = 1 << 30
"""Memory for the softmax rows of all top images; concepts are processed in chunks beyond it."""


def top_image_indices(activations: np.ndarray, count: int) -> np.ndarray:
    """Indices of each neuron's ``count`` highest-activating probe images, best first.

    Args:
        activations: (N, K) pooled activations.
        count: how many images per neuron (clipped to N).

    Returns:
        (K, count) int64 array. Ties are broken by the lower image index, so the result is deterministic.
    """
    activations = np.asarray(activations, dtype=np.float32)
    n_images = activations.shape[0]
    count = min(count, n_images)
    if count == n_images:
        candidates = np.broadcast_to(np.arange(n_images)[:, None], activations.shape)
    else:
        # argpartition keeps this O(N K); the exact order is fixed below by a lexsort on the candidates only.
        candidates = np.argpartition(-activations, count - 1, axis=0)[:count]
    values = np.take_along_axis(activations, candidates, axis=0)
    order = np.lexsort((candidates, -values), axis=0)
    return np.take_along_axis(candidates, order, axis=0).T.astype(np.int64)


def soft_membership(top_k: int, p_start: float = 0.998, p_end: float = 0.97) -> np.ndarray:
    """SoftWPMI example-set membership ``w_r = p_start - (r / T)(p_start - p_end)`` for ranks r = 0..T-1."""
    ranks = np.arange(top_k, dtype=np.float64)
    return (p_start - ranks / top_k * (p_start - p_end)).astype(np.float32)


def _log_normalisers(images: torch.Tensor, texts_t: torch.Tensor, a: float, row_chunk: int) -> torch.Tensor:
    """``log Σ_m exp(a · P_im)`` per image row, computed a chunk of rows at a time."""
    out = torch.empty(images.shape[0], dtype=torch.float32, device=images.device)
    for start in range(0, images.shape[0], row_chunk):
        cosines = images[start : start + row_chunk] @ texts_t
        out[start : start + row_chunk] = torch.logsumexp(cosines.mul_(a), dim=1)
    return out


def pmi_log_likelihood(
    top_images: np.ndarray,
    weights: np.ndarray,
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    *,
    a: float,
    min_prob: float,
    max_prob_bytes: int = MAX_PROB_BYTES,
    row_chunk: int = ROW_CHUNK,
    pair_chunk: int = PAIR_CHUNK,
    device: str | torch.device = "cpu",
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> np.ndarray:
    """``L[g, m] = Σ_r log(1 + w_r (π[σ_g(r), m] - 1) + ε)`` with ``π = softmax_m(a · P)``, memory-bounded.

    Only the U distinct images of ``top_images`` need softmax rows. Their log-normalisers
    ``Z_u = log Σ_m exp(a P_um)`` are computed first, a chunk of rows at a time; then concepts are processed
    in chunks of C columns such that the (U, C) block ``π = exp(a P - Z)`` fits in ``max_prob_bytes`` (one
    chunk, C = M, when everything fits), and each block of neurons gathers its (T, C) rows and sums over
    ranks. Each term is evaluated as ``log w_r + log(π + (1 - w_r + ε) / w_r)``, the same number up to float
    rounding, to save a pass over the block. Peak extra memory: ``max_prob_bytes`` + ``pair_chunk`` x C
    floats, whatever the probe size; the matrix multiply runs twice when the concepts are chunked.

    Args:
        top_images: (G, T) probe-image indices per neuron, best first (rows of several layers may be stacked).
        weights: (T,) membership per rank in (0, 1] (1.0 everywhere gives hard WPMI, ``log(π + ε)``).
        image_embeddings: (N, D) L2-normalised CLIP image embeddings.
        text_embeddings: (M, D) L2-normalised CLIP text embeddings.
        a: softmax temperature multiplier on the cosines.
        min_prob: ε inside the log.
        max_prob_bytes: memory allowed for the (U, C) softmax block.
        row_chunk: image rows per matrix multiply.
        pair_chunk: (neuron, rank) rows gathered at once.
        device: where the matrix multiplies, softmax and log-sums run (``cuda``: the GPU; inputs and the result
            stay NumPy on the host).
        progress: ``progress(steps, total)`` wraps the (concept chunk, neuron block) steps (a bar with an ETA).

    Returns:
        (G, M) float32 log-likelihoods.
    """
    top_images = np.asarray(top_images, dtype=np.int64)
    n_neurons, top_k = top_images.shape
    weights64 = np.asarray(weights, dtype=np.float64)
    if np.any(weights64 <= 0) or np.any(weights64 > 1):
        raise ValueError("memberships must lie in (0, 1]")
    device = torch.device(device)
    offset = torch.from_numpy(((1.0 - weights64 + min_prob) / weights64).astype(np.float32))[None, :, None]
    offset = offset.to(device)
    used = np.unique(top_images)
    local = torch.from_numpy(np.searchsorted(used, top_images)).to(device)
    images = torch.from_numpy(np.ascontiguousarray(np.asarray(image_embeddings, np.float32)[used])).to(device)
    texts = torch.from_numpy(np.ascontiguousarray(text_embeddings, dtype=np.float32)).to(device)
    n_concepts = texts.shape[0]
    concept_chunk = min(n_concepts, max(64, max_prob_bytes // (4 * len(used))))
    block_neurons = max(1, pair_chunk // top_k)
    log_likelihood = torch.empty(n_neurons, n_concepts, dtype=torch.float32, device=device)
    steps = math.ceil(n_concepts / concept_chunk) * math.ceil(n_neurons / block_neurons)
    ticker = iter(progress(range(steps), steps)) if progress is not None else iter(())
    with torch.no_grad():
        log_norm = None if concept_chunk == n_concepts else _log_normalisers(images, texts.T, a, row_chunk)
        for c0 in range(0, n_concepts, concept_chunk):
            c1 = min(n_concepts, c0 + concept_chunk)
            texts_t = texts[c0:c1].T.contiguous()
            # fresh contiguous buffers per chunk so every out= below writes to contiguous memory
            block_probs = torch.empty(len(used), c1 - c0, dtype=torch.float32, device=device)
            buffer = torch.empty(block_neurons * top_k, c1 - c0, dtype=torch.float32, device=device)
            sums = torch.empty(block_neurons, c1 - c0, dtype=torch.float32, device=device)
            for r0 in range(0, len(used), row_chunk):
                rows = block_probs[r0 : r0 + row_chunk]
                torch.matmul(images[r0 : r0 + row_chunk], texts_t, out=rows)
                rows.mul_(a)
                if log_norm is None:  # the whole concept axis is here: an in-place softmax
                    rows.sub_(rows.amax(dim=1, keepdim=True)).exp_()
                    rows.div_(rows.sum(dim=1, keepdim=True))
                else:
                    rows.sub_(log_norm[r0 : r0 + row_chunk, None]).exp_()
            for k0 in range(0, n_neurons, block_neurons):
                k1 = min(n_neurons, k0 + block_neurons)
                block = buffer[: (k1 - k0) * top_k]
                torch.index_select(block_probs, 0, local[k0:k1].reshape(-1), out=block)
                terms = block.view(k1 - k0, top_k, c1 - c0).add_(offset).log_()
                torch.sum(terms, dim=1, out=sums[: k1 - k0])
                log_likelihood[k0:k1, c0:c1] = sums[: k1 - k0]
                next(ticker, None)
            del block_probs, buffer
        for _ in ticker:  # close the bar
            pass
        log_likelihood.add_(float(np.log(weights64).sum()))
    return log_likelihood.cpu().numpy()


def layer_log_prior(log_likelihood: np.ndarray) -> np.ndarray:
    """Concept prior from the layer itself: ``log p(t_m) = log((1/K) Σ_k exp(L[k, m]))`` (log-sum-exp)."""
    scores = torch.from_numpy(np.ascontiguousarray(log_likelihood, dtype=np.float32))
    return (torch.logsumexp(scores, dim=0) - math.log(scores.shape[0])).numpy()


def pmi_scores(log_likelihood: np.ndarray, lam: float) -> np.ndarray:
    """``S = L - λ · log p(t_m)`` with the layer prior of :func:`layer_log_prior`."""
    return (log_likelihood - np.float32(lam) * layer_log_prior(log_likelihood)).astype(np.float32)


def soft_wpmi(
    activations: np.ndarray,
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    *,
    top_k: int = 100,
    a: float = 10.0,
    lam: float = 1.0,
    min_prob: float = 1e-7,
    p_start: float = 0.998,
    p_end: float = 0.97,
) -> np.ndarray:
    """SoftWPMI, CLIP-Dissect's default similarity (paper Sec. 3, repo defaults).

    ``π_im = softmax_m(a P_i,:)``; neuron k's top-T images σ_k(r) get membership ``w_r = p_start -
    (r/T)(p_start - p_end)``; ``L_km = Σ_{r<T} log(1 + w_r (π_{σ_k(r),m} - 1) + ε)``;
    ``log p(t_m) = logsumexp_k(L_km) - log K`` over the K neurons of the same layer;
    ``S_km = L_km - λ log p(t_m)``. Defaults T=100, a=10, λ=1, ε=1e-7, 0.998 → 0.97.

    Deviations: none in the result (up to float32 rounding); ``P`` is never materialised (see module doc) and
    ties among equal activations are broken by the lower image index.

    Args:
        activations: (N, K) pooled activations of one layer (the prior couples its neurons).
        image_embeddings: (N, D) L2-normalised CLIP image embeddings.
        text_embeddings: (M, D) L2-normalised CLIP text embeddings.
        top_k, a, lam, min_prob, p_start, p_end: the constants above.

    Returns:
        (K, M) float32 scores.
    """
    top = top_image_indices(activations, top_k)
    weights = soft_membership(top.shape[1], p_start, p_end)
    log_lik = pmi_log_likelihood(top, weights, image_embeddings, text_embeddings, a=a, min_prob=min_prob)
    return pmi_scores(log_lik, lam)


def wpmi(
    activations: np.ndarray,
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    *,
    top_k: int = 28,
    a: float = 2.0,
    lam: float = 0.6,
    min_prob: float = 1e-7,
) -> np.ndarray:
    """Hard WPMI: ``L_km = Σ_{r<T} log(π_{σ_k(r),m} + ε)``, ``S_km = L_km - λ log p(t_m)``.

    ``π = softmax_m(a P)`` and the same-layer prior as :func:`soft_wpmi`. Defaults T=28, a=2, λ=0.6, ε=1e-7.
    Deviations: none (up to float32 rounding).
    """
    top = top_image_indices(activations, top_k)
    weights = np.ones(top.shape[1], dtype=np.float32)
    log_lik = pmi_log_likelihood(top, weights, image_embeddings, text_embeddings, a=a, min_prob=min_prob)
    return pmi_scores(log_lik, lam)


def cos_similarity(activations: np.ndarray, image_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
    """Cosine over images between ``q_k`` and ``P_:,m`` (both L2-normalised over images, no centering).

    ``S_km = (q_k / ‖q_k‖)ᵀ P_:,m / ‖P_:,m‖`` computed as ``((Q̂ᵀ I) Tᵀ)_km / sqrt(T_m (IᵀI) T_mᵀ)``, so ``P``
    is never formed. Deviation: an all-zero neuron (dead channel) scores 0 instead of NaN.
    """
    with torch.no_grad():
        acts = torch.from_numpy(np.ascontiguousarray(activations, dtype=np.float64))
        images = torch.from_numpy(np.ascontiguousarray(image_embeddings, dtype=np.float64))
        texts = torch.from_numpy(np.ascontiguousarray(text_embeddings, dtype=np.float64))
        acts = acts / acts.norm(dim=0, keepdim=True).clamp_min(1e-30)
        gram = images.T @ images
        column_norm = ((texts @ gram) * texts).sum(dim=1).clamp_min(1e-30).sqrt()
        scores = (acts.T @ images) @ texts.T / column_norm[None, :]
    return scores.to(torch.float32).numpy()


def rank_reorder(
    activations: np.ndarray,
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    *,
    top_fraction: float = 0.05,
    p: float = 3.0,
    scale_p: float = 0.5,
    seed: int = 0,
    neuron_chunk: int = 16,
    concept_chunk: int = 2048,
) -> np.ndarray:
    """Rank-reorder similarity (CLIP-Dissect repo; paper Sec. 3 / Table 3).

    For neuron k take its top ``n = ⌊top_fraction · N⌋`` activations ``v_1 ≥ … ≥ v_n`` at images ``j_r``; for
    concept m let ``c_r = P_{j_r, m}`` and give the r-th image the activation ``v'_r = u_{ρ_r}``, where ``u``
    is
    ``v`` sorted ascending and ``ρ_r`` the ascending rank of ``c_r``. ``err_km = mean_r |v_r - v'_r|^p``;
    ``B_k = mean over 5 permutations π of mean_r |u_r - u_π(r)|^p``;
    ``S_km = -(err_km / B_k) / (mean_r c_r)^scale_p``.

    Deviations: the 5 permutations are seeded (the reference leaves them unseeded; ``B_k`` only rescales a
    neuron's row, never its argmax); ``mean_r c_r`` is floored at 1e-6 so that a negative mean cosine (only
    possible with untrained CLIP weights) gives a finite score instead of NaN; ``B_k`` is floored at 1e-12
    for constant (dead) neurons. Cost is O(K · n · M · log n): the slowest function, as in the reference.
    """
    acts = np.asarray(activations, dtype=np.float32)
    n_images, n_neurons = acts.shape
    n_top = max(1, math.floor(top_fraction * n_images))
    top = top_image_indices(acts, n_top)
    values = torch.from_numpy(np.take_along_axis(acts, top.T, axis=0).T.copy())  # (K, n) descending
    ascending = values.flip(1)
    rng = np.random.default_rng(seed)
    baseline = torch.zeros(n_neurons, dtype=torch.float64)
    for _ in range(5):
        perm = torch.from_numpy(rng.permutation(n_top))
        baseline += (ascending - ascending[:, perm]).abs().pow(p).mean(dim=1).double()
    baseline = (baseline / 5).clamp_min(1e-12).float()

    used = np.unique(top)
    local = torch.from_numpy(np.searchsorted(used, top))
    images = torch.from_numpy(np.ascontiguousarray(image_embeddings, dtype=np.float32)[used])
    texts = torch.from_numpy(np.ascontiguousarray(text_embeddings, dtype=np.float32))
    scores = torch.empty(n_neurons, texts.shape[0], dtype=torch.float32)
    # keep each (neurons, n, concepts) block near 2^25 elements (128 MB) however large the probe set
    block = max(1, min(neuron_chunk, (1 << 25) // (n_top * min(concept_chunk, texts.shape[0]))))
    with torch.no_grad():
        for c0 in range(0, texts.shape[0], concept_chunk):
            cosines = images @ texts[c0 : c0 + concept_chunk].T  # (|used|, C)
            for k0 in range(0, n_neurons, block):
                k1 = min(n_neurons, k0 + block)
                concept_act = cosines[local[k0:k1]]  # (kb, n, C)
                order = concept_act.argsort(dim=1, stable=True)
                reordered = torch.empty_like(concept_act)
                reordered.scatter_(1, order, ascending[k0:k1, :, None].expand_as(concept_act))
                err = (values[k0:k1, :, None] - reordered).abs_().pow_(p).mean(dim=1)
                mean_cos = concept_act.mean(dim=1).clamp_min(1e-6)
                scores[k0:k1, c0 : c0 + concept_chunk] = -(err / baseline[k0:k1, None]) / mean_cos.pow(scale_p)
    return scores.numpy()


SIMILARITY_FUNCTIONS = {
    "soft_wpmi": soft_wpmi,
    "wpmi": wpmi,
    "cos_similarity": cos_similarity,
    "rank_reorder": rank_reorder,
}
"""Name -> function; CLIP-Dissect's ``--similarity_fn`` choices (``cos_similarity_cubed`` omitted)."""


def pmi_defaults(similarity: str) -> dict[str, float]:
    """The repo defaults of a PMI-family similarity, as keyword arguments."""
    if similarity == "soft_wpmi":
        return {"top_k": 100, "a": 10.0, "lam": 1.0, "min_prob": 1e-7, "p_start": 0.998, "p_end": 0.97}
    if similarity == "wpmi":
        return {"top_k": 28, "a": 2.0, "lam": 0.6, "min_prob": 1e-7}
    raise ValueError(f"{similarity!r} is not a PMI-family similarity")


def pmi_weights(similarity: str, top_k: int, params: dict[str, float]) -> np.ndarray:
    """Per-rank membership of a PMI-family similarity: linear for ``soft_wpmi``, all ones for ``wpmi``."""
    if similarity == "soft_wpmi":
        return soft_membership(top_k, params.get("p_start", 0.998), params.get("p_end", 0.97))
    return np.ones(top_k, dtype=np.float32)


def split_rows(matrix: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Split stacked per-layer rows back into one block per layer."""
    return np.split(matrix, np.cumsum(sizes)[:-1], axis=0)
