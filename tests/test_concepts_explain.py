"""The entry point end to end: ResNet50 at its real size and cost, and every architecture family the explain stage
accepts at its auto target layer (random weights), with the invariants each result must satisfy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from xai.architectures import auto_target_layer, resolve_layer
from xai.classifiers import redraw_zero_layers
from xai.concepts import (
    ClipFunctions,
    ConceptSettings,
    explain_in_concepts,
    make_unit_labels,
    summarise,
    unit_labels,
)
from xai.dissect.result import LayerDissection
from xai.explain import compute_cam
from xai.explain.cams._core import capture_activation, channel_axis, resolve_reshape

N_CONCEPTS = 300


def _labels(n_units: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, N_CONCEPTS, size=(n_units, 5))
    scores = -np.sort(-rng.normal(size=(n_units, 5)), axis=1)
    return make_unit_labels("target", [f"concept {i}" for i in range(N_CONCEPTS)], ids, scores, 1.0)


def _random_clip(width: int = 32, seed: int = 0) -> ClipFunctions:
    texts = np.random.default_rng(seed).normal(size=(N_CONCEPTS, width))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)

    def encode(crops: Sequence[np.ndarray]) -> np.ndarray:
        # a deterministic embedding of each crop's mean colour and size
        features = np.array([[*crop.reshape(-1, 3).mean(axis=0), crop.shape[0], crop.shape[1]] for crop in crops])
        projected = np.tanh(features @ np.random.default_rng(1).normal(size=(5, width)) / 100)
        return projected / np.linalg.norm(projected, axis=1, keepdims=True)

    return ClipFunctions(encode, texts.astype(np.float32))


def _check_invariants(explanation, n_units: int) -> None:
    bars = explanation.bars
    assert sum(bar.n_units for bar in bars.bars) + bars.unlabelled.n_units == n_units
    total = sum(bar.contribution for bar in bars.bars) + bars.unlabelled.contribution + bars.offset
    assert total - bars.logit == pytest.approx(
        explanation.contributions.completeness_error, abs=1e-6 + 1e-6 * abs(total)
    )
    assert explanation.maps.maps.shape[0] == len(bars.bars) + 1
    faith = explanation.faithfulness
    assert faith.p_margin.shape == faith.ks.shape and np.all((faith.p_margin > 0) & (faith.p_margin <= 1))
    assert len(explanation.concept_removals) == len(bars.top(explanation.settings.shown))


def test_resnet50_at_224_runs_end_to_end_exactly() -> None:
    from torchvision.models import resnet50

    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    image = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    target = int(model(x).argmax())
    layer = model.layer4[-1]
    cam = compute_cam(model, x, "gradcam", layer, target).map
    explanation = explain_in_concepts(
        model,
        layer,
        x,
        target,
        _labels(2048),
        np.full(2048, 0.3, np.float32),
        image=image,
        clip=_random_clip(),
        cam_maps={"gradcam": cam},
        image_id="img",
        true_class=target,
    )
    assert explanation.head_kind == "gap_linear" and explanation.strategy == "after-target"
    assert abs(explanation.contributions.completeness_error) < 1e-4
    assert explanation.faithfulness.linear_logit_check < 1e-4
    assert explanation.faithfulness.ks.tolist() == [1, 2, 4, 8, 16, 32, 64]
    assert explanation.maps.maps.shape[1:] == (7, 7)
    _check_invariants(explanation, 2048)
    assert len(explanation.presence) == len(explanation.bars.top(5)) > 0
    assert {row.method for row in explanation.agreement} == {"gradcam"}
    assert explanation.correct is True
    summary = summarise([explanation])
    assert summary.n_correct == 1 and summary.median("completeness_error").n == 1


def _probe_mean(model: torch.nn.Module, layer: torch.nn.Module, reshape: str | None, size: int) -> np.ndarray:
    """Each unit's mean activation over 4 random probe inputs and every position (the dissection's avg pool)."""
    probe = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    raw, _ = capture_activation(model, probe, layer)
    axis = 1 if reshape is None else channel_axis(raw, resolve_reshape(reshape))
    return raw.movedim(axis, -1).reshape(-1, raw.shape[axis]).mean(dim=0).numpy()


FAMILIES = ["mobilenet_v2", "efficientnet_b0", "densenet121", "regnet_y_400mf", "convnext_tiny", "swin_t", "vit_b_32"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_at_its_auto_target_layer(name: str) -> None:
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=10).eval()
    redraw_zero_layers(model)  # ViT's zero head would make every logit 0 and every check blind
    size = 224 if name == "vit_b_32" else 64
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    target_layer = auto_target_layer(model)
    layer = resolve_layer(model, target_layer.path)
    with torch.inference_mode():
        target = int(model(x).argmax())
    baseline = _probe_mean(model, layer, target_layer.reshape, size)
    settings = ConceptSettings(random_sets=20, permutations=50, ks=(1, 4, 16))
    explanation = explain_in_concepts(
        model, layer, x, target, _labels(baseline.size), baseline, reshape=target_layer.reshape, settings=settings
    )
    linear = name in ("mobilenet_v2", "efficientnet_b0", "regnet_y_400mf")
    assert explanation.head_kind == ("gap_linear" if linear else "general"), explanation.head_reason
    _check_invariants(explanation, baseline.size)
    contributions = explanation.contributions
    if linear:  # relative to the terms: random-weight MobileNet and EfficientNet activations are ~1e-9
        magnitude = float(np.abs(contributions.contributions.astype(np.float64)).sum()) + abs(contributions.offset)
        assert magnitude > 0 and abs(contributions.completeness_error) < 1e-4 * magnitude
    else:  # integrated gradients from the baseline: the error is reported, and small against the change it explains
        change = contributions.logit - contributions.offset
        assert abs(change) > 1e-3
        assert abs(contributions.completeness_error) <= 0.05 * abs(change)


def test_labels_need_the_null_and_must_match_the_layer() -> None:
    layer = LayerDissection(
        "layer4", np.zeros((4, 2), np.int32), np.ones((4, 2), np.float32), np.zeros((4, 1)), np.zeros((4, 1))
    )
    with pytest.raises(ValueError, match="null"):
        unit_labels(layer, ["a", "b"])
    with_null = LayerDissection(**{**layer.__dict__, "null_scores": np.array([0.5, 0.5, 2.0, 2.0], np.float32)})
    labels = unit_labels(with_null, ["a", "b"])
    assert labels.threshold == pytest.approx(2.0) and not labels.reliable.any()
    from xai.testing import PlantedEvidenceNet

    model = PlantedEvidenceNet((16, 16, 48, 48))
    with pytest.raises(ValueError, match="unit labels"):
        explain_in_concepts(model, model.layer4[-1], torch.zeros(1, 3, 64, 64), 0, labels, np.zeros(32, np.float32))
