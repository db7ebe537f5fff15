"""What the analyses need to know about a classifier's architecture: the CAM target layer (and the reshape that
turns a transformer's activations into a CAM-ready (N, C, h, w) map), the layers dissection hooks, and how a
layer's output is pooled to one value per channel.

Known torchvision families are entries of :data:`FAMILIES` (matched by module class, most specific first); any
other classifier gets a documented fallback found by one hooked forward pass of a seeded random input.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xai.classifiers import ModelChoiceError

POOL_MODES = ("mean", "max")
"""``dissect.pool``: one value per neuron as the mean or the maximum over positions (or tokens)."""


# ----------------------------------------------------------------------------------------------------------------
# Reshape transforms: module-level (picklable, named in cache keys) and equal to pytorch-grad-cam's conventions.


def vit_tokens_to_map(tensor: torch.Tensor) -> torch.Tensor:
    """(N, 1 + h*w, D) ViT tokens -> (N, D, h, w), the class token dropped.

    torchvision's ViT, like timm's, prepends the class token and flattens the patch grid row by row
    (``conv_proj(x).reshape(n, D, h*w).permute(0, 2, 1)``), so this equals grad-cam's ``vit_reshape_transform``
    with ``height = width = sqrt(tokens - 1)`` (grad-cam hard-codes 14, right for 224 px and 16 px patches only).
    """
    side = math.isqrt(tensor.size(1) - 1)
    if side * side != tensor.size(1) - 1:
        raise ValueError(f"{tensor.size(1) - 1} patch tokens do not form a square grid")
    return tensor[:, 1:, :].reshape(tensor.size(0), side, side, tensor.size(2)).permute(0, 3, 1, 2)


def channels_last_to_map(tensor: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N, C, H, W). torchvision's Swin keeps its maps channels-last, where timm's (grad-cam's
    ``swinT_reshape_transform`` example) flattens them to (N, H*W, C); both come to the same map."""
    return tensor.permute(0, 3, 1, 2)


RESHAPES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "vit_tokens_to_map": vit_tokens_to_map,
    "channels_last_to_map": channels_last_to_map,
}


