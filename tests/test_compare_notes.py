"""Caveats recorded for the page: AblationCAM's sign flip, LIME's label vs top-1, the preprocessing choice."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from xai import serial
from xai.compare.results import explanation_caveats
from xai.data import PREPROCESSING, load_image
from xai.explain.artifacts import CamMap
from xai.explain.cams.base import compute_cam
from xai.models import to_input
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
    restored = serial.from_parts(CamMap, *serial.to_parts(flipped))
    assert restored.warning == flipped.warning


def _explained(name: str, lime_label: int, top1: int, warning: str = "") -> SimpleNamespace:
    explanation = SimpleNamespace(
        prediction=SimpleNamespace(top1=top1),
        lime=SimpleNamespace(label=lime_label),
        cams=(SimpleNamespace(warning=warning),),
    )
    return SimpleNamespace(name=name, explanation=explanation)


def test_notes_name_a_lime_label_that_is_not_top1_and_cam_warnings() -> None:
    explained = SimpleNamespace(images=[_explained("a", 3, 3), _explained("b", 5, 3, "AblationCAM: flips")])
    found = explanation_caveats(explained)
    assert found == [
        "b: LIME explained class 5, not the model's top-1 class 3 (LIME's top label comes from its "
        "own classifier call on the unperturbed image)",
        "b: AblationCAM: flips",
    ]
    assert explanation_caveats(SimpleNamespace(images=[_explained("a", 3, 3)])) == []


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
    from xai.compare.results import seed_weights
    from xai.explain.artifacts import LimeStability

    lime = SimpleNamespace(weights=np.array([0.5, -0.1, 0.2]), seed=4)
    stability = LimeStability(
        seeds=(4, 5, 6),
        ks=(5,),
        jaccard=np.zeros((1, 3)),
        weights=np.array([[0.5, -0.1, 0.2], [0.4, 0.0, 0.3], [0.1, 0.2, 0.3]]),
    )
    weights, seeds = seed_weights(SimpleNamespace(lime=lime, stability=stability))
    assert seeds == (4, 5, 6) and weights.shape == (3, 3)
    weights, seeds = seed_weights(SimpleNamespace(lime=lime, stability=None))
    assert seeds == (4,) and np.array_equal(weights, lime.weights[None])


def test_smooth_random_maps_differ_between_images_and_repeat_for_one_image(monkeypatch) -> None:
    """The compare stage seeds the faithfulness random maps per image (from the image's sha256 and the config
    seed): two images get different maps, the same image the same maps in every run."""
    import xai.compare as compare
    from xai.compare.faithfulness import image_seed, random_map
    from xai.config import Config
    from xai.context import StageCache
    from xai.stages import compare as stage
    from xai.units import Filled

    assert image_seed(0, "ab" * 32) == image_seed(0, "ab" * 32) == 3_717_097_096  # pinned: stable across runs
    assert image_seed(0, "ab" * 32) != image_seed(0, "cd" * 32) and image_seed(1, "ab" * 32) != image_seed(0, "ab" * 32)

    seeds: dict[str, int] = {}

    def fake_faithfulness(*args, seed, image_id, **kwargs):
        seeds[image_id] = seed

    monkeypatch.setattr(compare, "faithfulness_image", fake_faithfulness)
    monkeypatch.setattr(compare, "compare_image", lambda *args, **kwargs: None)
    monkeypatch.setattr(compare, "explanation_maps", lambda *args, **kwargs: {})
    monkeypatch.setattr(compare, "summarise", lambda *args, **kwargs: None)
    monkeypatch.setattr(compare, "cross_image_table", lambda *args, **kwargs: None)
    monkeypatch.setattr(
        StageCache, "get", lambda self, kind, parts, compute: None if parts["piece"] == "sanity" else compute()
    )
    monkeypatch.setattr(stage, "base_parts", lambda context, sha: {})
    monkeypatch.setattr(stage, "sanity_explain_fn", lambda *args, **kwargs: None)
    monkeypatch.setattr(stage, "explanation_caveats", lambda explained: [])
    monkeypatch.setattr(stage, "explain_batch_size", lambda *args, **kwargs: 8)
    # no units: every piece is computed by the (patched) cache on the driver
    monkeypatch.setattr(stage, "fill_missing", lambda *args, **kwargs: Filled())

    def item(name: str) -> SimpleNamespace:
        lime = SimpleNamespace(segments=np.zeros((4, 4), np.int32), weights=np.zeros(1), seed=0)
        explanation = SimpleNamespace(lime=lime, cams=(), stability=None, prediction=SimpleNamespace(top1=0))
        return SimpleNamespace(name=name, pixels=np.zeros((4, 4, 3), np.uint8), explanation=explanation)

    from xai.plan import make_plan

    config = Config()
    context = SimpleNamespace(
        plan=make_plan(config),
        images=[SimpleNamespace(name="a", sha256="ab" * 32), SimpleNamespace(name="b", sha256="cd" * 32)],
        progress=lambda items, *args, **kwargs: items,
        classifier=lambda model: SimpleNamespace(module=None),
        device="cpu",
    )
    stage._collect(context, SimpleNamespace(images=[item("a"), item("b")]), load_only=False)
    assert seeds == {"a": image_seed(config.seed, "ab" * 32), "b": image_seed(config.seed, "cd" * 32)}
    first = [random_map((224, 224), seeds["a"] * 1000 + draw) for draw in range(3)]
    second = [random_map((224, 224), seeds["b"] * 1000 + draw) for draw in range(3)]
    assert not any(np.array_equal(x, y) for x, y in zip(first, second, strict=True))
    again = [random_map((224, 224), image_seed(config.seed, "ab" * 32) * 1000 + draw) for draw in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
