"""Run a ``pytorch_grad_cam`` class for one image, with the target explicit and the hooks always released.

Used for the one-pass CAMs (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM, EigenCAM): the library is
already at the floor there (one forward, one backward). Deviation from the library's own ``with`` block: its
``__exit__`` swallows any ``IndexError`` raised inside; we release the hooks in ``finally`` instead, so errors
propagate.
"""

from __future__ import annotations

import torch
from torch import nn

from xai.explain.cams._core import RawCam


def library_cam(
    cam_class: type,
    model: nn.Module,
    input_tensor: torch.Tensor,
    target_layer: nn.Module,
    target_class: int,
    batch_size: int | None = None,
    *,
    reshape: str | None = None,
) -> RawCam:
    """``cam_class(model, [target_layer], reshape_transform=...)(input_tensor, targets=[ClassifierOutputTarget(
    target_class)])[0]``; AblationCAM also gets the ablation layer the reshape needs
    (:func:`xai.architectures.ablation_layer_for`)."""
    from pytorch_grad_cam import AblationCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from xai.architectures import ablation_layer_for, reshape_transform

    extra = {"ablation_layer": ablation_layer_for(reshape)} if issubclass(cam_class, AblationCAM) else {}
    cam = cam_class(model=model, target_layers=[target_layer], reshape_transform=reshape_transform(reshape), **extra)
    try:
        if batch_size is not None and hasattr(cam, "batch_size"):
            cam.batch_size = batch_size
        maps = cam(input_tensor=input_tensor, targets=[ClassifierOutputTarget(int(target_class))])
    finally:
        cam.activations_and_grads.release()
    return RawCam(map=maps[0], forward_passes=1)
