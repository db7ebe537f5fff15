"""Caveats recorded for the page: AblationCAM's sign flip, LIME's label vs top-1, the preprocessing choice."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from xai.data import PREPROCESSING, load_image
from xai.explain.artifacts import CamMap
from xai.explain.cams.base import compute_cam
from xai.models import to_input
from xai.stages.compare import notes
from xai.testing import planted_image, tiny_resnet


def test_ablationcam_warns_when_the_original_logit_is_negative() -> None:
    model = tiny_resnet(num_classes=10, seed=0)
    tensor = to_input(planted_image(64, seed=1)[None])
    with torch.no_grad():
        logits = model(tensor)[0]
    negative, positive = int(logits.argmin()), int(logits.argmax())
    assert logits[negative] < 0 < logits[positive]
    flipped = compute_cam(model, tensor, "ablationcam", model.layer4[-1], negative)
    assert "flips the sign of every channel weight" in flipped.warning and f"class {negative}" in flipped.warning
    assert compute_cam(model, tensor, "ablationcam", model.layer4[-1], positive).warning == ""
    assert compute_cam(model, tensor, "gradcam", model.layer4[-1], negative).warning == ""
    restored = CamMap.from_parts(*flipped.to_parts())
    assert restored.warning == flipped.warning


def _explained(name: str, lime_label: int, top1: int, warning: str = "") -> SimpleNamespace:
    explanation = SimpleNamespace(prediction=SimpleNamespace(top1=top1), lime=SimpleNamespace(label=lime_label),
                                  cams=(SimpleNamespace(warning=warning),))
    return SimpleNamespace(name=name, explanation=explanation)


def test_notes_name_a_lime_label_that_is_not_top1_and_cam_warnings() -> None:
    explained = SimpleNamespace(images=[_explained("a", 3, 3), _explained("b", 5, 3, "AblationCAM: flips")])
    found = notes(explained)
    assert found == ["b: LIME explained class 5, not the model's top-1 class 3 (LIME's top label comes from its "
                     "own classifier call on the unperturbed image)", "b: AblationCAM: flips"]
    assert notes(SimpleNamespace(images=[_explained("a", 3, 3)])) == []


def test_lime_tutorial_preprocessing_squashes_instead_of_cropping(tmp_path: Path) -> None:
    wide = np.zeros((200, 400, 3), np.uint8)
    wide[:, :100] = (255, 0, 0)  # left quarter red
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)
    ours = load_image(path, **PREPROCESSING["weights"])
    tutorial = load_image(path, **PREPROCESSING["lime_tutorial"])
    assert ours.shape == tutorial.shape == (224, 224, 3)
    # Shorter side to 232 keeps the aspect: the red quarter (116 px of 464) falls outside the centre crop.
    assert ours[:, :, 0].max() < 50
    # Squashed to 256x256, the red quarter is 64 px wide; cropping 16 px leaves ~48 red columns.
    red_columns = int(np.sum(tutorial[112, :, 0] > 200))
    assert 40 <= red_columns <= 52


def test_agreement_uses_every_lime_seed() -> None:
    from xai.explain.artifacts import LimeStability
    from xai.stages.compare import seed_weights

    lime = SimpleNamespace(weights=np.array([0.5, -0.1, 0.2]), seed=4)
    stability = LimeStability(seeds=(4, 5, 6), ks=(5,), jaccard=np.zeros((1, 3)),
                              weights=np.array([[0.5, -0.1, 0.2], [0.4, 0.0, 0.3], [0.1, 0.2, 0.3]]))
    weights, seeds = seed_weights(SimpleNamespace(lime=lime, stability=stability))
    assert seeds == (4, 5, 6) and weights.shape == (3, 3)
    weights, seeds = seed_weights(SimpleNamespace(lime=lime, stability=None))
    assert seeds == (4,) and np.array_equal(weights, lime.weights[None])
