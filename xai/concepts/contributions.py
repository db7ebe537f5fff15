"""Unit contributions to one logit: how much each unit (channel) of the explained layer adds to ``z_t``.

Three methods, chosen by the head (:mod:`xai.concepts.head`):

* ``linear_head`` (global-average-pool + linear head): ``c_u = w_tu · mean_ij(A_u)``, exact:
  ``Σ_u c_u + b_t = z_t``. Per position ``P_u(i, j) = w_tu · A_u(i, j) / (h·w)``, so ``Σ_ij P_u = c_u`` and
  ``Σ_u P_u`` is the layer's Grad-CAM map before its ReLU (Grad-CAM's weight ``α_u = mean_ij ∂z_t/∂A_uij =
  w_tu / (h·w)``). This is WWW's first-order "Shapley" value at the pooled layer (Ahn et al., CVPR 2024) and
  IBD's starting point (Zhou et al., ECCV 2018) without its concept-basis projection.
* ``integrated_gradients`` (any other head; Sundararajan et al., ICML 2017, in activation space): from the
  baseline ``B`` (each unit's probe-set mean at every position, the same baseline faithfulness removes units to)
  to the image's output ``A``: ``attr = (A - B) ⊙ ∫_0^1 ∂z_t/∂A (B + α(A - B)) dα``, ``c_u = Σ_positions attr_u``.
  Completeness ``Σ_u c_u = z_t(A) - z_t(B)`` holds up to the quadrature error, which is reported. The integral is
  Gauss-Legendre with ``steps`` nodes (captum's default rule; captum is not a dependency, so it is done with
  ``torch.autograd`` here). The offset bar is the baseline logit ``z_t(B)``, not a bias.
* ``gradient_x_activation``: ``c_u = Σ_positions A_u ⊙ ∂z_t/∂A_u`` at the image, offset ``z_t(0)`` (all units
  zero). Equal to ``linear_head`` for a linear head; for other heads its completeness error is usually large.

Deviation for ViT tokens: units are the hidden channels; every token counts in ``c_u`` (the class token too), but
the per-position maps hold only the patch tokens (the map grid), so ``unmapped`` carries the class token's part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xai.concepts.head import GAP_LINEAR, Head, pooled_units
from xai.concepts.suffix import SuffixRunner

LINEAR_HEAD = "linear_head"
INTEGRATED_GRADIENTS = "integrated_gradients"
GRADIENT_X_ACTIVATION = "gradient_x_activation"
METHODS = (LINEAR_HEAD, INTEGRATED_GRADIENTS, GRADIENT_X_ACTIVATION)
DEFAULT_STEPS = 32


@dataclass(frozen=True)
class UnitContributions:
    """Each unit's contribution to the logit ``z_t`` of one image.

    Attributes:
        method: ``linear_head``, ``integrated_gradients`` or ``gradient_x_activation``.
        target_class: t.
        logit: ``z_t`` of the image.
        offset: what the unit contributions add to: the bias ``b_t`` (linear head), the baseline logit
            ``z_t(B)`` (integrated gradients) or ``z_t(0)`` (gradient x activation).
        offset_name: ``bias``, ``baseline logit`` or ``logit at zero activation``.
        contributions: (K,) float32 ``c_u``.
        per_position: (K, h, w) float32 ``P_u``, the contribution of unit u at each map position.
        unmapped: (K,) float32 ``c_u - Σ P_u`` (the ViT class token's part; zero for maps).
        pooled: (K,) float32 ``mean(A_u)``, the unit's activation on this image.
        weights: (K,) float32 the unit's effective weight: ``w_tu`` (linear head), the path-averaged total
            gradient ``Σ_positions ∫ ∂z_t/∂A_u dα`` (integrated gradients) or ``Σ_positions ∂z_t/∂A_u``.
        completeness_error: ``Σ_u c_u + offset - z_t`` (float64 sum of the float32 terms).
        steps: quadrature nodes (integrated gradients), else 0.
    """

    method: str
    target_class: int
    logit: float
    offset: float
    offset_name: str
    contributions: np.ndarray
    per_position: np.ndarray
    unmapped: np.ndarray
    pooled: np.ndarray
    weights: np.ndarray
    completeness_error: float
    steps: int = 0

    @property
    def n_units(self) -> int:
        """K."""
        return int(self.contributions.shape[0])


def _finish(
    method: str,
    runner: SuffixRunner,
    target_class: int,
    offset: tuple[float, str],
    attribution: torch.Tensor,
    weights: torch.Tensor,
    *,
    contributions: torch.Tensor | None = None,
    steps: int = 0,
) -> UnitContributions:
    """Sum an element-wise attribution (raw-output shaped) per unit (unless ``contributions`` are given) and per
    map position."""
    if contributions is None:
        units_last = runner.units_last(attribution)
        contributions = units_last.reshape(-1, units_last.shape[-1]).sum(dim=0)
    per_position = runner.to_map(attribution)[0].float()
    contributions_np = contributions.float().cpu().numpy().astype(np.float32)
    mapped = per_position.double().sum(dim=(1, 2)).cpu().numpy()
    logit = float(runner.logits[target_class])
    return UnitContributions(
        method=method,
        target_class=int(target_class),
        logit=logit,
        offset=float(offset[0]),
        offset_name=offset[1],
        contributions=contributions_np,
        per_position=per_position.cpu().numpy().astype(np.float32),
        unmapped=(contributions_np - mapped).astype(np.float32),
        pooled=pooled_units(runner)[0].cpu().numpy().astype(np.float32),
        weights=weights.float().cpu().numpy().astype(np.float32),
        completeness_error=float(contributions_np.astype(np.float64).sum() + offset[0] - logit),
        steps=steps,
    )


def linear_head_contributions(runner: SuffixRunner, head: Head, target_class: int) -> UnitContributions:
    """``c_u = w_tu · mean(A_u)`` and ``P_u = w_tu · A_u / (h·w)`` for a ``gap_linear`` head, in float32 on the
    model's device (see the module docstring)."""
    if head.kind != GAP_LINEAR:
        raise ValueError(f"linear-head contributions need a gap_linear head, not {head.kind!r} ({head.reason})")
    weight = head.weight[target_class]
    activation = runner.raw.float()
    positions = activation.shape[2] * activation.shape[3]
    attribution = weight.view(1, -1, 1, 1) * activation / positions
    # c_u as the formula writes it (w_tu times the float32 mean), not as the float32 sum of the P_u
    exact = weight * pooled_units(runner)[0]
    offset = (float(head.bias[target_class]), "bias")
    return _finish(LINEAR_HEAD, runner, target_class, offset, attribution, weight, contributions=exact)


def _gradients(runner: SuffixRunner, rows: torch.Tensor, target_class: int) -> torch.Tensor:
    rows = rows.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = runner.run(rows)
        (gradient,) = torch.autograd.grad(logits[:, target_class].sum(), rows)
    return gradient.detach()


def baseline_tensor(runner: SuffixRunner, baseline: np.ndarray) -> torch.Tensor:
    """(1, *S) the target output with unit u equal to ``baseline[u]`` at every position."""
    values = torch.as_tensor(np.asarray(baseline, np.float32), device=runner.device).view(1, -1)
    if values.shape[1] != runner.n_units:
        raise ValueError(f"baseline has {values.shape[1]} values; the target layer has {runner.n_units} units")
    return runner.constant_rows(values).to(runner.raw.dtype)


def integrated_gradients_contributions(
    runner: SuffixRunner, target_class: int, baseline: np.ndarray, *, steps: int = DEFAULT_STEPS
) -> UnitContributions:
    """Integrated gradients in activation space from the per-unit baseline (see the module docstring)."""
    if steps < 1:
        raise ValueError("integrated gradients need at least one step")
    nodes, node_weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.as_tensor((nodes + 1) / 2, dtype=torch.float32, device=runner.device)
    quadrature = torch.as_tensor(node_weights / 2, dtype=torch.float32, device=runner.device)
    start = baseline_tensor(runner, baseline)
    difference = runner.raw - start
    pad = [1] * (runner.raw.dim() - 1)
    path_gradient = torch.zeros_like(runner.raw, dtype=torch.float32)
    chunk = runner.rows_per_chunk
    for first in range(0, steps, chunk):
        alpha = alphas[first : first + chunk].view(-1, *pad)
        gradient = _gradients(runner, start + alpha * difference, target_class).float()
        path_gradient += (quadrature[first : first + chunk].view(-1, *pad) * gradient).sum(dim=0, keepdim=True)
    with torch.inference_mode():
        offset = float(runner.run(start)[0, target_class])
    attribution = difference.float() * path_gradient
    units_last = runner.units_last(path_gradient)
    weights = units_last.reshape(-1, units_last.shape[-1]).sum(dim=0)
    offset_pair = (offset, "baseline logit")
    return _finish(INTEGRATED_GRADIENTS, runner, target_class, offset_pair, attribution, weights, steps=steps)


def gradient_x_activation_contributions(runner: SuffixRunner, target_class: int) -> UnitContributions:
    """``c_u = Σ_positions A_u ⊙ ∂z_t/∂A_u`` at the image; offset ``z_t(0)`` (see the module docstring)."""
    gradient = _gradients(runner, runner.raw, target_class).float()
    with torch.inference_mode():
        offset = float(runner.run(torch.zeros_like(runner.raw))[0, target_class])
    units_last = runner.units_last(gradient)
    weights = units_last.reshape(-1, units_last.shape[-1]).sum(dim=0)
    attribution = runner.raw.float() * gradient
    offset_pair = (offset, "logit at zero activation")
    return _finish(GRADIENT_X_ACTIVATION, runner, target_class, offset_pair, attribution, weights)


def unit_contributions(
    runner: SuffixRunner,
    head: Head,
    target_class: int,
    baseline: np.ndarray,
    *,
    method: str = "auto",
    steps: int = DEFAULT_STEPS,
) -> UnitContributions:
    """Contributions by ``method``: ``auto`` is ``linear_head`` for a ``gap_linear`` head, else
    ``integrated_gradients`` from ``baseline`` with ``steps`` nodes."""
    if method == "auto":
        method = LINEAR_HEAD if head.kind == GAP_LINEAR else INTEGRATED_GRADIENTS
    if method == LINEAR_HEAD:
        return linear_head_contributions(runner, head, target_class)
    if method == INTEGRATED_GRADIENTS:
        return integrated_gradients_contributions(runner, target_class, baseline, steps=steps)
    if method == GRADIENT_X_ACTIVATION:
        return gradient_x_activation_contributions(runner, target_class)
    raise ValueError(f"unknown contribution method {method!r}; choose from auto, {', '.join(METHODS)}")
