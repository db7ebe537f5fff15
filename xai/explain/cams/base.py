"""The CAM pipeline: one entry point, :func:`compute_cam`, for every CAM in the registry.

It validates the inputs, resolves the method's implementation from the registry, times it and wraps the map
in a :class:`~xai.explain.artifacts.CamMap`. Implementations are either a ``pytorch_grad_cam`` class (run by
:func:`xai.explain.cams.library.library_cam`) or a :data:`CamFunction` (our exact fast AblationCAM/ScoreCAM).
Every hook is registered inside a context manager, so it is removed even when the model raises.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xai.explain.artifacts import CamMap
from xai.explain.inference import check_eval_mode
from xai.explain.registry import method_info


@dataclass(frozen=True)
class RawCam:
    """What an implementation returns: the final (H, W) map and the image rows it pushed through the model."""

    map: np.ndarray
    forward_passes: int
    warning: str = ""


CamFunction = Callable[[nn.Module, torch.Tensor, nn.Module, int, "int | None"], RawCam]
"""``(model, input_tensor (1,3,H,W), target_layer, target_class, batch_size) -> RawCam``."""


def compute_cam(model: nn.Module, input_tensor: torch.Tensor, method: str, target_layer: nn.Module,
                target_class: int, *, batch_size: int | None = None) -> CamMap:
    """Class activation map of ``target_class`` for one image, by any CAM method of the registry.

    Args:
        model: classifier in eval mode (never switched: grad-cam's constructor would call ``model.eval()``).
        input_tensor: (1, 3, H, W) normalised input.
        method: a registry name with ``family == "cam"`` (``gradcam``, ``ablationcam``, ``scorecam``, ...).
        target_layer: module whose output is explained, e.g. ``model.layer4[-1]``.
        target_class: logit index explained, normally the predicted class. It is always passed explicitly
            as ``ClassifierOutputTarget(target_class)``; grad-cam's ``targets=None`` is never used.
        batch_size: rows per forward pass for ScoreCAM/AblationCAM; None picks one for the device.

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
            from xai.explain.cams.library import library_cam

            raw = library_cam(implementation, model, input_tensor, target_layer, target_class, batch_size)
        else:
            raw = implementation(model, input_tensor, target_layer, target_class, batch_size)
    seconds = time.perf_counter() - start
    cam_map = np.ascontiguousarray(raw.map, dtype=np.float32)
    if cam_map.shape != tuple(input_tensor.shape[-2:]):
        raise RuntimeError(f"{method}: map shape {cam_map.shape} != input size {tuple(input_tensor.shape[-2:])}")
    return CamMap(method=method, map=cam_map, target_class=int(target_class), seconds=seconds,
                  forward_passes=raw.forward_passes, warning=raw.warning)


def _resolve(implementation: str) -> type | CamFunction:
    module_name, _, attribute = implementation.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@contextmanager
def preserved_gradients(model: nn.Module) -> Iterator[None]:
    """Restore every parameter's ``.grad`` afterwards: gradient CAMs backpropagate into the model's params."""
    saved = [(parameter, parameter.grad) for parameter in model.parameters()]
    try:
        yield
    finally:
        for parameter, grad in saved:
            parameter.grad = grad


@contextmanager
def forward_hook(module: nn.Module, hook: Callable) -> Iterator[None]:
    """``module.register_forward_hook(hook)`` for the duration of the block, removed even on error."""
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def capture_activation(model: nn.Module, input_tensor: torch.Tensor, target_layer: nn.Module
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """One inference forward pass: (target-layer output, model output), both detached on the model's device."""
    captured: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        # A copy: later in-place ops (ResNet's ``out += identity``, ReLU(inplace=True)) would overwrite it.
        captured.append(output.clone())

    with forward_hook(target_layer, keep), torch.inference_mode():
        output = model(input_tensor)
    if len(captured) != 1:
        raise ValueError(f"the target layer ran {len(captured)} times in one forward pass; pick a module that "
                         "runs exactly once (e.g. a whole block such as model.layer4[-1], not a shared ReLU)")
    return captured[0], output


def finalize_cam(weights: np.ndarray, activations: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """grad-cam's post-processing, op for op: ``sum_c w_c A_c`` -> ReLU -> scale+resize -> ReLU -> scale.

    Args:
        weights: (1, C) float32 channel weights.
        activations: (1, C, h, w) float32 target-layer output.
        size: (H, W) of the input.

    Returns:
        (H, W) float32 map in [0, 1], bitwise what ``BaseCAM.forward`` returns for the same weights.
    """
    from pytorch_grad_cam.utils.image import scale_cam_image

    cam = (weights[:, :, None, None] * activations).sum(axis=1)
    cam = np.maximum(cam, 0)
    scaled = scale_cam_image(cam, (size[1], size[0]))[:, None, :]
    combined = np.mean(np.maximum(scaled, 0), axis=1)
    return scale_cam_image(combined)[0]