def reshape_transform(name: str | None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The function a :class:`TargetLayer` names, for ``pytorch_grad_cam``'s ``reshape_transform``."""
    return None if name is None else RESHAPES[name]


# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetLayer:
    """A CAM target layer: its module path (:func:`resolve_layer` syntax), why it was chosen (a sentence the report
    prints) and the name of the reshape transform its activations need (None for (N, C, h, w) maps)."""

    path: str
    reason: str
    reshape: str | None = None

    @property
    def ablation_layer(self) -> str:
        """The ``pytorch_grad_cam.ablation_layer`` class AblationCAM needs here (:data:`ABLATION_LAYERS`)."""
        return ABLATION_LAYERS[self.reshape]


ABLATION_LAYERS: dict[str | None, str] = {
    None: "AblationLayer",
    "vit_tokens_to_map": "AblationLayerVit",
    "channels_last_to_map": "AblationLayerVit",
}
"""The grad-cam ablation layer for a target whose output needs each reshape: the default ``AblationLayer`` indexes
channels in dim 1 and fails on (N, T, D) tokens and (N, H, W, C) maps; ``AblationLayerVit`` moves the channel axis
from last to dim 1 and back, which fits both."""


def ablation_layer_for(reshape: str | None) -> Any:
    """A fresh ``pytorch_grad_cam.ablation_layer`` instance for ``AblationCAM(ablation_layer=...)`` at a target layer
    whose output needs ``reshape`` (:data:`ABLATION_LAYERS`)."""
    from pytorch_grad_cam import ablation_layer as layers

    return getattr(layers, ABLATION_LAYERS[reshape])()


@dataclass(frozen=True)
class Family:
    """What is known about one torchvision architecture family."""

    classes: tuple[str, ...]
    """Class names in ``torchvision.models`` (matched with isinstance)."""
    target: TargetLayer | None
    """None: use the hooked-forward fallback."""
    trunk: str = ""
    """The container whose children are the stages dissection picks from ('' = the model itself)."""
    channels_last: bool = False
    """Whether the trunk's outputs are (N, H, W, C) (Swin)."""
    tokens: bool = False
    """Whether the trunk's children are transformer encoder layers with (N, T, D) outputs (ViT)."""


FAMILIES: tuple[Family, ...] = (
    Family(
        ("ResNet",), TargetLayer("layer4[-1]", "last residual block of the last stage (grad-cam's choice for ResNets)")
    ),
    Family(
        ("VGG", "DenseNet", "MobileNetV2", "MobileNetV3", "EfficientNet"),
        TargetLayer(
            "features[-1]",
            "last module of the convolutional feature extractor (grad-cam's choice for "
            "VGG, DenseNet, MobileNet and EfficientNet)",
        ),
        trunk="features",
    ),
    Family(
        ("MNASNet",),
        TargetLayer("layers[-1]", "last module of the convolutional feature extractor (grad-cam's choice for MNASNet)"),
        trunk="layers",
    ),
    Family(("ConvNeXt",), TargetLayer("features[-1][-1]", "last ConvNeXt block of the last stage"), trunk="features"),
    Family(("RegNet",), TargetLayer("trunk_output[-1]", "last stage of the RegNet trunk"), trunk="trunk_output"),
    Family(
        ("VisionTransformer",),
        TargetLayer(
            "encoder.layers[-1].ln_1",
            "layer norm before attention in the last encoder block, patch "
            "tokens folded to a grid and the class token dropped (grad-cam's choice for ViT)",
            "vit_tokens_to_map",
        ),
        trunk="encoder.layers",
        tokens=True,
    ),
    Family(
        ("SwinTransformer",),
        TargetLayer(
            "features[-1][-1].norm1",
            "layer norm norm1 of the last Swin block (grad-cam's choice for "
            "Swin; in Swin V2 it normalises the attention output), channels-last map moved to "
            "channels-first",
            "channels_last_to_map",
        ),
        trunk="features",
        channels_last=True,
    ),
)


def family(model: nn.Module) -> Family | None:
    import torchvision

    for entry in FAMILIES:
        classes = tuple(getattr(torchvision.models, name) for name in entry.classes)
        if isinstance(model, classes):
            return entry
    return None


def shape_input(model: nn.Module) -> torch.Tensor:
    """A seeded random (1, 3, size, size) image on the model's device, for the forward passes that find shapes."""
    size = getattr(model, "image_size", 224)  # torchvision's ViT only accepts its own image size
    generator = torch.Generator().manual_seed(0)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return torch.randn(1, 3, size, size, generator=generator).to(device)


def forward_outputs(
    model: nn.Module,
    modules: dict[str, nn.Module],
    inputs: torch.Tensor,
    record: Callable[[str, Any], Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    """What each of ``modules`` (path -> module) output first in one forward pass of ``inputs`` without gradients,
    in the order the modules finished, and the model's output. ``record(path, output)`` runs in the hook at every call
    of a module (a module may run twice, like ResNet's shared ReLU), before a later in-place operation can change the
    tensor; its first value per module is kept (by default the output itself). The one hook helper: hooks are always
    removed and the model's train/eval mode is restored."""
    outputs: dict[str, Any] = {}
    keep = record or (lambda _path, output: output)

    def hook(path: str) -> Callable[..., None]:
        def on_output(_module: nn.Module, _inputs: Any, output: Any) -> None:
            outputs.setdefault(path, keep(path, output))

        return on_output

    handles = [module.register_forward_hook(hook(path)) for path, module in modules.items()]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            result = model(inputs)
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return outputs, result


@dataclass
class _Trace:
    order: list[tuple[str, tuple[int, ...]]]
    """(module path, output shape) in the order modules finished, the model itself excluded."""
    pooled: dict[str, torch.Tensor]
    logits: torch.Tensor


def _trace(model: nn.Module, channels_last_paths: Callable[[str], bool]) -> _Trace:
    """One forward pass of a seeded random input with a hook on every module: each call's output shape in the order
    calls finished, and each module's pooled output (of its last call)."""
    order: list[tuple[str, tuple[int, ...]]] = []
    pooled: dict[str, torch.Tensor] = {}

    def note(path: str, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.ndim in (2, 3, 4):
            order.append((path, tuple(output.shape)))
            pooled[path] = pool_activation(output.detach(), "mean", channels_last=channels_last_paths(path))

    modules = {name: module for name, module in model.named_modules() if name}
    _, logits = forward_outputs(model, modules, shape_input(model), note)
    return _Trace(order, pooled, logits)


def channels_last_path(model: nn.Module, path: str) -> bool:
    """Whether the module at ``path`` (a ``named_modules`` name) outputs (N, H, W, C): Swin's feature trunk and its
    final norm (torchvision permutes to channels-first only before pooling)."""
    entry = family(model)
    return bool(entry and entry.channels_last and path.split(".")[0] in ("features", "norm"))


def auto_target_layer(model: nn.Module) -> TargetLayer:
    """The CAM target layer of a known family, else the fallback: the last module, in the order modules finish
    during a forward pass, whose output is a 4-D (N, C, h, w) map with h, w > 1 (the last spatial block before
    global pooling)."""
    entry = family(model)
    if entry is not None and entry.target is not None:
        return entry.target
    trace = _trace(model, lambda _path: False)
    spatial = [name for name, shape in trace.order if len(shape) == 4 and shape[2] > 1 and shape[3] > 1]
    if not spatial:
        raise ModelChoiceError(
            f"explain.target_layer: no module of {type(model).__name__} outputs a spatial map; "
            "set explain.target_layer to a module path"
        )
    return TargetLayer(
        spatial[-1],
        "last module with a spatial output before global pooling (found by a forward "
        "pass; no known architecture family)",
    )


def _module_paths(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, spec: str, *, what: str = "explain.target_layer") -> nn.Module:
    """``layer4[-1]``, ``layer4.2`` or ``features.7`` -> the module (attribute and index access, as torchvision
    module paths are written). An unknown path raises one line with close module paths and the top-level ones."""
    module: Any = model
    done: list[str] = []
    for token in re.findall(r"[A-Za-z_]\w*|-?\d+", spec):
        parent = module
        try:
            module = module[int(token)] if token.lstrip("-").isdigit() else getattr(module, token)
        except (AttributeError, IndexError, TypeError, KeyError):
            module = None
        if not isinstance(module, nn.Module):
            top = [name for name, _ in model.named_children()]
            close = difflib.get_close_matches(spec, top, n=5, cutoff=0.5)
            close += [
                path
                for path in difflib.get_close_matches(spec, _module_paths(model), n=5, cutoff=0.5)
                if path not in close
            ]
            inside = ""
            if done:  # say what the last module that did resolve holds
                children = [name for name, _ in parent.named_children()]
                inside = f"; {''.join(done).lstrip('.')} holds: {', '.join(children) or 'no sub-modules'}"
            raise ModelChoiceError(
                f"{what}: {spec!r} does not name a module of {type(model).__name__}"
                + inside
                + (f"; close: {', '.join(close[:5])}" if close else "")
                + f"; top-level: {', '.join(top)} (index with [-1] or .2)"
            ) from None
        done.append(f"[{token}]" if token.lstrip("-").isdigit() else f".{token}")
    return module


def auto_dissect_layers(model: nn.Module) -> tuple[str, ...]:
    """The last three stages or blocks and the classifier, as ``named_modules`` paths.

    Stages: for ViT the last three encoder layers; otherwise the trunk's children (the family's trunk, else the
    model's own children) are grouped by the spatial size of their output, and each of the last three groups gives
    its last child (resnet18: ``layer2, layer3, layer4``). The classifier is the last module whose pooled output
    equals the model's logits (``fc``, ``heads``, ``classifier``).
    """
    entry = family(model)
    trace = _trace(model, lambda path: channels_last_path(model, path))
    if entry and entry.tokens:
        stages = _children(trace, entry.trunk)[-3:]
    elif entry:
        stages = _stage_ends(trace, entry.trunk, channels_last=entry.channels_last)[-3:]
    else:  # the model's own children, or the child container that shows the most resolutions (squeezenet.features)
        trunks = ["", *(name for name, _ in model.named_children())]
        stages = max((_stage_ends(trace, trunk, channels_last=False) for trunk in trunks), key=len)[-3:]
    heads = [
        name
        for name, pooled in trace.pooled.items()
        if pooled.shape == trace.logits.shape and torch.equal(pooled, trace.logits)
    ]
    return (*stages, *heads[-1:])


def _children(trace: _Trace, trunk: str) -> list[str]:
    prefix = f"{trunk}." if trunk else ""
    return [name for name, _ in trace.order if name.startswith(prefix) and "." not in name[len(prefix) :]]


def _stage_ends(trace: _Trace, trunk: str, *, channels_last: bool) -> list[str]:
    """The trunk's children grouped by the spatial size of their output; the last child of each group."""
    shapes = dict(trace.order)
    groups: list[tuple[tuple[int, int], str]] = []
    for name in _children(trace, trunk):
        shape = shapes[name]
        if len(shape) != 4:
            continue
        size = (shape[1], shape[2]) if channels_last else (shape[2], shape[3])
        if size[0] <= 1 and size[1] <= 1:
            continue
        if groups and groups[-1][0] == size:
            groups[-1] = (size, name)
        else:
            groups.append((size, name))
    return [name for _, name in groups]


def pool_activation(output: torch.Tensor, mode: str = "mean", *, channels_last: bool = False) -> torch.Tensor:
    """One value per channel per image.

    (N, C, h, w) -> spatial mean (``mean``) or max; (N, H, W, C) with ``channels_last`` (Swin) -> the same over H, W;
    (N, T, D) tokens -> mean (or max) over all tokens; (N, C) passes through. CLIP-Dissect takes the class token of
    a ViT layer; we pool the mean over tokens instead (issue 13), so every patch contributes and Swin, which has no
    class token, is pooled the same way.
    """
    if mode not in POOL_MODES:
        raise ValueError(f"pool must be one of {POOL_MODES}, not {mode!r}")
    if output.ndim == 4:
        dims = (1, 2) if channels_last else (2, 3)
    elif output.ndim == 3:
        dims = (1,)
    elif output.ndim == 2:
        return output
    else:
        raise ValueError(f"cannot pool a {output.ndim}-D layer output of shape {tuple(output.shape)}")
    return output.mean(dim=dims) if mode == "mean" else output.amax(dim=dims)
