"""Step 2 of CLIP-Dissect: one forward pass per model records every target layer, pooled per image.

Summary per hooked output (spec 1.2, :func:`xai.architectures.pool_activation`): 4-D conv maps (B, C, H, W) ->
spatial mean (``pool="mean"``, default) or spatial max (``pool="max"``); channels-last maps (B, H, W, C) (Swin's
trunk) the same over H, W; 2-D outputs (B, C) such as ``fc`` logits are kept raw; 3-D token outputs (B, T, D) ->
mean (or max) over all tokens. Deviation from CLIP-Dissect, which takes a ViT layer's class token (token 0): the
mean lets every patch count and pools Swin, which has no class token, the same way (issue 13). Pooled values are
moved to the CPU as each batch is produced, so a 63k-image probe never accumulates feature maps on the
accelerator.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xai.architectures import POOL_MODES, pool_activation

DEFAULT_LAYERS = ("layer3", "layer4", "fc")


@contextmanager
def hooked_layers(
    model: nn.Module,
    layers: Sequence[str],
    pool: str = "mean",
    *,
    to_cpu: bool = True,
    channels_last: Collection[str] | None = None,
) -> Iterator[dict[str, list]]:
    """Register forward hooks on the named sub-modules; yields ``{layer: [pooled float32 batches]}``.

    ``channels_last`` names the layers whose 4-D outputs are (N, H, W, C); by default those
    :func:`xai.architectures.channels_last_path` finds (Swin's trunk and final norm).

    Pooled batches go to the CPU as they are produced unless ``to_cpu`` is False; then they stay on the
    model's device (a (N, K) matrix per layer, never feature maps), which spares the accelerator a
    synchronising copy per batch. Hooks are removed when the block exits, including on an exception.
    """
    if pool not in POOL_MODES:
        raise ValueError(f"pool must be one of {POOL_MODES}, not {pool!r}")
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise KeyError(f"model has no module(s) {missing}; e.g. {[n for n in modules if n][:12]}")
    if channels_last is None:
        from xai.architectures import channels_last_path

        channels_last = {name for name in layers if channels_last_path(model, name)}
    store: dict[str, list] = {name: [] for name in layers}
    handles = []

    def make_hook(name: str) -> Callable:
        last = name in channels_last

        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            pooled = pool_activation(output.detach(), pool, channels_last=last).float()
            store[name].append(pooled.cpu() if to_cpu else pooled)

        return hook

    try:
        for name in layers:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def layer_activations(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    layers: Sequence[str] = DEFAULT_LAYERS,
    *,
    pool: str = "mean",
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """Pooled activations of all ``layers`` in one pass over the probe batches.

    Args:
        model: the target network (put in eval mode here; its device is left to the caller).
        batches: preprocessed image batches (B, 3, H, W), e.g. from :func:`image_batches`.
        layers: module names as in ``model.named_modules()``.
        pool: ``mean`` (default) or ``max`` spatial pooling for conv outputs.
        device: where each batch is sent before the forward pass.

    Returns:
        ``{layer: (N, K) float32}`` in the order of ``layers``.
    """
    model.eval()
    with hooked_layers(model, layers, pool) as store, torch.inference_mode():
        for batch in batches:
            # channels_last input, as the probe pass: same values, faster convolutions on CPU
            model(batch.to(device).contiguous(memory_format=torch.channels_last))
    result = {}
    for name in layers:
        if not store[name]:
            raise ValueError("no probe images were given")
        result[name] = torch.cat(store[name]).numpy().astype(np.float32, copy=False)
    return result


def image_batches(paths: Sequence[str | Path], transform: Callable, batch_size: int = 32) -> Iterator[torch.Tensor]:
    """Load images (RGB) lazily, apply ``transform`` (PIL -> tensor), stack into batches of ``batch_size``."""
    from PIL import Image

    for start in range(0, len(paths), batch_size):
        tensors = []
        for path in paths[start : start + batch_size]:
            with Image.open(path) as image:
                tensors.append(transform(image.convert("RGB")))
        yield torch.stack(tensors)
