"""The leaf every CAM implementation builds on: what an implementation returns, hooks, and grad-cam's finish.

Nothing here imports an implementation or the registry, so :mod:`xai.explain.cams.base` (the engine) and every
implementation (:mod:`~xai.explain.cams.library`, :mod:`~xai.explain.cams.ablation`,
:mod:`~xai.explain.cams.score`) import this module and never each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class RawCam:
    """What an implementation returns: the final (H, W) map and the image rows it pushed through the model."""

    map: np.ndarray
    forward_passes: int
    warning: str = ""


CamFunction = Callable[[nn.Module, torch.Tensor, nn.Module, int, "int | None"], RawCam]
"""``(model, input_tensor (1,3,H,W), target_layer, target_class, batch_size) -> RawCam``."""


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


def capture_activation(
    model: nn.Module, input_tensor: torch.Tensor, target_layer: nn.Module
) -> tuple[torch.Tensor, torch.Tensor]:
    """One inference forward pass: (target-layer output, model output), both detached on the model's device."""
    captured: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        # A copy: later in-place ops (ResNet's ``out += identity``, ReLU(inplace=True)) would overwrite it.
        captured.append(output.clone())

    with forward_hook(target_layer, keep), torch.inference_mode():
        output = model(input_tensor)
    if len(captured) != 1:
        raise ValueError(
            f"the target layer ran {len(captured)} times in one forward pass; pick a module that "
            "runs exactly once (e.g. a whole block such as model.layer4[-1], not a shared ReLU)"
        )
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
