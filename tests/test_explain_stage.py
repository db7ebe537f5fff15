"""The explain stage's per-image explanation (the code the pipeline runs), the artifact round trip, the method
registry and the plan's forward-pass count."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from explain_run import explain_context, explain_one

from xai.config import ConfigError, validate
from xai.explain import (
    CAM_METHODS,
    METHODS,
    REQUIRED_METHODS,
    CamMap,
    ImageExplanation,
    LimeParams,
    Prediction,
    method_info,
    run_lime,
    seed_stability,
)
from xai.models import to_input
from xai.stages import NotCachedError
from xai.stages.explain import forward_passes_per_image
from xai.testing import PlantedEvidenceNet, planted_image


def test_registry_order_fields_and_implementations() -> None:
    assert list(METHODS) == [
        "lime",
        "gradcam",
        "ablationcam",
        "scorecam",
        "gradcampp",
        "xgradcam",
        "layercam",
        "hirescam",
        "eigencam",
    ]
    assert REQUIRED_METHODS == ("lime", "gradcam", "ablationcam", "scorecam")
    assert tuple(list(METHODS)[1:]) == CAM_METHODS
    for name, info in METHODS.items():
        assert info.name == name and info.title and "http" in info.paper and info.cost and info.summary
        if info.family == "cam":
            module, _, attribute = info.implementation.partition(":")
            assert callable(getattr(importlib.import_module(module), attribute))
    assert [n for n, i in METHODS.items() if i.needs_gradients] == [
        "gradcam",
        "gradcampp",
        "xgradcam",
        "layercam",
        "hirescam",
    ]
    with pytest.raises(ValueError, match="known: lime, gradcam"):
        method_info("gradcam9000")


def _round_trip(explanation: ImageExplanation) -> ImageExplanation:
    arrays, meta = explanation.to_parts()
    again = ImageExplanation.from_parts(dict(arrays), json.loads(json.dumps(meta)))
    arrays_again, meta_again = again.to_parts()
    assert meta_again == json.loads(json.dumps(meta))
    assert arrays.keys() == arrays_again.keys()
    for key, value in arrays.items():
        assert value.dtype == arrays_again[key].dtype and np.array_equal(value, arrays_again[key]), key
    return again


def test_explain_one_runs_every_method_caches_each_piece_and_round_trips(tmp_path) -> None:
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    image = planted_image(64, 0)
    context = explain_context(
        tmp_path / "cache", model, methods=list(METHODS), num_samples=60, stability_seeds=3, seed=4
    )
    explanation = explain_one(context, image)
    assert explanation.prediction.top1 == int(model(to_input(image[None])).argmax())
    assert [c.method for c in explanation.cams] == list(CAM_METHODS)
    assert all(c.target_class == explanation.prediction.top1 for c in explanation.cams)
    assert explanation.lime is not None and explanation.lime.seed == 4
    assert explanation.stability is not None and explanation.stability.seeds == (4, 5, 6)
    again = _round_trip(explanation)
    assert again.cam("scorecam").forward_passes == explanation.cam("scorecam").forward_passes
    assert again.lime.ks == (5, 10) and again.lime.score == explanation.lime.score
    with pytest.raises(KeyError):
        again.cam("nonexistent")
    # One cache entry per piece: the prediction, LIME, its stability and each CAM; a load-only rerun finds them all.
    assert len(list((tmp_path / "cache").rglob("meta.json"))) == 3 + len(CAM_METHODS)
    cached = explain_one(
        explain_context(tmp_path / "cache", model, methods=list(METHODS), num_samples=60, stability_seeds=3, seed=4),
        image,
        load_only=True,
    )
    assert all(np.array_equal(cached.cam(m).map, explanation.cam(m).map) for m in CAM_METHODS)
    assert np.array_equal(cached.stability.jaccard, explanation.stability.jaccard)
    with pytest.raises(NotCachedError):
        explain_one(
            explain_context(
                tmp_path / "cache", model, methods=list(METHODS), num_samples=61, stability_seeds=3, seed=4
            ),
            image,
            load_only=True,
        )


def test_stability_reruns_the_following_seeds_on_the_first_runs_segments() -> None:
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0).eval()
    image = planted_image(64, 1)
    params = LimeParams(num_samples=30, stability_seeds=3)
    first = run_lime(model, image, to_input=to_input, params=params, seed=7)
    stability = seed_stability(model, image, first, to_input=to_input, params=params)
    third = run_lime(model, image, to_input=to_input, params=params, seed=9, segments=first.segments)
    assert stability.seeds == (7, 8, 9)
    assert np.array_equal(stability.weights[0], first.weights) and np.array_equal(stability.weights[2], third.weights)


def test_plan_counts_forward_passes_from_the_registry_and_the_target_layer() -> None:
    def count(**explain: object) -> int:
        return forward_passes_per_image(validate({"stages": ["explain"], "explain": explain}))

    lime = {"num_samples": 100, "stability_seeds": 2}
    assert count(methods=["lime"], lime=lime) == 1 + 200
    assert count(methods=["gradcam", "eigencam"]) == 1 + 2 + 1
    assert count(methods=["scorecam", "ablationcam"]) == 1 + 2 * (2048 + 1)  # ResNet50 layer4: 2048 channels
    assert count(methods=["scorecam"], target_layer="layer3") == 1 + 1024 + 1
    with pytest.raises(ConfigError, match="layer9"):
        count(methods=["scorecam"], target_layer="layer9")


def test_partial_explanations_round_trip() -> None:
    prediction = Prediction(labels=np.array([3, 1], dtype=np.int64), probabilities=np.array([0.7, 0.2], np.float32))
    cam = CamMap(
        method="gradcam",
        map=np.random.default_rng(0).random((4, 4), dtype=np.float32),
        target_class=3,
        seconds=0.125,
        forward_passes=1,
    )
    again = _round_trip(ImageExplanation(prediction=prediction, cams=(cam,)))
    assert again.lime is None and again.stability is None and again.cam("gradcam").seconds == 0.125
