"""What identifies and describes each piece of the dissect stage (:mod:`xai.stages.dissect`): the cache-key parts
of CLIP embeddings, pooled activations and scores; what identifies a dissected model without loading it (spec,
weights member, weights, layers as resolved, pooling); its probe preprocessing; and the :class:`DissectedModel`
the report reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xai import models
from xai.cache import code_version, probe_code_version
from xai.dissect import clip_embed
from xai.dissect.layers import LayerPlan, is_preset, layer_plan
from xai.stages import weights_key

if TYPE_CHECKING:
    import torch

    from xai.classifiers import ClassifierSpec
    from xai.config import Config

    Device = torch.device | str


@dataclass(frozen=True)
class DissectedModel:
    """What the report says about one dissected model: its architecture, weights and layers, as resolved."""

    display_name: str
    architecture: str
    """torchvision model name (``resnet18``, ``vit_b_16``)"""
    weights: str
    """the weights enum member, the published file or the user's checkpoint with its sha256"""
    plan: LayerPlan
    preset: bool
    """one of the paper's models (its fc self-check and published rows apply)"""
    no_self_check: str = ""
    """why the final-layer self-check was not run (empty when it was)"""


def model_parts(config: Config, spec: ClassifierSpec) -> dict[str, Any]:
    """What identifies a dissected model in cache keys, known without loading it: its display name,
    architecture, resolved weights member and weights (random seed, published file hash or checkpoint sha256)."""
    from xai.classifiers import resolve_weights

    return {
        "model": spec.display_name,
        "architecture": spec.name,
        "weights_member": resolve_weights(spec.name, spec.weights).name,
        "weights": weights_key(config, spec),
    }


def dissected_model(config: Config, spec: ClassifierSpec) -> DissectedModel:
    """The :class:`DissectedModel` of ``spec``; its layers resolved on the bare architecture (no weights read)."""
    from xai.classifiers import resolve_weights
    from xai.models import file_sha256

    member = resolve_weights(spec.name, spec.weights).name
    if spec.checkpoint is not None:
        weights = f"{spec.checkpoint.name} (sha256 {file_sha256(spec.checkpoint)}), architecture of {member}"
    elif spec.published is not None:
        weights = spec.published.filename
    else:
        weights = member
    plan = layer_plan(spec, config.dissect.layers)
    preset = is_preset(spec)
    if not preset:
        why = (
            "not one of the paper's models (resnet18_imagenet, resnet18_places365); the self-check's concept sets, "
            "matching rules and published rows are theirs"
        )
    elif plan.final_layer != "fc":
        why = "its final layer fc is not among the dissected layers"
    else:
        why = ""
    return DissectedModel(spec.display_name, spec.name, weights, plan, preset, why)


def pool_mode(config: Config) -> str:
    return "avg" if config.dissect.pool == "mean" else "max"


def clip_parts(config: Config, device: Device) -> dict[str, Any]:
    """What identifies CLIP embeddings besides their inputs: weights, architecture (QuickGELU) and precision."""
    return {
        "clip": weights_key(config, "clip"),
        "clip_arch": models.CLIP_ARCH,
        "clip_dtype": str(models.clip_dtype(device)).removeprefix("torch."),
    }


def probe_artifact_parts(config: Config) -> dict[str, Any]:
    # the probe artifacts carry the narrower code version of the modules that compute them
    return {"seed": config.seed, "code": probe_code_version()}


def clip_image_parts(config: Config, probe_key: str, device: Device) -> dict[str, Any]:
    """Key of the probe set's CLIP image embeddings."""
    return {"probe": probe_key, **probe_artifact_parts(config), "piece": "clip-images", **clip_parts(config, device)}


def clip_text_parts(config: Config, concepts: Sequence[str], device: Device) -> dict[str, Any]:
    """Key of a concept list's CLIP text embeddings (independent of the probe set)."""
    return {
        **probe_artifact_parts(config),
        "piece": "clip-texts",
        **clip_parts(config, device),
        "concepts": clip_embed.concepts_hash(concepts),
    }


def activation_parts(config: Config, spec: ClassifierSpec, probe_key: str, device: Device) -> dict[str, Any]:
    """Key of one model's pooled probe activations: CPU and CUDA (TF32, other kernels) give different numbers."""
    plan = layer_plan(spec, config.dissect.layers)
    return {
        "probe": probe_key,
        "seed": config.seed,
        "code": probe_code_version(),
        **model_parts(config, spec),
        "layers": list(plan.layers),
        "pool": pool_mode(config),
        "pooling": list(plan.pooling),
        "device": device_type(device),
        "piece": "activations",
    }


def scoring_parts(
    config: Config, spec: ClassifierSpec, probe_key: str, concepts_key: str, device: Device
) -> dict[str, Any]:
    settings = config.dissect
    plan = layer_plan(spec, settings.layers)
    return {
        "probe": probe_key,
        "seed": config.seed,
        "code": code_version("dissect"),
        **model_parts(config, spec),
        "layers": list(plan.layers),
        "pool": pool_mode(config),
        "pooling": list(plan.pooling),
        "concepts": concepts_key,
        **clip_parts(config, device),
        "similarity": settings.similarity,
        "top_images": settings.top_images,
        "scoring_device": device_type(device),
    }


def device_type(device: Device) -> str:
    import torch

    return torch.device(device).type


def target_transform(spec: ClassifierSpec) -> Callable[..., Any]:
    """The preprocessing of ``spec``'s probe images: for the paper's models torchvision's ResNet18
    IMAGENET1K_V1 transform, which is CLIP-Dissect's Resize(256), CenterCrop(224), ImageNet mean/std for both the
    ImageNet and the Places365 ResNet18; for any other model its own weights member's ``transforms()``."""
    from torchvision.models import ResNet18_Weights

    from xai.classifiers import resolve_weights

    if is_preset(spec):
        return ResNet18_Weights.IMAGENET1K_V1.transforms()
    return resolve_weights(spec.name, spec.weights).transforms()
