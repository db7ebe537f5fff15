"""The explain stage's per-image explanation (the code the pipeline runs), the artifact round trip, the method
registry and the plan's forward-pass count."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch

from tests.helpers.explain_run import explain_context, explain_one
from xai import serial
from xai.config import ConfigError, validate
from xai.context import NotCachedError
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
from xai.explain.cams.base import compute_cam
from xai.models import to_input
from xai.plan import make_plan
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
    arrays, meta = serial.to_parts(explanation)
    again = serial.from_parts(ImageExplanation, dict(arrays), json.loads(json.dumps(meta)))
    arrays_again, meta_again = serial.to_parts(again)
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
        return make_plan(validate({"stages": ["explain"], "explain": explain})).explain.forward_passes_per_image

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


# ----------------------------------------------------------------------------------------------------------------
# Issue 13: the explained classifier is any torchvision model; everything it changes is in the cache key.


def test_plan_counts_any_models_target_channels() -> None:
    def count(**explain: object) -> int:
        return make_plan(validate({"stages": ["explain"], "explain": explain})).explain.forward_passes_per_image

    assert count(model="mobilenet_v3_small", methods=["scorecam"]) == 1 + 576 + 1  # features[-1]
    assert count(model="vit_b_16", methods=["scorecam"]) == 1 + 768 + 1  # tokens: D channels
    assert count(model="vit_b_16", methods=["scorecam"], target_layer="encoder.layers[-2]") == 1 + 768 + 1


def _image_key(config_data: dict, method: str = "gradcam") -> dict:
    from tests.helpers.explain_run import input_image
    from xai.stages.explain import method_parts

    config = validate({"stages": ["explain"], "weights": "random", **config_data})
    context = type("Context", (), {"plan": make_plan(config)})()
    return method_parts(context, input_image(planted_image(8, 0)), method)


def test_cache_key_holds_the_classifier_its_weights_target_layer_and_reshape(tmp_path) -> None:
    base = _image_key({})
    assert base["model"] == "resnet50" and base["weights_member"] == "IMAGENET1K_V2"
    assert base["target_layer"] == "layer4[-1]" and base["reshape"] is None  # auto, resolved
    assert _image_key({"explain": {"target_layer": "layer4[-1]"}}) == base  # the same layer, the same entry
    assert _image_key({"explain": {"model_weights": "IMAGENET1K_V2"}}) == base  # DEFAULT is that member
    vit = _image_key({"explain": {"model": "vit_b_16"}})
    assert (vit["model"], vit["target_layer"], vit["reshape"]) == (
        "vit_b_16",
        "encoder.layers[-1].ln_1",
        "vit_tokens_to_map",
    )
    assert _image_key({"explain": {"model": "vit_b_16", "model_weights": "IMAGENET1K_SWAG_E2E_V1"}}) != vit
    (tmp_path / "classes.txt").write_text("a\nb\n")
    classes = _image_key({"explain": {"model": "resnet50", "classes": str(tmp_path / "classes.txt")}})
    assert classes["classes"] and classes != base
    assert _image_key({"seed": 1}) != base and _image_key({"explain": {"preprocess": "lime_tutorial"}}) != base


def test_weights_key_identifies_weights_without_loading(tmp_path) -> None:
    from xai.classifiers import PRESETS, ClassifierSpec
    from xai.models import WEIGHT_FILES, file_sha256
    from xai.plan import _model_plan

    def weights_key(config, spec):
        return _model_plan(config, spec).weights_key

    pretrained = validate({"weights": "pretrained"})
    assert weights_key(validate({"weights": "random", "seed": 4}), ClassifierSpec("vit_b_16")) == "random(seed=4)"
    # torchvision's file from the enum member: the same key as the files pinned before issue 13
    for spec, name in ((ClassifierSpec("resnet50"), "resnet50"), (PRESETS["resnet18_imagenet"], "resnet18_imagenet")):
        assert weights_key(pretrained, spec) == f"{WEIGHT_FILES[name].filename}:{WEIGHT_FILES[name].known_hash}"
    places = WEIGHT_FILES["resnet18_places365"]
    assert weights_key(pretrained, PRESETS["resnet18_places365"]) == f"{places.filename}:{places.known_hash}"
    assert weights_key(pretrained, ClassifierSpec("convnext_tiny")).startswith("convnext_tiny-983f1562.pth:")
    checkpoint = tmp_path / "ours.pt"
    checkpoint.write_bytes(b"weights")
    key = weights_key(pretrained, ClassifierSpec("resnet18", checkpoint=checkpoint))
    assert key == f"ours.pt:sha256:{file_sha256(checkpoint)}"
    checkpoint.write_bytes(b"other weights")
    assert weights_key(pretrained, ClassifierSpec("resnet18", checkpoint=checkpoint)) != key


def test_resnet50_preprocessing_is_byte_identical_to_the_fixed_one(tmp_path) -> None:
    """DEFAULT's transforms() values are what xai.data and models.to_input hard-coded before issue 13; another
    model's (efficientnet_b0: 256, bicubic) change the pixels."""
    import torch
    from PIL import Image
    from torchvision.transforms import functional

    from xai.classifiers import ClassifierSpec, preprocessing
    from xai.data import load_image

    def image_preprocessing(config):
        return make_plan(config).inputs.loading.arguments()

    arguments = image_preprocessing(validate({}))
    assert arguments == {"resize": 232, "crop": 224, "squash": False, "interpolation": "bilinear"}
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (300, 410, 3), dtype=np.uint8)).save(path)
    before = np.asarray(functional.center_crop(functional.resize(Image.open(path), 232, antialias=True), 224))
    pixels = load_image(path, **arguments)
    assert pixels.tobytes() == before.tobytes()
    ours = preprocessing(ClassifierSpec("resnet50")).to_input(pixels[None])
    assert torch.equal(ours, to_input(pixels[None]))
    other = image_preprocessing(validate({"explain": {"model": "efficientnet_b0"}}))
    assert other == {"resize": 256, "crop": 224, "squash": False, "interpolation": "bicubic"}
    bicubic = functional.resize(Image.open(path), 256, functional.InterpolationMode.BICUBIC, antialias=True)
    assert load_image(path, **other).tobytes() == np.asarray(functional.center_crop(bicubic, 224)).tobytes()
    assert load_image(path, **{**other, "interpolation": "bilinear"}).tobytes() != load_image(path, **other).tobytes()
    lime = image_preprocessing(validate({"explain": {"model": "efficientnet_b0", "preprocess": "lime_tutorial"}}))
    assert lime == {"resize": 256, "crop": 224, "squash": True, "interpolation": "bilinear"}


