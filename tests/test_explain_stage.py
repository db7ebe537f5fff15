"""The explanation stage, the artifact round trip and the method registry."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from xai.explain import (
    CAM_METHODS,
    METHODS,
    REQUIRED_METHODS,
    CamMap,
    ImageExplanation,
    LimeParams,
    Prediction,
    explain_image,
    method_info,
)
from xai.models import to_input
from xai.testing import PlantedEvidenceNet, planted_image


def test_registry_order_fields_and_implementations() -> None:
    assert list(METHODS) == ["lime", "gradcam", "ablationcam", "scorecam", "gradcampp", "xgradcam", "layercam",
                             "hirescam", "eigencam"]
    assert REQUIRED_METHODS == ("lime", "gradcam", "ablationcam", "scorecam")
    assert tuple(list(METHODS)[1:]) == CAM_METHODS
    for name, info in METHODS.items():
        assert info.name == name and info.title and "http" in info.paper and info.cost and info.summary
        if info.family == "cam":
            module, _, attribute = info.implementation.partition(":")
            assert callable(getattr(importlib.import_module(module), attribute))
    assert [n for n, i in METHODS.items() if i.needs_gradients] == ["gradcam", "gradcampp", "xgradcam",
                                                                    "layercam", "hirescam"]
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


def test_explain_image_runs_every_method_and_round_trips() -> None:
    model = PlantedEvidenceNet((8, 8, 32, 32), seed=0)
    image = planted_image(64, 0)
    explanation = explain_image(model, image, to_input=to_input, target_layer=model.layer4[-1],
                                methods=list(METHODS), lime_params=LimeParams(num_samples=60), seed=4)
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


def test_partial_explanations_round_trip() -> None:
    prediction = Prediction(labels=np.array([3, 1], dtype=np.int64), probabilities=np.array([0.7, 0.2], np.float32))
    cam = CamMap(method="gradcam", map=np.random.default_rng(0).random((4, 4), dtype=np.float32), target_class=3,
                 seconds=0.125, forward_passes=1)
    again = _round_trip(ImageExplanation(prediction=prediction, cams=(cam,)))
    assert again.lime is None and again.stability is None and again.cam("gradcam").seconds == 0.125
