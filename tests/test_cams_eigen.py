"""EigenCAM with the thin SVD equals grad-cam's EigenCAM (full SVD on the CPU), sign included, per family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import EigenCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from xai import architectures
from xai.classifiers import ClassifierSpec, build_classifier
from xai.explain import compute_cam
from xai.explain.cams.eigen import first_component_projection
from xai.models import to_input
from xai.testing import PlantedViT, planted_image

ATOL = 1e-4
"""The CAM equality tests' tolerance (tests/test_cams_families.py)."""


@pytest.mark.parametrize("seed", range(12))
def test_the_thin_svd_projects_like_the_library_sign_included(seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels, side = (512, 7) if seed % 2 else (96, 14)
    activations = np.maximum(rng.normal(size=(1, channels, side, side)) + rng.normal(size=(1, 1, side, side)), 0)
    activations = activations.astype(np.float32)
    if seed == 3:
        activations[0, 5, 2, 2] = np.nan  # counted as 0, as the library does
    expected = get_2d_projection(activations)
    ours = first_component_projection(activations)
    assert ours.dtype == np.float32 and ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def _library_map(model, layer, x, target, reshape):
    cam = EigenCAM(model=model, target_layers=[layer], reshape_transform=architectures.reshape_transform(reshape))
    try:
        return cam(x, [ClassifierOutputTarget(target)])[0]
    finally:
        cam.activations_and_grads.release()


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "vit"])
def test_eigencam_equals_the_library_at_real_size(name: str) -> None:
    if name == "vit":
        model = PlantedViT((8, 8, 32, 32), seed=0).eval()
        layer, reshape, size = model.encoder.layers[-1].ln_1, "vit_tokens_to_map", 64
    else:
        model = build_classifier(ClassifierSpec(name), "random", seed=0, weights_dir=None).module
        target = architectures.auto_target_layer(model)
        layer, reshape, size = architectures.resolve_layer(model, target.path), target.reshape, 224
    x = to_input(planted_image(size, 1)[None])
    with torch.no_grad():
        target_class = int(model(x).argmax())
    ours = compute_cam(model, x, "eigencam", layer, target_class, reshape=reshape)
    expected = _library_map(model, layer, x, target_class, reshape)
    assert expected.std() > 0.01 and ours.forward_passes == 1
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=ATOL)
