"""Exact fast AblationCAM: the layers before the target run once, only the rest runs per channel.

Ablation-CAM (Desai & Ramaswamy, WACV 2020) weights channel c of the target layer by the relative drop of the
class score y when that channel is ablated: ``w_c = (y - y_c) / y``; the map is ``ReLU(sum_c w_c A_c)``.

grad-cam's ``AblationCAM`` swaps the target module for an ``AblationLayer`` and reruns the *whole* network
for every channel (2 + C image forwards, ~3 min per ResNet50 image on 2 CPU cores). Ablating a channel only
changes what comes after the target layer, so here only that part runs on n ablated copies of the target's
batch-1 output (strategy ``after-target``). The model is cut at the target with ``torch.fx``
(:func:`xai.explain.cams.split.split_at`): the layers before it run once, then the part after it runs per chunk
of n channels. For ``model.layer4[-1]`` of a ResNet50 that part is avgpool + fc, so the cost is about one
forward instead of 2048; for ViT-B/16's last ``ln_1`` it is one encoder block and the head per row. A model
``torch.fx`` cannot cut is run with a forward hook on the target layer that replaces its output by the chunk:
the layers before the target then run once per chunk on the one image (same numbers, more time).

Why it is exact: the only tensors after the target that do not come from it are the ones that bypass it (a
residual ``x + input`` around it: ResNet's identity, ViT's and Swin's block input, ConvNeXt's and RegNet's
shortcut). They hold the one image, batch 1, where the library holds n identical copies; element-wise ops
broadcast them, which is the library's semantics value for value. That covers every family
:mod:`xai.architectures` knows (ResNet, VGG, DenseNet, MobileNet, EfficientNet, MNASNet, ConvNeXt, RegNet, ViT,
Swin, each at its auto target layer; tested per family against the library in ``tests/test_cams_families.py``).
Anything else falls back to strategy ``full-forward``: the image repeated n times through the whole network with
the hooked target output replaced, exactly what the library computes (still batched, no module swapped). The
fallback is taken when the first chunk raises (a bypass meets the ablated rows in a non-broadcasting op, e.g.
``torch.cat`` inside a DenseNet block: tested), returns the wrong number of rows, or when its extra unablated
check row does not reproduce the original score. Like grad-cam (which scores the original at batch 1 and the
ablations at batch 32), both strategies assume the model scores each image independently of the others in its
batch, as every classifier in eval mode does; the full-forward check row refuses a model that does not.

Library semantics reproduced (equality tested to 1e-4 max abs at real size per family): the ablation value (0
when the activation minimum is 0, else ``min - 1e7`` that, because ``AblationLayer`` recomputes the minimum after
each row, becomes ``min - (i + 1) * 1e7`` for the i-th row of each library batch of 32; the minimum is over the
*raw* output, ViT's class token included); the ablated axis (channel axis of the reshaped map: dim 1 for CNNs,
as ``AblationLayer``; the last axis of ViT tokens and Swin's channels-last maps, as ``AblationLayerVit``, found
by :func:`~xai.explain.cams._core.channel_axis`); the original score from an unablated forward; the float32
weight formula ``(y - y_c) / y`` (which flips every sign when y < 0, as the library does); ReLU, resize and
min-max scaling (:func:`~xai.explain.cams._core.finalize_cam`) on the reshaped map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from xai.explain.cams._core import (
    RawCam,
    Reshape,
    capture_activation,
    channel_axis,
    finalize_cam,
    forward_hook,
    resolve_reshape,
)
from xai.explain.cams.split import split_at
from xai.explain.inference import default_batch_size, model_device

LIBRARY_BATCH_SIZE = 32
"""grad-cam's AblationCAM default batch; it decides the ablation value when activations can be nonzero-min."""
LIBRARY_ABLATION_OFFSET = 1e7
CHUNK_BYTES = 128 * 2**20
"""Memory for one chunk of ablated activations (ResNet50 layer4: 326 channels, 7 chunks)."""
AFTER_TARGET = "after-target"
FULL_FORWARD = "full-forward"


class _NotRowwise(Exception):
    """The after-target strategy cannot be trusted for this model and layer."""


def library_ablation_values(
    activation: torch.Tensor, library_batch_size: int = LIBRARY_BATCH_SIZE, channels: int | None = None
) -> torch.Tensor:
    """The value grad-cam's ``AblationLayer`` writes into each ablated channel, per channel, (C,) tensor.

    Args:
        activation: raw target-layer output for one image (any shape: its minimum is what counts).
        library_batch_size: the library AblationCAM's ``batch_size`` whose row order fixes the value.
        channels: channels ablated (default: ``activation.shape[0]``, the (C, h, w) case).
    """
    channels = activation.shape[0] if channels is None else channels
    minimum = torch.min(activation)
    if minimum == 0:
        return torch.zeros(channels, dtype=activation.dtype, device=activation.device)
    per_row = []
    value = minimum
    for _ in range(min(library_batch_size, channels)):
        value = value - LIBRARY_ABLATION_OFFSET  # same float32 op sequence as the library's row loop
        per_row.append(value)
    per_row_tensor = torch.stack(per_row)
    return per_row_tensor[torch.arange(channels, device=activation.device) % library_batch_size]


