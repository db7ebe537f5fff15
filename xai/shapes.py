"""Shapes known from the architecture alone: the CAM target layer with its channel count, and the CAM's grid, found
by one forward pass on the ``meta`` device (no weights, no memory, no compute) when the builder allows it.

The run plan (:mod:`xai.plan`) reads these before any weights are loaded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from xai.architectures import (
    TargetLayer,
    auto_target_layer,
    channels_last_path,
    family,
    forward_outputs,
    reshape_transform,
    resolve_layer,
    shape_input,
)
from xai.classifiers import ModelChoiceError


@dataclass(frozen=True)
class PlannedTarget:
    """A CAM target layer resolved on the architecture alone (no weights): the layer and its channel count."""

    target: TargetLayer
    channels: int
    """Channels of the layer's output after the reshape (2048 for resnet50 ``layer4[-1]``; D = 768 for ViT-B)."""


def shape_model(name: str, weights: str) -> nn.Module:
    """The architecture of ``name`` (built for weights member ``weights``) for shape inference: on the ``meta``
    device (no memory, no compute) when its builder allows it, else on the CPU with the global random state left as
    it was (RegNet's builder computes its stage widths with tensor ops, which ``meta`` tensors refuse). Run it under
    ``torch.device(device_of(model))`` so the tensors a forward creates land beside its parameters."""
    from xai.classifiers import architecture, resolve_weights

    member = resolve_weights(name, weights)
    try:
        with torch.device("meta"):
            return architecture(name, member).eval()
    except NotImplementedError:
        with torch.random.fork_rng(devices=[]):
            return architecture(name, member).eval()


def device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _output_shape(model: nn.Module, layer: nn.Module, inputs: torch.Tensor, reshape: str | None = None) -> tuple:
    """The shape of ``layer``'s first output (after ``reshape``) in a forward pass of ``inputs``."""
    transform = reshape_transform(reshape) or (lambda tensor: tensor)
    with torch.device(device_of(model)):
        outputs, _ = forward_outputs(
            model, {"layer": layer}, inputs, lambda _path, output: tuple(transform(output).shape)
        )
    return outputs.get("layer", ())


def _reshape_for(model: nn.Module, path: str, shape: tuple[int, ...]) -> str | None:
    """The reshape a user-given layer's output needs: (N, 1 + h*w, D) tokens of a ViT, or a Swin channels-last map."""
    entry = family(model)
    if len(shape) == 3 and entry is not None and entry.tokens:
        return "vit_tokens_to_map"
    if len(shape) == 4 and channels_last_path(model, _named_path(model, path)):
        return "channels_last_to_map"
    return None


def _named_path(model: nn.Module, path: str) -> str:
    """``features[-1][-1].norm1`` as its ``named_modules`` name (``features.7.1.norm1``)."""
    layer = resolve_layer(model, path)
    return next(name for name, module in model.named_modules() if module is layer)


def plan_target(name: str, weights: str, choice: str, *, what: str = "explain.target_layer") -> PlannedTarget:
    """The CAM target layer of model ``name`` (built for weights member ``weights``): :func:`auto_target_layer` for
    ``auto``, else the module path ``choice`` with the reshape its output needs. Found on the ``meta`` device (no
    weights, no compute); raises :class:`ModelChoiceError` with one line for a path that names no module or a layer
    whose output is no map."""
    return _plan_target(name, weights, choice, what)


@functools.cache
def _plan_target(name: str, weights: str, choice: str, what: str) -> PlannedTarget:
    model = shape_model(name, weights)
    with torch.device(device_of(model)):
        if choice == "auto":
            target = auto_target_layer(model)
            layer = resolve_layer(model, target.path)
        else:
            layer = resolve_layer(model, choice, what=what)
        shape = _output_shape(model, layer, shape_input(model))
    if len(shape) not in (3, 4):
        found = f"a {len(shape)}-D output" if shape else "no tensor output"
        raise ModelChoiceError(
            f"{what}: {choice!r} of {name} has {found}; a CAM needs a spatial map (N, C, h, w) or ViT tokens: "
            "choose a convolutional block or a transformer block's norm"
        )
    if choice == "auto":
        reshape = target.reshape
    else:
        reshape = _reshape_for(model, choice, shape)
        target = TargetLayer(choice, "set in the config (explain.target_layer)", reshape)
    channels = shape[1] if len(shape) == 4 and reshape is None else shape[-1]
    return PlannedTarget(target, int(channels))


@functools.cache
def cam_grid(name: str, weights: str, path: str, reshape: str | None, height: int, width: int) -> tuple[int, int]:
    """(h, w) of the CAM target layer's map (after its reshape) for ``height`` x ``width`` inputs: the CAMs' own
    grid, on which the smooth random baselines are drawn (7x7 for resnet50's ``layer4[-1]`` at 224², 14x14 for
    ViT-B/16's tokens, 24x24 for its SWAG weights at 384 px)."""
    model = shape_model(name, weights)
    with torch.device(device_of(model)):
        shape = _output_shape(model, resolve_layer(model, path), torch.empty(1, 3, height, width), reshape)
    return int(shape[2]), int(shape[3])
