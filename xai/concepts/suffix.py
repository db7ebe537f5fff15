"""The network after the target layer, run on rows of replaced target-layer outputs (one image).

Every concept analysis changes the explained layer's output and asks what the logits become: integrated
gradients walk a path of interpolated outputs, faithfulness replaces chosen units by their probe-set mean. Only the
layers after the target see the change, so, as the exact AblationCAM does (:mod:`xai.explain.cams.ablation`,
strategy ``after-target``), a forward hook on the target layer swaps its batch-1 output for a batch of n rows:
the layers before the target run once on the one image, the rest on n rows. Tensors that bypass the target (a
residual around it, ViT's block input) stay batch 1 and broadcast. Where that is not enough (a ``torch.cat`` of a
bypass with the rows, as inside a DenseNet block) the runner falls back to strategy ``full-forward``: the image
repeated n times with the hooked output replaced. Which strategy holds is decided once, when the runner is built,
by two unmodified rows that must both reproduce the model's own logits.

Every tensor stays on the model's device; logits come back as float32 on that device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from xai.explain.cams._core import Reshape, capture_activation, channel_axis, forward_hook, resolve_reshape
from xai.explain.cams.ablation import AFTER_TARGET, CHUNK_BYTES, FULL_FORWARD
from xai.explain.inference import check_eval_mode, model_device


class NotRowwiseError(ValueError):
    """The target layer's output cannot be replaced row by row for this model (neither strategy reproduces it)."""


class SuffixRunner:
    """Logits of one image with the target layer's output replaced by given rows.

    Attributes:
        raw: (1, *S) the target layer's own output on the image (detached).
        logits: (C,) the model's logits on the image, float32.
        axis: the axis of ``raw`` that holds the units (1 for (N, C, h, w) maps; the last for ViT tokens and Swin's
            channels-last maps, found by :func:`xai.explain.cams._core.channel_axis` through the reshape).
        to_map: the reshape that turns ``raw``-shaped tensors into (N, K, h, w) maps (identity for maps).
        strategy: ``after-target`` or ``full-forward`` (see the module docstring).
    """

    def __init__(
        self, model: nn.Module, image_tensor: torch.Tensor, target_layer: nn.Module, reshape: Reshape = None
    ) -> None:
        check_eval_mode(model)
        if image_tensor.dim() != 4 or image_tensor.shape[0] != 1:
            raise ValueError(f"expected one image as a (1, 3, H, W) tensor, got {tuple(image_tensor.shape)}")
        self.model = model
        self.layer = target_layer
        self.device = model_device(model)
        self.image = image_tensor.to(self.device)
        raw, output = capture_activation(model, self.image, target_layer)
        # clones outside inference mode: inference tensors cannot take part in the autograd of integrated gradients
        self.raw = raw.clone()
        self.logits = output[0].float().clone()
        self.to_map: Callable[[torch.Tensor], torch.Tensor] = resolve_reshape(reshape)
        self.axis = 1 if reshape is None else channel_axis(self.raw, self.to_map)
        if self.to_map(self.raw).dim() != 4:
            raise ValueError(
                f"the target layer gives {tuple(self.raw.shape)}; concept maps need (N, K, h, w) maps or a reshape"
            )
        self.strategy = self._choose_strategy()

    @property
    def n_units(self) -> int:
        """K, the number of units (channels) of the target layer."""
        return int(self.raw.shape[self.axis])

    @property
    def rows_per_chunk(self) -> int:
        """Rows per forward so one chunk of replaced outputs holds about ``CHUNK_BYTES``."""
        return max(1, CHUNK_BYTES // (self.raw.numel() * 4))

    def _run(self, rows: torch.Tensor, strategy: str) -> torch.Tensor:
        calls = [0]

        def replace(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            # a copy: the layers after the target may work in place (DenseNet's ReLU(inplace=True)), which must
            # neither change the caller's rows nor hit a leaf tensor that requires grad
            return rows.clone()

        inputs = self.image if strategy == AFTER_TARGET else self.image.expand(len(rows), *self.image.shape[1:])
        with forward_hook(self.layer, replace):
            out = self.model(inputs)
        if calls[0] != 1 or out.shape[0] != len(rows):
            raise NotRowwiseError(
                f"the target layer ran {calls[0]} times and {out.shape[0]} of {len(rows)} rows came out"
            )
        return out.float()

    def _choose_strategy(self) -> str:
        rows = self.raw.expand(2, *self.raw.shape[1:]).clone()
        problems = []
        for strategy in (AFTER_TARGET, FULL_FORWARD):
            try:
                with torch.inference_mode():
                    out = self._run(rows, strategy)
            except (NotRowwiseError, RuntimeError) as error:
                problems.append(f"{strategy}: {error}")
                continue
            scale = float(self.logits.abs().max())  # relative: random-weight logits can be ~1e-9
            if torch.allclose(out, self.logits.expand_as(out), rtol=1e-4, atol=1e-4 * scale):
                return strategy
            problems.append(f"{strategy}: unmodified rows do not reproduce the logits")
        raise NotRowwiseError(
            "cannot replace the target layer's output row by row (" + "; ".join(problems) + "); pick a module that "
            "runs once per forward and whose rows reach the output"
        )

    def run(self, rows: torch.Tensor) -> torch.Tensor:
        """(n, C) float32 logits with the target output replaced by ``rows`` (n, *S), one forward, autograd on.

        For gradients: ``rows`` may require grad; the caller differentiates the result.
        """
        if tuple(rows.shape[1:]) != tuple(self.raw.shape[1:]):
            raise ValueError(f"rows {tuple(rows.shape)} do not match the target output {tuple(self.raw.shape)}")
        return self._run(rows, self.strategy)

    def logits_of(self, make_rows: Callable[[int, int], torch.Tensor], count: int) -> torch.Tensor:
        """(count, C) float32 logits of ``count`` rows built chunk by chunk by ``make_rows(start, stop)``
        (never all in memory at once), without autograd."""
        chunk = self.rows_per_chunk
        out = torch.empty(count, self.logits.numel(), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            for start in range(0, count, chunk):
                stop = min(count, start + chunk)
                out[start:stop] = self.run(make_rows(start, stop))
        return out

    def units_last(self, tensor: torch.Tensor) -> torch.Tensor:
        """A view of a ``raw``-shaped tensor with the unit axis moved last."""
        return tensor.movedim(self.axis, -1)

    def constant_rows(self, values: torch.Tensor) -> torch.Tensor:
        """(n, *S) rows whose unit u holds ``values[:, u]`` at every position, from (n, K) values."""
        shape = list(self.raw.shape)
        shape[0] = values.shape[0]
        view = [values.shape[0]] + [1] * (self.raw.dim() - 1)
        view[self.axis] = values.shape[1]
        return values.reshape(view).expand(shape)
