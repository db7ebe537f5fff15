"""EigenCAM with the thin SVD: grad-cam's map without the (C x C) factor it computes and never reads.

Eigen-CAM (Muhammad & Yeasin, IJCNN 2020, https://arxiv.org/abs/2008.00299) projects the target layer's
activations on their first principal component: with ``A`` the (h*w, C) activations, columns centred,
``A = U S V^T`` and the map is ``A v_1`` (then grad-cam's ReLU, resize and min-max scaling).

grad-cam's ``get_2d_projection`` calls ``np.linalg.svd(A, full_matrices=True)``, which also builds the full (C, C)
``V^T`` (2048 x 2048 for ResNet50's ``layer4``): ~0.7 s of LAPACK per image on one core, 28.6x a GPU forward
pass, for the one row ``v_1`` it reads. The thin SVD (``full_matrices=False``) runs the same LAPACK driver
(``gesdd``) on the same matrix and returns the same first row, ~1/60 of the time.

Why on the CPU, with LAPACK, and not ``torch.linalg.svd`` on the model's device: the sign of a singular vector
is arbitrary, and grad-cam applies no convention to it (``get_2d_projection`` takes LAPACK's ``v_1`` as it
comes; its sign-correcting variant is not what ``EigenCAM`` calls). The ReLU after the projection keeps one side
of it, so the other sign is a different map. Nothing makes cuSOLVER's sign (or another LAPACK driver's) agree
with ``gesdd``'s, so only the same driver reproduces the library's map. The (h*w, C) matrix is small enough for
its thin SVD to cost a few milliseconds, and the activations come to the CPU anyway for grad-cam's resize.
Equality with the library is tested per architecture family at real size (the sign included).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xai.explain.cams._core import RawCam, Reshape, capture_activation, finish_cam, resolve_reshape
from xai.explain.inference import model_device


def first_component_projection(activations: np.ndarray) -> np.ndarray:
    """grad-cam's ``get_2d_projection`` with the thin SVD: (N, C, h, w) float32 -> (N, h, w) float32.

    NaN activations count as 0, the (h*w, C) matrix is centred per channel and projected on its first right
    singular vector, as the library does (same LAPACK driver, same sign)."""
    activations = np.nan_to_num(activations, nan=0.0, posinf=np.inf, neginf=-np.inf)
    projections = []
    for image in activations:
        flat = image.reshape(image.shape[0], -1).transpose()
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        projections.append((flat @ vt[0, :]).reshape(image.shape[1:]))
    return np.float32(projections)


def eigen_cam(
    model: nn.Module,
    input_tensor: torch.Tensor,
    target_layer: nn.Module,
    target_class: int,
    batch_size: int | None = None,
    *,
    reshape: Reshape = None,
) -> RawCam:
    """EigenCAM map of one (1, 3, H, W) image, equal to grad-cam's ``EigenCAM`` within float rounding.

    One forward pass on the model's device; the projection and the finish on the CPU. ``target_class`` and
    ``batch_size`` are accepted for the :data:`~xai.explain.cams._core.CamFunction` signature and unused: the map
    is not class-specific."""
    raw, _ = capture_activation(model, input_tensor.to(model_device(model)), target_layer)
    activation = resolve_reshape(reshape)(raw)
    if activation.dim() != 4:
        raise ValueError(f"EigenCAM needs an (N, C, h, w) map; the target layer gives {tuple(raw.shape)}")
    projection = first_component_projection(activation.detach().cpu().numpy())
    return RawCam(map=finish_cam(projection, tuple(input_tensor.shape[-2:])), forward_passes=1)
