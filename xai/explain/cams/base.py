"""The CAM pipeline: one entry point, :func:`compute_cam`, for every CAM in the registry.

It validates the inputs, resolves the method's implementation by name from the registry, times it and wraps the
map in a :class:`~xai.explain.artifacts.CamMap`. Implementations are either a ``pytorch_grad_cam`` class (run by
the adapter :func:`xai.explain.cams.library.library_cam`) or a :data:`~xai.explain.cams._core.CamFunction` (our
exact fast AblationCAM/ScoreCAM); the engine imports none of the latter. Every hook is registered inside a context
manager (:mod:`xai.explain.cams._core`), so it is removed even when the model raises.
"""

from __future__ import annotations

import importlib
import time

import numpy as np
import torch
from torch import nn

from xai.explain.artifacts import CamMap
from xai.explain.cams._core import CamFunction, preserved_gradients
from xai.explain.cams.library import library_cam
from xai.explain.inference import check_eval_mode
from xai.explain.registry import method_info


def compute_cam(
    model: nn.Module,
    input_tensor: torch.Tensor,
    method: str,
    target_layer: nn.Module,
    target_class: int,
    *,
    batch_size: int | None = None,
    reshape: str | None = None,
) -> CamMap:
    """Class activation map of ``target_class`` for one image, by any CAM method of the registry.

    Args:
        model: classifier in eval mode (never switched: grad-cam's constructor would call ``model.eval()``).
        input_tensor: (1, 3, H, W) normalised input.
        method: a registry name with ``family == "cam"`` (``gradcam``, ``ablationcam``, ``scorecam``, ...).
        target_layer: module whose output is explained, e.g. ``model.layer4[-1]``.
        target_class: logit index explained, normally the predicted class. It is always passed explicitly
            as ``ClassifierOutputTarget(target_class)``; grad-cam's ``targets=None`` is never used.
        batch_size: rows per forward pass for ScoreCAM/AblationCAM; None picks one for the device.
        reshape: name of the :data:`xai.architectures.RESHAPES` transform that turns the target layer's output
            into an (N, C, h, w) map (ViT tokens, Swin channels-last; the target's ``TargetLayer.reshape``); None
            for layers that already output maps. grad-cam's ``reshape_transform``; every implementation honours it.

    Returns:
        A CamMap whose ``map`` is (H, W) float32 in [0, 1] as grad-cam computes it:
        ``scale(ReLU(sum_c w_c A_c))`` resized to (H, W) bilinearly, then min-max scaled again.
    """
    info = method_info(method)
    if info.family != "cam":
        raise ValueError(f"{method!r} is not a CAM method")
    if input_tensor.dim() != 4 or input_tensor.shape[0] != 1:
        raise ValueError(f"expected one image as a (1, 3, H, W) tensor, got shape {tuple(input_tensor.shape)}")
    check_eval_mode(model)
    implementation = _resolve(info.implementation)
    start = time.perf_counter()
    with preserved_gradients(model):
        if isinstance(implementation, type):
            raw = library_cam(
                implementation, model, input_tensor, target_layer, target_class, batch_size, reshape=reshape
            )
        else:  # a CamFunction takes ``reshape`` as a keyword (passed only when set: maps need none)
            extra = {"reshape": reshape} if reshape is not None else {}
            raw = implementation(model, input_tensor, target_layer, target_class, batch_size, **extra)
    seconds = time.perf_counter() - start
    cam_map = np.ascontiguousarray(raw.map, dtype=np.float32)
    if cam_map.shape != tuple(input_tensor.shape[-2:]):
        raise RuntimeError(f"{method}: map shape {cam_map.shape} != input size {tuple(input_tensor.shape[-2:])}")
    return CamMap(
        method=method,
        map=cam_map,
        target_class=int(target_class),
        seconds=seconds,
        forward_passes=raw.forward_passes,
        warning=raw.warning,
    )


def _resolve(implementation: str) -> type | CamFunction:
    module_name, _, attribute = implementation.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