def test_artifacts_name_the_classifier_from_the_config_not_resnet50() -> None:
    from xai.stages.explain import _artifacts

    artifacts = _artifacts(make_plan(validate({"weights": "random", "explain": {"model": "vit_b_16"}})).explain)
    assert (artifacts.model, artifacts.architecture, artifacts.weights_member) == (
        "vit_b_16",
        "vit_b_16",
        "IMAGENET1K_V1",
    )
    assert artifacts.target_layer == "encoder.layers[-1].ln_1" and artifacts.reshape == "vit_tokens_to_map"
    assert "class token dropped" in artifacts.target_reason and artifacts.target_channels == 768
    assert len(artifacts.categories) == 1000 and artifacts.weights_description.startswith("random(seed=0)")
    assert artifacts.preprocessing.resize == 256 and artifacts.preprocessing.crop == 224


def _tiny_vit() -> torch.nn.Module:
    from torchvision.models import VisionTransformer

    from xai.classifiers import redraw_zero_layers

    torch.manual_seed(0)
    model = VisionTransformer(32, 8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5)
    redraw_zero_layers(model)  # the zero-initialised head would make every gradient zero
    return model.eval()


@pytest.mark.parametrize("cam_name", ["GradCAM", "AblationCAM", "EigenCAM"])
def test_compute_cam_threads_the_reshape_to_grad_cam(cam_name: str) -> None:
    """ViT tokens: the engine passes grad-cam's reshape_transform (and AblationCAM the ViT ablation layer); the
    map equals the library's own call with the same arguments, and without the reshape the library fails."""
    import pytorch_grad_cam
    from pytorch_grad_cam.ablation_layer import AblationLayerVit
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from xai.architectures import vit_tokens_to_map
    from xai.explain.cams.library import library_cam

    model = _tiny_vit()
    layer = model.encoder.layers[-1].ln_1
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cam_class = getattr(pytorch_grad_cam, cam_name)
    ours = library_cam(cam_class, model, x, layer, 2, reshape="vit_tokens_to_map").map
    extra = {"ablation_layer": AblationLayerVit()} if cam_name == "AblationCAM" else {}
    reference = cam_class(model=model, target_layers=[layer], reshape_transform=vit_tokens_to_map, **extra)
    expected = reference(input_tensor=x, targets=[ClassifierOutputTarget(2)])[0]
    reference.activations_and_grads.release()
    np.testing.assert_array_equal(ours, expected)
    assert ours.shape == (32, 32) and ours.max() > ours.min()
    try:  # without the reshape grad-cam fails in several ways on (N, T, D) tokens, or maps the wrong axes
        unshaped = library_cam(cam_class, model, x, layer, 2).map
    except (RuntimeError, ValueError, IndexError):
        unshaped = None
    assert unshaped is None or not np.array_equal(unshaped, expected)
    if cam_name == "GradCAM":
        cam = compute_cam(model, x, "gradcam", layer, 2, reshape="vit_tokens_to_map")
        np.testing.assert_array_equal(cam.map, expected)
