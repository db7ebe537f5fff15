"""What follows the explained layer (the head), and the logits when chosen units are set to a baseline.

Head kinds:

* ``gap_linear``: the logits are ``z = W · mean_ij(A) + b`` of the target output ``A`` (ResNet and RegNet at
  their last block, MobileNetV2 and EfficientNet at ``features[-1]``: global average pooling, optional dropout or
  flatten, one ``nn.Linear``). Then ``c_u = w_tu · mean(A_u)`` is exact and only the linear layer needs to run.
* ``general``: anything else (VGG's and AlexNet's MLP on a 7x7 pool, MobileNetV3's two-layer classifier,
  DenseNet's ReLU before pooling, ConvNeXt's layer norm, ViT tokens read at the class token after a block).

Detection is by the module structure *as it computes*, not by class names: the target output is replaced by three
rows (``A``, ``-A``, a seeded standard-normal map ``R`` and ``-R``, through :class:`~xai.concepts.suffix.SuffixRunner`)
and the head is ``gap_linear`` when the last ``nn.Linear`` to run produces the model's logits and its input is the
spatial mean of each row. The sign flips catch a ReLU between the pool and the linear layer (DenseNet's), the
unit-scale rows a layer that only looks linear at the image's scale (vanishing random-weight activations), and the
check as a whole any pooling other than the mean (VGG's 7x7) and any norm (ConvNeXt's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xai.concepts.suffix import SuffixRunner

GAP_LINEAR = "gap_linear"
GENERAL = "general"


@dataclass(frozen=True)
class Head:
    """The head after the target layer: its kind, and for ``gap_linear`` the linear layer that makes the logits."""

    kind: str
    reason: str
    linear: nn.Linear | None = None

    @property
    def weight(self) -> torch.Tensor:
        """(C, K) float32 weights of the logits layer (``gap_linear`` only)."""
        if self.linear is None:
            raise ValueError("the head is not a global-average-pool + linear head")
        return self.linear.weight.detach().float()

    @property
    def bias(self) -> torch.Tensor:
        """(C,) float32 bias of the logits layer (zeros when it has none)."""
        weight = self.weight
        if self.linear is None or self.linear.bias is None:
            return torch.zeros(weight.shape[0], dtype=torch.float32, device=weight.device)
        return self.linear.bias.detach().float()


def pooled_units(runner: SuffixRunner, rows: torch.Tensor | None = None) -> torch.Tensor:
    """(n, K) mean of each unit over every position of ``rows`` (default: the image's own output, n = 1): the
    spatial mean of a map, the mean over all tokens (class token included) of a ViT layer, as the dissection pools
    (:func:`xai.architectures.pool_activation`, ``avg``)."""
    rows = runner.raw if rows is None else rows
    units_last = runner.units_last(rows)
    return units_last.reshape(units_last.shape[0], -1, units_last.shape[-1]).float().mean(dim=1)


def detect_head(runner: SuffixRunner) -> Head:
    """The head after the target layer (see the module docstring for the test it passes)."""
    raw = runner.raw
    if raw.dim() != 4 or runner.axis != 1:
        return Head(GENERAL, f"the target output {tuple(raw.shape)} is not an (N, C, h, w) map")
    # rows at the image's own scale and at unit scale: random-weight networks can have vanishing activations
    # (MobileNet, EfficientNet: ~1e-9), where every comparison at the image's scale would pass
    generator = torch.Generator().manual_seed(0)
    unit_scale = torch.randn(raw.shape, generator=generator).to(device=raw.device, dtype=raw.dtype)
    rows = torch.cat([raw, -raw, unit_scale, -unit_scale])
    calls: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            calls.append((module, inputs[0].detach(), output.detach()))

    handles = [
        module.register_forward_hook(record) for module in runner.model.modules() if isinstance(module, nn.Linear)
    ]
    try:
        with torch.inference_mode():
            logits = runner.run(rows)
    finally:
        for handle in handles:
            handle.remove()
    producer = next(
        (call for call in reversed(calls) if call[2].shape == logits.shape and torch.allclose(call[2].float(), logits)),
        None,
    )
    if producer is None:
        return Head(GENERAL, "no nn.Linear produces the logits")
    module, linear_input, _ = producer
    pooled = rows.float().mean(dim=(2, 3))
    if linear_input.shape != pooled.shape:
        return Head(GENERAL, "the logits layer's input is not the spatial mean of the target output")
    tolerance = 1e-5 * pooled.abs().amax(dim=1, keepdim=True)  # per row, relative to that row's own scale
    if not bool(((linear_input.float() - pooled).abs() <= tolerance).all()):
        return Head(GENERAL, "the logits layer's input is not the spatial mean of the target output")
    return Head(GAP_LINEAR, "global average pool, then one linear layer", module)


class UnitReplacement:
    """Logits of the image when chosen units of the target layer hold their baseline value at every position.

    ``gap_linear``: only the linear layer runs, on the pooled activations with the chosen entries replaced
    (``mean_ij`` of a constant map is the constant, so this equals replacing the whole map). ``general``: the rest
    of the network runs on the replaced maps, chunk by chunk (:meth:`SuffixRunner.logits_of`).
    """

    def __init__(self, runner: SuffixRunner, head: Head, baseline: np.ndarray) -> None:
        baseline = np.asarray(baseline, dtype=np.float32)
        if baseline.shape != (runner.n_units,):
            raise ValueError(f"baseline has shape {baseline.shape}; the target layer has {runner.n_units} units")
        self.runner = runner
        self.head = head
        self.baseline = torch.from_numpy(baseline).to(runner.device)
        self.pooled = pooled_units(runner)[0]

    def logits(self, masks: np.ndarray) -> np.ndarray:
        """(R, C) float64 logits, row r with the units where ``masks[r]`` is True at their baseline.

        Args:
            masks: (R, K) bool.
        """
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.runner.n_units:
            raise ValueError(f"masks of shape {masks.shape}; expected (R, {self.runner.n_units})")
        device = self.runner.device
        if self.head.kind == GAP_LINEAR:
            out = []
            with torch.inference_mode():
                for start in range(0, len(masks), 4096):
                    chosen = torch.from_numpy(masks[start : start + 4096]).to(device)
                    values = torch.where(chosen, self.baseline, self.pooled)
                    out.append(self.head.linear(values.to(self.head.weight.dtype)).double().cpu())
            return torch.cat(out).numpy() if out else np.zeros((0, self.runner.logits.numel()))
        units_last = self.runner.units_last(self.runner.raw)
        pad = [1] * (units_last.dim() - 2)

        def make_rows(start: int, stop: int) -> torch.Tensor:
            chosen = torch.from_numpy(masks[start:stop]).to(device).view(stop - start, *pad, -1)
            rows = torch.where(chosen, self.baseline.to(units_last.dtype), units_last)
            return rows.movedim(-1, self.runner.axis).contiguous()

        return self.runner.logits_of(make_rows, len(masks)).double().cpu().numpy()

    def original_logits(self) -> np.ndarray:
        """(C,) float64 logits of the unmodified image."""
        return self.runner.logits.double().cpu().numpy()
