"""Fast ScoreCAM, equal to grad-cam's ``ScoreCAM`` within float rounding, at the forward-pass floor.

Score-CAM (Wang et al., CVPRW 2020) as grad-cam implements it: each target channel A_c is upsampled to the
input size (bilinear, align_corners=True), min-max normalised ``M_c = (U_c - min) / (max - min + 1e-8)``, the
input is multiplied by M_c and scored with the class logit ``s_c``; the weights are ``softmax_c(s_c)`` and the
map ``ReLU(sum_c w_c A_c)``. Deviation of the library (kept, for equality): the paper uses the softmax
*probability* of the class minus a baseline as the weight; grad-cam uses a softmax of logits over channels.

Any architecture: the channels are those of the target layer's output after its reshape (grad-cam's
``reshape_transform``: ViT tokens folded to a grid without the class token, Swin's channels-last map moved to
channels-first), and every masked image runs through the whole network, so no family needs its own path (equality
with the library per family: ``tests/test_cams_families.py``).

What is faster than the library (same numbers):
- the masked images are built per batch instead of all C at once (library: 1.23 GB at 224x224 plus 0.8 GB of
  hooked activations copied per batch; here peak memory is one batch), forwards run under
  ``torch.inference_mode()`` with a channels_last input at the device's best batch size, and no hook stays
  registered during the C masked forwards;
- provably redundant work is skipped: a channel whose *upsampled* map is constant (max == min exactly, e.g. an
  all-zero ReLU channel) has M_c == 0 exactly, so its masked image is all zeros and its score is the score of
  a zero input -- computed once and shared. (Constancy is tested after upsampling: a constant 7x7 channel can
  upsample to values that differ in the last bit, which the 1e-8 normalisation would blow up.)
"""

from __future__ import annotations

import torch
from torch import nn

from xai.explain.cams._core import RawCam, Reshape, capture_activation, finalize_cam, resolve_reshape
from xai.explain.inference import default_batch_size, fast_layout, model_device

UPSAMPLE_CHUNK = 256
"""Channels upsampled at once while scanning for constant maps (256 x 224 x 224 float32 = 51 MB)."""


def _normalised_maps(activation: torch.Tensor, channels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(n, 1, H, W) min-max normalised upsampled maps of ``channels``, op for op as grad-cam computes them."""
    upsampled = torch.nn.UpsamplingBilinear2d(size=size)(activation[:, channels])[0]
    flat = upsampled.view(upsampled.size(0), -1)
    maxs = flat.max(dim=-1)[0][:, None, None]
    mins = flat.min(dim=-1)[0][:, None, None]
    return ((upsampled - mins) / (maxs - mins + 1e-8))[:, None]


def constant_channels(activation: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C,) bool: channels whose upsampled map is exactly constant (their normalised mask is exactly 0)."""
    upsample = torch.nn.UpsamplingBilinear2d(size=size)
    constant = []
    for start in range(0, activation.shape[1], UPSAMPLE_CHUNK):
        flat = upsample(activation[:, start : start + UPSAMPLE_CHUNK])[0].flatten(1)
        constant.append(flat.max(dim=-1)[0] == flat.min(dim=-1)[0])
    return torch.cat(constant)


def score_cam(
    model: nn.Module,
    input_tensor: torch.Tensor,
    target_layer: nn.Module,
    target_class: int,
    batch_size: int | None = None,
    *,
    reshape: Reshape = None,
) -> RawCam:
    """ScoreCAM map of ``target_class``: 1 + (non-constant channels) + (1 if any constant) forward rows.

    Args:
        reshape: the target layer's reshape (:data:`~xai.explain.cams._core.Reshape`), as grad-cam's
            ``reshape_transform``: the channels are those of the reshaped (N, C, h, w) map (ViT: the class token
            dropped), and every masked image runs through the whole network, so any architecture works.
    """
    device = model_device(model)
    image = input_tensor.to(device)
    size = tuple(input_tensor.shape[-2:])
    raw, _ = capture_activation(model, image, target_layer)
    activation = resolve_reshape(reshape)(raw)
    if activation.dim() != 4:
        raise ValueError(
            f"ScoreCAM needs an (N, C, h, w) map; the target layer gives {tuple(raw.shape)}"
            + (f" and the reshape {tuple(activation.shape)}" if reshape is not None else "; name its reshape")
        )
    batch_size = batch_size or default_batch_size(device, size[0] * size[1])
    channels = activation.shape[1]
    scores = torch.empty(channels, dtype=torch.float32)
    rows_run = 1
    with torch.inference_mode():
        constant = constant_channels(activation, size).cpu()
        if constant.any():
            zero_input_score = model(fast_layout(torch.zeros_like(image)))[0, target_class]
            scores[constant] = float(zero_input_score)
            rows_run += 1
        varying = torch.nonzero(~constant).flatten()
        for start in range(0, len(varying), batch_size):
            chunk = varying[start : start + batch_size]
            masked = image * _normalised_maps(activation, chunk.to(device), size)
            scores[chunk] = model(fast_layout(masked))[:, target_class].float().cpu()
            rows_run += len(chunk)
    # grad-cam rounds each score through a Python float into a float32 tensor, then softmaxes over channels.
    weights = torch.softmax(scores.view(1, channels), dim=-1).numpy()
    activations = activation.float().cpu().numpy()
    return RawCam(map=finalize_cam(weights, activations, size), forward_passes=rows_run)
