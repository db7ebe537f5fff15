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
    strategy: str = ""
    """How an implementation with several exact strategies ran (AblationCAM: ``after-target`` or
    ``full-forward``), for logs and tests; empty otherwise."""


CamFunction = Callable[..., RawCam]
"""``(model, input_tensor (1,3,H,W), target_layer, target_class, batch_size, *, reshape=None) -> RawCam``."""

Reshape = str | Callable[[torch.Tensor], torch.Tensor] | None
"""A target layer's reshape: a name in :data:`xai.architectures.RESHAPES`, a function with grad-cam's
``reshape_transform`` convention (raw output -> (N, C, h, w)), or None when the output already is (N, C, h, w)."""


def resolve_reshape(reshape: Reshape) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function ``reshape`` names (identity for None)."""
    if reshape is None:
        return lambda tensor: tensor
    if callable(reshape):
        return reshape
    from xai.architectures import RESHAPES

    if reshape not in RESHAPES:
        raise ValueError(f"unknown reshape {reshape!r}; known: {', '.join(RESHAPES)}")
    return RESHAPES[reshape]


def channel_axis(raw: torch.Tensor, reshape: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """The axis of the raw target-layer output that ``reshape`` turns into the map's channel axis (dim 1).

    Found, not assumed: the only axis ``a`` for which reshaping a tensor that holds its own index along ``a``
    gives a map whose channel ``c`` is ``c`` everywhere. Dim 1 for an (N, C, h, w) map; the last axis for ViT
    tokens (N, T, D) and Swin's (N, H, W, C) -- the axis grad-cam's ``AblationLayerVit`` ablates, which is the
    ablation layer :func:`xai.architectures.ablation_layer_for` gives for every reshaped target.
    """
    found = []
    for axis in range(1, raw.dim()):
        shape = [1] * raw.dim()
        shape[axis] = raw.shape[axis]
        index = torch.arange(raw.shape[axis], dtype=torch.float32).view(shape).expand(*raw.shape)
        mapped = reshape(index)
        expected = torch.arange(mapped.shape[1], dtype=torch.float32).view(1, -1, *[1] * (mapped.dim() - 2))
        if mapped.shape[1] <= raw.shape[axis] and torch.equal(mapped, expected.expand_as(mapped)):
            found.append(axis)
    if len(found) != 1:
        raise ValueError(
            f"cannot tell which axis of the target layer's {tuple(raw.shape)} output is the channel axis after "
            f"the reshape (candidates: {found or 'none'})"
        )
    return found[0]


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
    return finish_cam((weights[:, :, None, None] * activations).sum(axis=1), size)


def finish_cam(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """grad-cam's finish of a (1, h, w) float32 map, op for op: ReLU -> scale+resize -> ReLU -> scale (the
    library's ``compute_cam_per_layer`` and ``aggregate_multi_layers`` for one target layer); (H, W) in [0, 1]."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    cam = np.maximum(cam, 0)
    scaled = scale_cam_image(cam, (size[1], size[0]))[:, None, :]
    combined = np.mean(np.maximum(scaled, 0), axis=1)
    return scale_cam_image(combined)[0]
