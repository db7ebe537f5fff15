"""Which layers of a classifier CLIP-Dissect labels, and how each layer's output is pooled to one value per neuron.

A :class:`LayerPlan` is made from the bare architecture (torchvision's builder with seeded random weights, no
download and no checkpoint read), so cache keys and error messages need no weights: ``auto`` is
:func:`xai.architectures.auto_dissect_layers` (the last three stages or blocks and the classifier); an explicit
list must name modules of every model (``layer4``, ``features.7`` or ``features[-1]``), else one line names the
model and close module paths. One forward pass of a seeded input records each layer's output rank, which says how
it is pooled (:func:`xai.architectures.pool_activation`), and finds the classifier among the layers (the layer
whose pooled output *is* the logits: ``fc``, ``classifier.3``, ``heads``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xai.classifiers import PRESETS, ClassifierSpec, ModelChoiceError

POOLING = {
    "spatial": "mean over the spatial map",
    "channels_last": "mean over the spatial map (channels-last)",
    "tokens": "mean over all tokens",
    "none": "not needed (one value per neuron)",
}
"""Per-layer pooling as the report words it, for ``pool: mean`` (``max`` replaces the mean)."""


@dataclass(frozen=True)
class LayerPlan:
    """The dissected layers of one model (``named_modules`` paths, in the order given), how each is pooled (a key
    of :data:`POOLING`) and which of them is the classifier (None when it is not dissected)."""

    layers: tuple[str, ...]
    pooling: tuple[str, ...]
    final_layer: str | None

    @property
    def channels_last(self) -> frozenset[str]:
        return frozenset(
            layer for layer, kind in zip(self.layers, self.pooling, strict=True) if kind == "channels_last"
        )

    @property
    def has_tokens(self) -> bool:
        return "tokens" in self.pooling


def is_preset(spec: ClassifierSpec) -> bool:
    """Whether ``spec`` is one of the paper's models (:data:`xai.classifiers.PRESETS`), whose fc self-check and
    published rows apply; the Places365 preset's category file may have been filled in."""
    preset = PRESETS.get(spec.model_id)
    return preset is not None and dataclasses.replace(spec, classes=None) == dataclasses.replace(preset, classes=None)


def probe_transform(spec: ClassifierSpec) -> Any:
    """The preprocessing of ``spec``'s probe images (a torchvision ``ImageClassification``): for the paper's models
    torchvision's ResNet18 IMAGENET1K_V1 transform, which is CLIP-Dissect's Resize(256), CenterCrop(224), ImageNet
    mean/std for both the ImageNet and the Places365 ResNet18; for any other model its own weights member's
    ``transforms()`` (a bare model name means its ``DEFAULT`` member: resnet50's is IMAGENET1K_V2, resize 232)."""
    from torchvision.models import ResNet18_Weights

    from xai.classifiers import resolve_weights

    if is_preset(spec):
        return ResNet18_Weights.IMAGENET1K_V1.transforms()
    return resolve_weights(spec.architecture, spec.weights_member).transforms()


def transform_words(transform: Any) -> str:
    """``resize 256, crop 224, bilinear``: what a probe transform does to an image, for the plan and the pages."""
    return (
        f"resize {int(transform.resize_size[0])}, crop {int(transform.crop_size[0])}, {transform.interpolation.value}"
    )


def layer_plan(spec: ClassifierSpec, layers: str | Sequence[str]) -> LayerPlan:
    """The :class:`LayerPlan` of ``spec`` for ``dissect.layers`` (``"auto"`` or module paths)."""
    return _plan(spec.architecture, spec.weights_member, spec.model_id, "auto" if layers == "auto" else tuple(layers))


@functools.lru_cache(maxsize=16)
def _plan(name: str, weights: str, display: str, layers: str | tuple[str, ...]) -> LayerPlan:
    model = bare_architecture(name, weights)
    if layers == "auto":
        from xai.architectures import auto_dissect_layers

        paths = auto_dissect_layers(model)
    else:
        paths = tuple(module_path(model, layer, display) for layer in layers)
    pooling, final = _outputs(model, paths, display)
    return LayerPlan(paths, pooling, final)


def bare_architecture(name: str, weights: str) -> nn.Module:
    """The module ``name``'s weights ``weights`` load into, seeded, in eval mode; the global RNG is left as it was."""
    from xai.classifiers import architecture, redraw_zero_layers, resolve_weights

    member = resolve_weights(name, weights, what="dissect.models.weights")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = architecture(name, member)
        redraw_zero_layers(model)  # ViT's zero head would make its logits equal to any all-zero output
    return model.eval()


def module_path(model: nn.Module, layer: str, display: str) -> str:
    """``layer`` as a ``named_modules`` path; ``features[-1]`` style paths are resolved first."""
    names = {module: path for path, module in model.named_modules() if path}
    if layer in dict(model.named_modules()) and layer:
        return layer
    from xai.architectures import resolve_layer

    module = resolve_layer(model, layer, what=f"dissect.layers: model {display}")
    if module not in names:  # the model itself ('' path)
        raise ModelChoiceError(f"dissect.layers: model {display}: {layer!r} is the whole model; name one of its layers")
    return names[module]


def _outputs(model: nn.Module, paths: Sequence[str], display: str) -> tuple[tuple[str, ...], str | None]:
    """Pooling kind of each layer and the classifier among them, from one forward pass of a seeded input."""
    from xai.architectures import channels_last_path, forward_outputs, pool_activation

    modules = dict(model.named_modules())
    size = getattr(model, "image_size", 224)
    seeded = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    outputs, logits = forward_outputs(model, {path: modules[path] for path in paths}, seeded)
    pooling, final = [], None
    for path in paths:
        output = outputs.get(path)
        if not isinstance(output, torch.Tensor) or output.ndim not in (2, 3, 4):
            what = "no output" if output is None else f"a {type(output).__name__}"
            if isinstance(output, torch.Tensor):
                what = f"a {output.ndim}-D tensor"
            raise ModelChoiceError(
                f"dissect.layers: model {display}: {path!r} gives {what} in a forward pass, not a (N, C, h, w) map, "
                "(N, tokens, D) tokens or (N, C) vector; choose another module"
            )
        last = channels_last_path(model, path)
        kind = {4: "channels_last" if last else "spatial", 3: "tokens", 2: "none"}[output.ndim]
        pooling.append(kind)
        pooled = pool_activation(output, "mean", channels_last=last)
        if pooled.shape == logits.shape and torch.equal(pooled, logits):
            final = path
    return tuple(pooling), final


def pooling_words(kind: str, pool: str) -> str:
    """:data:`POOLING` for ``pool`` (``mean``/``max``)."""
    return POOLING[kind].replace("mean", "max") if pool == "max" else POOLING[kind]
