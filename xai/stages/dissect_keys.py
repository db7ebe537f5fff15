"""What identifies each piece of the dissect stage (:mod:`xai.stages.dissect`) in cache keys: CLIP embeddings,
pooled activations and scores, all read from the run plan; and each model's probe preprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xai import clip
from xai.cache import code_version
from xai.dissect import clip_embed

if TYPE_CHECKING:
    import torch

    from xai.context import RunContext
    from xai.plan import DissectedModelPlan, DissectPlan, ModelPlan

    Device = torch.device | str

PROBE_CODE = ("dissect/activations", "dissect/probe_pass", "dissect/clip_embed", "dissect/probes", "dissect/layers")
"""The domain modules that compute the expensive probe artifacts (CLIP image and text embeddings, pooled
activations). Analysis code (``dissect/findings.py``, the similarity functions) is left out, so that editing it does
not throw away a 63k-image probe pass."""
LABEL_CODE = ("dissect",)
"""The domain package that computes labels, summaries and checks from the probe artifacts."""


def _dissect(context: RunContext) -> DissectPlan:
    planned = context.plan.dissect
    if planned is None:
        raise ValueError("the run plan has no dissect section")  # a bug: the plan makes one for this stage
    return planned


def model_parts(model: ModelPlan) -> dict[str, Any]:
    """What identifies a dissected model in cache keys, known without loading it: its model id, architecture,
    resolved weights member and weights key (random seed, published file hash or checkpoint sha256)."""
    return {
        "model": model.model_id,
        "architecture": model.spec.architecture,
        "weights_member": model.weights_member,
        "weights": model.weights_key,
    }


def clip_parts(context: RunContext, planned: DissectPlan | None = None, device: Device | None = None) -> dict[str, Any]:
    """What identifies CLIP embeddings besides their inputs: weights, architecture (QuickGELU) and precision (that
    of ``device``, where they are computed: the driver's by default).

    ``planned`` (here and below): the dissection whose pieces are keyed, by default the run plan's Task 1; the
    concepts stage passes its own (the explained model at its target layer, with Task 1's settings), so that its
    CLIP embeddings are the same entries as Task 1's when the settings match."""
    return {
        "clip": (planned or _dissect(context)).clip_weights_key,
        "clip_arch": clip.CLIP_ARCH,
        "clip_dtype": str(clip.clip_dtype(device or context.device)).removeprefix("torch."),
    }


def probe_device(context: RunContext) -> torch.device:
    """Where the probe pass runs: the run's units (a cluster's GPUs under ``executor: ray``), else the driver."""
    from xai.units import unit_device

    return unit_device(context)


def _probe_piece(context: RunContext) -> dict[str, Any]:
    # the probe artifacts carry the narrower code version of the modules that compute them
    return {"seed": context.plan.seed, "code": code_version(*PROBE_CODE)}


def clip_image_parts(context: RunContext, probe_key: str, planned: DissectPlan | None = None) -> dict[str, Any]:
    """Key of the probe set's CLIP image embeddings."""
    return {
        "probe": probe_key,
        **_probe_piece(context),
        "piece": "clip-images",
        **clip_parts(context, planned, probe_device(context)),
    }


def clip_text_parts(context: RunContext, concepts: Sequence[str], planned: DissectPlan | None = None) -> dict[str, Any]:
    """Key of a concept list's CLIP text embeddings (independent of the probe set)."""
    return {
        **_probe_piece(context),
        "piece": "clip-texts",
        **clip_parts(context, planned),
        "concepts": clip_embed.concepts_hash(concepts),
    }


def activation_parts(
    context: RunContext, entry: DissectedModelPlan, probe_key: str, planned: DissectPlan | None = None
) -> dict[str, Any]:
    """Key of one model's pooled probe activations: CPU and CUDA (TF32, other kernels) give different numbers."""
    return {
        "probe": probe_key,
        **_probe_piece(context),
        **model_parts(entry.model),
        "layers": list(entry.layers.layers),
        "pool": (planned or _dissect(context)).pool,
        "pooling": list(entry.layers.pooling),
        "device": device_type(probe_device(context)),
        "piece": "activations",
    }


def scoring_parts(
    context: RunContext,
    entry: DissectedModelPlan,
    probe_key: str,
    concepts_key: str,
    planned: DissectPlan | None = None,
) -> dict[str, Any]:
    """Key of one model's labels and what is derived from them (summary, fc checks). Scored where the driver runs;
    when the probe pass ran on another device type (a cluster's GPUs), that device too: it made the inputs."""
    planned = planned or _dissect(context)
    probe = device_type(probe_device(context))
    elsewhere = {"probe_device": probe} if probe != device_type(context.device) else {}
    return {
        "probe": probe_key,
        "seed": context.plan.seed,
        "code": code_version(*LABEL_CODE),
        **model_parts(entry.model),
        "layers": list(entry.layers.layers),
        "pool": planned.pool,
        "pooling": list(entry.layers.pooling),
        "concepts": concepts_key,
        **clip_parts(context, planned),
        "similarity": planned.similarity,
        "top_images": planned.top_images,
        "scoring_device": device_type(context.device),
        **elsewhere,
    }


def device_type(device: Device) -> str:
    import torch

    return torch.device(device).type
