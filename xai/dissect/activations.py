"""Step 2 of CLIP-Dissect: one forward pass per model records every target layer, pooled per image.

Summary per hooked output (spec 1.2): 4-D conv maps (B, C, H, W) -> spatial mean (``pool="avg"``, default) or
spatial max (``pool="max"``); 2-D outputs (B, C) such as ``fc`` logits are kept raw; 3-D token outputs
(B, T, D) -> token 0 (the ViT CLS token). Pooled values are moved to the CPU as each batch is produced, so a
63k-image probe never accumulates feature maps on the accelerator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

DEFAULT_LAYERS = ("layer3", "layer4", "fc")
POOL_MODES = ("avg", "max")


def pool_output(output: torch.Tensor, pool: str = "avg") -> torch.Tensor:
    """One value per channel per image: spatial mean/max for 4-D, raw for 2-D, token 0 for 3-D outputs."""
    if pool not in POOL_MODES:
        raise ValueError(f"pool must be one of {POOL_MODES}, not {pool!r}")
    if output.ndim == 4:
        return output.mean(dim=(2, 3)) if pool == "avg" else output.amax(dim=(2, 3))
    if output.ndim == 2:
        return output
    if output.ndim == 3:
        return output[:, 0]
    raise ValueError(f"cannot pool a {output.ndim}-D layer output of shape {tuple(output.shape)}")


@contextmanager
def hooked_layers(
    model: nn.Module, layers: Sequence[str], pool: str = "avg", *, to_cpu: bool = True
) -> Iterator[dict[str, list]]:
    """Register forward hooks on the named sub-modules; yields ``{layer: [pooled float32 batches]}``.

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
    store: dict[str, list] = {name: [] for name in layers}
    handles = []

    def make_hook(name: str) -> Callable:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            pooled = pool_output(output.detach(), pool).float()
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
    pool: str = "avg",
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """Pooled activations of all ``layers`` in one pass over the probe batches.

    Args:
        model: the target network (put in eval mode here; its device is left to the caller).
        batches: preprocessed image batches (B, 3, H, W), e.g. from :func:`image_batches`.
        layers: module names as in ``model.named_modules()``.
        pool: ``avg`` (default) or ``max`` spatial pooling for conv outputs.
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
