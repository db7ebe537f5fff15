"""Neuron labelling, CLIP-Dissect step 3 for one model: pooled activations + CLIP embeddings ->
:class:`DissectionResult` (what the dissect stage, :mod:`xai.stages.dissect`, runs per model)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from xai.dissect import similarity as sim
from xai.dissect.result import CSV_TOP_CONCEPTS, DissectionResult, LayerDissection, label_layer

DEFAULT_TOP_IMAGES = 10
"""Top-activating probe images kept per neuron (thumbnail strips show the first 5)."""


def normalise_rows(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalise rows (float32); CLIP-Dissect's ``P`` is a matrix of cosines."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)


def _check_inputs(activations_by_layer, image_embeddings, text_embeddings, concepts, probe_ids) -> None:
    n_images = image_embeddings.shape[0]
    if not activations_by_layer:
        raise ValueError("no layers to dissect")
    for name, acts in activations_by_layer.items():
        if acts.ndim != 2 or acts.shape[0] != n_images:
            raise ValueError(f"layer {name!r}: activations {acts.shape} do not match {n_images} probe images")
    if text_embeddings.shape[0] != len(concepts):
        raise ValueError(f"{text_embeddings.shape[0]} text embeddings for {len(concepts)} concepts")
    if text_embeddings.shape[1] != image_embeddings.shape[1]:
        raise ValueError("image and text embeddings differ in width")
    if len(probe_ids) != n_images:
        raise ValueError(f"{len(probe_ids)} probe ids for {n_images} probe images")


def _pmi_scores_by_layer(
    activations: Sequence[np.ndarray],
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    similarity: str,
    params: Mapping[str, float],
    device: str | torch.device = "cpu",
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> list[np.ndarray]:
    """(Soft) WPMI of several layers in one pass over the softmax rows (each keeps its own prior)."""
    tops = [sim.top_image_indices(acts, int(params["top_k"])) for acts in activations]
    weights = sim.pmi_weights(similarity, tops[0].shape[1], dict(params))
    log_lik = sim.pmi_log_likelihood(
        np.concatenate(tops),
        weights,
        image_embeddings,
        text_embeddings,
        a=float(params["a"]),
        min_prob=float(params["min_prob"]),
        device=device,
        progress=progress,
    )
    return [sim.pmi_scores(block, float(params["lam"])) for block in sim.split_rows(log_lik, [len(t) for t in tops])]


def dissect_model(
    activations_by_layer: Mapping[str, np.ndarray],
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    concepts: Sequence[str],
    *,
    model_name: str,
    probe_ids: Sequence[str],
    similarity: str = "soft_wpmi",
    similarity_params: Mapping[str, float] | None = None,
    top_concepts: int = CSV_TOP_CONCEPTS,
    top_images: int = DEFAULT_TOP_IMAGES,
    null_seed: int | None = 0,
    device: str | torch.device = "cpu",
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> DissectionResult:
    """Label every neuron of every layer of one model (CLIP-Dissect step 3 plus the bookkeeping).

    Per layer: ``S = similarity(Q, I, T)`` (K, M); label = ``argmax_m S``, similarity = ``max_m S``; the
    top ``top_concepts`` concepts and the ``top_images`` highest-activating probe images are kept. PMI-family
    scores of all layers are computed in one pass over the probe images but each layer keeps its own concept
    prior (the spec: a label depends on the other neurons *of its layer*).

    Null (our addition, not in the paper): with ``null_seed`` set, each layer is scored a second time with
    its activation rows shuffled by one seeded permutation of the probe images, which keeps the layer's
    activation statistics and cross-neuron structure but breaks any link between a neuron and image content.
    Each neuron's best null score is stored; :mod:`xai.dissect.analysis` turns their 95th percentile into the
    layer's "interpretable" threshold. This doubles the scoring time; pass ``None`` to skip it.

    Args:
        activations_by_layer: ``{layer: (N, K) pooled activations}`` in hook order.
        image_embeddings: (N, D) CLIP image embeddings (re-normalised here).
        text_embeddings: (M, D) CLIP text embeddings of ``concepts`` (re-normalised here).
        concepts: the M concept strings.
        model_name: recorded in the result.
        probe_ids: N probe image ids (index = probe index).
        similarity: ``soft_wpmi`` (default), ``wpmi``, ``cos_similarity`` or ``rank_reorder``.
        similarity_params: overrides of the similarity's keyword arguments (repo defaults otherwise).
        top_concepts: concepts kept per neuron (label + runner-ups).
        top_images: probe images kept per neuron.
        null_seed: seed of the shuffled-probe null, or None for no null.
        device: where (soft) WPMI scoring runs (the other similarities run on the CPU).
        progress: ``progress(steps, total)`` wraps the (soft) WPMI scoring steps (a bar with total and ETA).

    Returns:
        The :class:`DissectionResult`.
    """
    if similarity not in sim.SIMILARITY_FUNCTIONS:
        raise ValueError(f"unknown similarity {similarity!r}; choose from {sorted(sim.SIMILARITY_FUNCTIONS)}")
    images = normalise_rows(image_embeddings)
    texts = normalise_rows(text_embeddings)
    layers = {name: np.asarray(acts, np.float32) for name, acts in activations_by_layer.items()}
    _check_inputs(layers, images, texts, concepts, probe_ids)
    params: dict[str, Any] = {}
    if similarity in ("soft_wpmi", "wpmi"):
        params = sim.pmi_defaults(similarity)
    params.update(similarity_params or {})

    names = list(layers)
    stacks = [layers[name] for name in names]
    if null_seed is not None:
        permutation = np.random.default_rng(null_seed).permutation(images.shape[0])
        stacks += [layers[name][permutation] for name in names]
    if similarity in ("soft_wpmi", "wpmi"):
        score_blocks = _pmi_scores_by_layer(stacks, images, texts, similarity, params, device, progress)
    else:
        function = sim.SIMILARITY_FUNCTIONS[similarity]
        score_blocks = [function(acts, images, texts, **params) for acts in stacks]

    results: list[LayerDissection] = []
    for position, name in enumerate(names):
        null = None
        if null_seed is not None:
            null = score_blocks[len(names) + position].max(axis=1)
        top = sim.top_image_indices(layers[name], top_images)
        results.append(
            label_layer(name, score_blocks[position], layers[name], top, top_concepts=top_concepts, null_scores=null)
        )
    recorded = {**params, "top_concepts": top_concepts, "top_images": top_images, "null_seed": null_seed}
    return DissectionResult(
        model_name=model_name,
        similarity=similarity,
        params=recorded,
        concepts=tuple(concepts),
        probe_ids=tuple(probe_ids),
        layers=tuple(results),
    )