def ablation_cam(
    model: nn.Module,
    input_tensor: torch.Tensor,
    target_layer: nn.Module,
    target_class: int,
    batch_size: int | None = None,
    *,
    reshape: Reshape = None,
) -> RawCam:
    """AblationCAM map of ``target_class``, equal to grad-cam's ``AblationCAM`` (with ``reshape_transform`` and
    the ablation layer :func:`xai.architectures.ablation_layer_for` gives) within float rounding.

    Args:
        batch_size: ablated channels per forward; None sizes chunks to ``CHUNK_BYTES`` of activations (and, on
            the full-forward fallback, to at most the device's image batch size).
        reshape: the target layer's reshape (:data:`~xai.explain.cams._core.Reshape`), e.g. ``vit_tokens_to_map``.
    """
    device = model_device(model)
    image = input_tensor.to(device)
    split = split_at(model, target_layer)
    with torch.inference_mode():
        if split is not None:  # the layers before the target run here, once
            raw, *live = split.prefix(image)
            output = split.run_suffix(raw.clone(), tuple(live))  # a clone: the suffix may work in place
        else:
            raw, output = capture_activation(model, image, target_layer)
    to_map = resolve_reshape(reshape)
    activation = to_map(raw)
    if activation.dim() != 4:
        raise ValueError(
            f"AblationCAM needs an (N, C, h, w) map; the target layer gives {tuple(raw.shape)}"
            + (f" and the reshape {tuple(activation.shape)}" if reshape is not None else "; name its reshape")
        )
    axis = 1 if reshape is None else channel_axis(raw, to_map)
    original = output[0, target_class]
    channels = activation.shape[1]
    values = library_ablation_values(raw[0], channels=channels)
    full_batch_size = batch_size or default_batch_size(device, image[0, 0].numel())
    if batch_size is None:
        row_bytes = raw[0].numel() * raw.element_size()
        batch_size = int(np.clip(CHUNK_BYTES // row_bytes, 1, channels))
    pad = (1,) * (raw.dim() - 2)
    ablated_scores = torch.empty(channels, dtype=torch.float32)
    replacement: list[torch.Tensor] = []
    calls = [0]
    rows_run = [1]

    def replace_output(module: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return replacement[0]

    def hooked(whole_images: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        """A forward of the one image (or of one copy per row) whose target output is the ablated batch."""

        def forward(batch: torch.Tensor) -> torch.Tensor:
            replacement[:] = [batch]
            calls[0] = 0
            rows = image.repeat(len(batch), *(1,) * (image.dim() - 1)) if whole_images else image
            with forward_hook(target_layer, replace_output):
                scores = model(rows)
            if calls[0] != 1:
                raise _NotRowwise(f"the target layer ran {calls[0]} times")
            return scores

        return forward

    def run(forward: Callable[[torch.Tensor], torch.Tensor], chunk_size: int, first: int, stop: int) -> None:
        """Scores of channels ``first..stop-1`` in chunks; the chunk at 0 carries an extra unablated check row."""
        for start in range(first, stop, chunk_size):
            chunk = torch.arange(start, min(stop, start + chunk_size), device=device)
            check_row = 1 if start == 0 else 0
            batch = raw.expand(len(chunk) + check_row, *raw.shape[1:]).clone()
            batch.movedim(axis, 1)[torch.arange(len(chunk), device=device), chunk] = values[chunk].view(-1, *pad)
            rows_run[0] += len(batch)
            scores = forward(batch)[:, target_class]
            if scores.shape[0] != len(batch):
                raise _NotRowwise(f"{scores.shape[0]} of {len(batch)} rows came out")
            if check_row and not torch.isclose(scores[-1], original, rtol=1e-4, atol=1e-4):
                raise _NotRowwise(f"the unablated row scores {float(scores[-1]):.6g}, the model {float(original):.6g}")
            ablated_scores[chunk.cpu()] = scores[: len(chunk)].float().cpu()

    # The first chunk decides the strategy: the split graph (prefix run once), else the hooked forward of the one
    # image (prefix per chunk); where broadcasting is not enough for either, every row is a whole image.
    after_target = [hooked(whole_images=False)]
    if split is not None:
        after_target.insert(0, lambda batch: split.run_suffix(batch, tuple(live)))
    strategy, forward = FULL_FORWARD, hooked(whole_images=True)
    with torch.inference_mode():
        for candidate in after_target:
            try:
                run(candidate, batch_size, 0, min(batch_size, channels))
            except (_NotRowwise, RuntimeError):
                rows_run[0] = 1
                continue
            strategy, forward = AFTER_TARGET, candidate
            break
        try:
            if strategy == AFTER_TARGET:
                run(forward, batch_size, batch_size, channels)
            else:
                run(forward, full_batch_size, 0, channels)
        except _NotRowwise as error:
            raise ValueError(
                f"AblationCAM ({strategy}): {error}; this model and target layer do not allow ablating the "
                "layer's output (pick a module that runs once per forward and whose rows reach the output)"
            ) from None

    original_scores = np.float32([float(original)])[:, None]
    weights = (original_scores - ablated_scores.numpy()[None, :].astype(np.float32)) / original_scores
    activations = activation.float().cpu().numpy()
    return RawCam(
        map=finalize_cam(weights, activations, tuple(input_tensor.shape[-2:])),
        forward_passes=rows_run[0],
        warning=negative_logit_warning(float(original), target_class),
        strategy=strategy,
    )


def negative_logit_warning(original: float, target_class: int) -> str:
    """The caveat of ``w_c = (y - y_c) / y`` when ``y < 0``: dividing by it flips the sign of every weight."""
    if original >= 0:
        return ""
    return (
        f"AblationCAM: the original logit of class {target_class} is {original:.4g} < 0, so dividing by it "
        "flips the sign of every channel weight (as grad-cam does); the map highlights what lowers the score"
    )
