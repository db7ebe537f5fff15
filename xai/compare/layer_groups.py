"""What the cascading randomisation check re-initialises at each step, for any torchvision classifier.

Rule (documented on the methods page; steps run from the output end towards the input):

1. **Trunk.** The container whose children are the network's stages: the architecture family's
   (:data:`xai.architectures.FAMILIES`: ``features``, ``encoder.layers``, ``trunk_output``, ``layers``; a ResNet's
   is the model itself); for an architecture no family knows, the model or one of its children, whichever has
   children with the most distinct spatial sizes (as :func:`xai.architectures.auto_dissect_layers` picks it).
2. **Order.** One forward pass of a seeded random input (hooks only, no gradients) orders the trunk's children and
   the modules beside it: the model's other children and those of the containers on the way down to the trunk
   (ViT's ``encoder``). Modules the forward pass never calls (Inception's auxiliary head in eval mode) cannot
   change a map and are left out.
3. **Head** (first step): every module that runs after the trunk, and the trunk's children after its last spatial
   map (a ResNet's ``avgpool`` and ``fc``): ``fc``, ``classifier``, ViT's ``encoder.ln`` + ``heads``, Swin's
   ``norm`` + ``head``.
4. **Stages** (then, last stage first): consecutive trunk children whose outputs have the same spatial size form
   one stage (ResNet ``layer4`` ... ``layer1``; ConvNeXt's downsampling layer joins the stage after it; MobileNet's
   blocks of one resolution form one step). When no trunk child outputs a spatial map (ViT's (N, T, D) encoder
   layers), every child is a step of its own.
5. **Stem** (last step): the modules that run before the trunk and the parameters held directly by the model or
   by a container on the way down (ViT's ``conv_proj``, ``class_token`` and ``encoder.pos_embedding``).

Modules and groups without parameters are dropped. For a torchvision ResNet this gives exactly
``fc, layer4, layer3, layer2, layer1, conv1+bn1`` (the cascade the check used before it knew other models).

Parameters no ``reset_parameters`` covers are re-initialised the way torchvision's constructors initialise them
(:data:`PARAMETER_INITS`); an unknown one raises, naming it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xai import architectures

LayerGroup = tuple[str, ...]

PARAMETER_INITS: dict[str, Callable[[torch.Tensor], Any]] = {
    # vision_transformer.py: VisionTransformer.class_token = zeros; Encoder.pos_embedding ~ N(0, 0.02²) "from BERT".
    "class_token": nn.init.zeros_,
    "pos_embedding": lambda tensor: nn.init.normal_(tensor, std=0.02),
    # convnext.py: CNBlock.layer_scale = ones(dim, 1, 1) * layer_scale, 1e-6 in every torchvision ConvNeXt.
    "layer_scale": lambda tensor: nn.init.constant_(tensor, 1e-6),
    # swin_transformer.py (ShiftedWindowAttention) and maxvit.py: trunc_normal_(std=0.02).
    "relative_position_bias_table": lambda tensor: nn.init.trunc_normal_(tensor, std=0.02),
    # swin_transformer.py: ShiftedWindowAttentionV2.logit_scale = log(10 * ones(num_heads, 1, 1)).
    "logit_scale": lambda tensor: nn.init.constant_(tensor, math.log(10.0)),
}
"""Torchvision's own initialisation of the parameters that no module's ``reset_parameters`` covers, by
attribute name (read from torchvision's source)."""


def reinitialise_parameter(path: str, parameter: torch.Tensor) -> None:
    """Re-initialise one parameter that no ``reset_parameters`` covers, in place, by :data:`PARAMETER_INITS`."""
    name = path.rsplit(".", 1)[-1]
    if name not in PARAMETER_INITS:
        raise ValueError(
            f"parameter {path!r} has no reset_parameters and no known initialisation; "
            f"known: {', '.join(PARAMETER_INITS)}"
        )
    with torch.no_grad():
        PARAMETER_INITS[name](parameter)


def reset_module(module: nn.Module) -> bool:
    """The module's own re-initialisation, PyTorch's default: ``reset_parameters``, or ``_reset_parameters`` for
    :class:`torch.nn.MultiheadAttention` (its packed input projection). False when it has neither."""
    reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
    if reset is None:
        return False
    reset()
    return True


@dataclass
class _Pass:
    finished: dict[str, int]
    """Module path -> position in the order modules finished (first call)."""
    shapes: dict[str, tuple[int, ...] | None]
    """Module path -> output shape of its first call (None if not a tensor)."""


def _forward_pass(model: nn.Module) -> _Pass:
    def shape(_path: str, output: Any) -> tuple[int, ...] | None:
        return tuple(output.shape) if isinstance(output, torch.Tensor) else None

    modules = {name: module for name, module in model.named_modules() if name}
    shapes, _ = architectures.forward_outputs(model, modules, architectures.shape_input(model), shape)
    return _Pass({name: position for position, name in enumerate(shapes)}, shapes)


def _spatial_size(model: nn.Module, path: str, shape: tuple[int, ...] | None) -> tuple[int, int] | None:
    """(h, w) of a 4-D map larger than 1x1 (channels-last for Swin's trunk), else None."""
    if shape is None or len(shape) != 4:
        return None
    size = (shape[1], shape[2]) if architectures.channels_last_path(model, path) else (shape[2], shape[3])
    return None if size[0] <= 1 and size[1] <= 1 else size


def _children(model: nn.Module, path: str) -> list[str]:
    container = model.get_submodule(path) if path else model
    prefix = f"{path}." if path else ""
    return [f"{prefix}{name}" for name, _ in container.named_children()]


def _sizes(model: nn.Module, run: _Pass, trunk: str) -> list[tuple[int, int] | None]:
    return [
        _spatial_size(model, name, run.shapes.get(name)) for name in _children(model, trunk) if name in run.finished
    ]


def _trunk(model: nn.Module, run: _Pass) -> str:
    entry = architectures.family(model)
    if entry is not None:
        return entry.trunk

    def distinct(trunk: str) -> int:
        sizes = [size for size in _sizes(model, run, trunk) if size is not None]
        return sum(1 for i, size in enumerate(sizes) if i == 0 or size != sizes[i - 1])

    candidates = ["", *(name for name, child in model.named_children() if any(True for _ in child.children()))]
    return max(candidates, key=distinct)


def _has_parameters(model: nn.Module, path: str) -> bool:
    return any(True for _ in model.get_submodule(path).parameters())


def layer_groups(model: nn.Module) -> tuple[LayerGroup, ...]:
    """The cascade for ``model``, output end first: module (or parameter) paths to re-initialise at each step.

    See the module docstring for the rule; every path resolves with ``model.get_submodule`` or
    ``model.get_parameter``, and every parameter the forward pass uses is in exactly one group.
    """
    run = _forward_pass(model)
    trunk = _trunk(model, run)
    parts = trunk.split(".") if trunk else []
    beside: list[str] = []  # modules next to the trunk and its ancestors
    direct = [name for name, _ in model.named_parameters(recurse=False)]
    for depth in range(len(parts)):
        ancestor = ".".join(parts[:depth])
        beside += [name for name in _children(model, ancestor) if name != ".".join(parts[: depth + 1])]
        inner = model.get_submodule(".".join(parts[: depth + 1]))
        direct += [f"{'.'.join(parts[: depth + 1])}.{name}" for name, _ in inner.named_parameters(recurse=False)]
    trunk_children = [name for name in _children(model, trunk) if name in run.finished]
    if not trunk_children:
        raise ValueError(f"{type(model).__name__}: the trunk {trunk or '(the model)'!r} has no child the forward calls")
    first, last = run.finished[trunk_children[0]], run.finished[trunk_children[-1]]
    called = sorted((name for name in beside if name in run.finished), key=run.finished.__getitem__)
    stem = [name for name in called if run.finished[name] < first]
    head = [name for name in called if run.finished[name] > last]

    sizes = [_spatial_size(model, name, run.shapes[name]) for name in trunk_children]
    spatial = [index for index, size in enumerate(sizes) if size is not None]
    stages: list[list[str]] = []
    if spatial:
        end = spatial[-1] + 1
        head = trunk_children[end:] + head
        current: tuple[int, int] | None = None
        for name, size in zip(trunk_children[:end], sizes[:end], strict=True):
            if not stages or (size is not None and size != current):
                stages.append([])
            stages[-1].append(name)
            current = size if size is not None else current
    else:
        stages = [[name] for name in trunk_children]

    groups = [head, *reversed(stages), stem]
    kept = [tuple(name for name in group if _has_parameters(model, name)) for group in groups]
    kept[-1] = (*kept[-1], *direct)
    return tuple(group for group in kept if group)


@functools.cache
def planned_groups(architecture: str, weights_member: str) -> tuple[LayerGroup, ...]:
    """:func:`layer_groups` of the bare architecture, found on the ``meta`` device: no weights, no compute (for the
    plan; the check derives the same from the loaded model)."""
    from xai.shapes import device_of, shape_model

    model = shape_model(architecture, weights_member)
    with torch.device(device_of(model)):
        return layer_groups(model)
