"""CLIP-Dissect of any torchvision classifier (issue 13): layers resolved per model, each model's own
preprocessing in the one-decode probe pass, token outputs pooled by the mean over tokens, the presets' numbers
unchanged, the comparison of two models with different layers, and the pages naming what was dissected."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from xai import serial
from xai.classifiers import PRESETS, ClassifierSpec, ModelChoiceError, build_classifier
from xai.dissect.activations import hooked_layers, image_batches, layer_activations
from xai.dissect.layers import is_preset, layer_plan
from xai.dissect.probe_pass import _target_crops, probe_pass

FIXTURE = Path(__file__).parent / "fixtures" / "dissect_presets_activations.npz"
PRESET_LAYERS = ("layer3", "layer4", "fc")


def _preset(name: str, mirror: Path) -> ClassifierSpec:
    spec = PRESETS[name]
    if spec.published is not None:
        spec = dataclasses.replace(spec, classes=mirror / "places365" / "categories_places365.txt")
    return spec


def test_presets_keep_their_activations_bit_for_bit(mirror: Path) -> None:
    """The joint pass as the stage now sets it up (transform and layers per model) gives the numbers the
    pre-issue-13 pass gave (fixture written by tests/fixtures/make_dissect_presets_activations.py)."""
    from xai.dissect.layers import probe_transform

    fixture = np.load(FIXTURE)
    paths = [mirror / "imagenet-sample-images" / name for name in fixture["images"]]
    specs = [_preset(name, mirror) for name in ("resnet18_imagenet", "resnet18_places365")]
    assert all(is_preset(spec) for spec in specs)
    transforms = {spec.model_id: probe_transform(spec) for spec in specs}
    crops, _ = _target_crops(dict.fromkeys(transforms, nn.Identity()), transforms)
    assert len(crops) == 1  # both ResNet18s share CLIP-Dissect's one 256 -> 224 crop, as before
    out = probe_pass(
        paths,
        batch_size=2,
        targets={spec.model_id: build_classifier(spec, "random", seed=0, weights_dir=None).module for spec in specs},
        target_transform=transforms,
        layers={spec.model_id: layer_plan(spec, PRESET_LAYERS).layers for spec in specs},
        workers=0,
    )
    for spec in specs:
        for layer in PRESET_LAYERS:
            np.testing.assert_array_equal(out.activations[spec.model_id][layer], fixture[f"{spec.model_id}/{layer}"])


def test_layer_plans_per_family() -> None:
    resnet = layer_plan(PRESETS["resnet18_imagenet"], PRESET_LAYERS)
    assert resnet.layers == PRESET_LAYERS and resnet.pooling == ("spatial", "spatial", "none")
    assert resnet.final_layer == "fc"
    mobilenet = layer_plan(ClassifierSpec("mobilenet_v3_small"), "auto")
    assert mobilenet.layers == ("features.3", "features.8", "features.12", "classifier")
    assert mobilenet.final_layer == "classifier" and mobilenet.pooling[-1] == "none"
    vit = layer_plan(ClassifierSpec("vit_b_16"), "auto")
    assert vit.layers == (*(f"encoder.layers.encoder_layer_{i}" for i in (9, 10, 11)), "heads")
    assert vit.pooling == ("tokens", "tokens", "tokens", "none") and vit.final_layer == "heads"
    swin = layer_plan(ClassifierSpec("swin_t"), "auto")
    assert swin.pooling[:3] == ("channels_last",) * 3 and swin.channels_last == frozenset(swin.layers[:3])
    # explicit paths in either syntax, the classifier found by role whatever it is called
    explicit = layer_plan(ClassifierSpec("mobilenet_v3_small"), ["features[-1]", "classifier.3"])
    assert explicit.layers == ("features.12", "classifier.3") and explicit.final_layer == "classifier.3"
    assert layer_plan(ClassifierSpec("mobilenet_v3_small"), ["features.12"]).final_layer is None


def test_an_explicit_layer_missing_from_a_model_is_one_line_naming_it() -> None:
    with pytest.raises(ModelChoiceError) as error:
        layer_plan(ClassifierSpec("mobilenet_v3_small"), ["layer4", "fc"])
    message = str(error.value)
    assert "\n" not in message and "model mobilenet_v3_small" in message and "'layer4'" in message
    assert "close: classifier" in message and "top-level: features, avgpool, classifier" in message


def test_token_outputs_are_pooled_by_the_mean_over_tokens() -> None:
    """A neuron whose tokens average to one concept's CLIP column (image embeddings . concept embedding) gets
    that concept as its label; its class token alone is noise, so CLIP-Dissect's token-0 pooling would not."""
    from xai.dissect.labelling import dissect_model

    rng = np.random.default_rng(3)
    n, m, d, t = 600, 80, 512, 9  # CLIP ViT-B/16 is 512-d; in a few dimensions random concepts overlap
    images = rng.normal(size=(n, d)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts = rng.normal(size=(m, d)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    planted = dict(enumerate(rng.choice(m, size=8, replace=False).tolist()))  # neuron -> concept
    tokens = rng.normal(size=(n, t, len(planted) + 4)).astype(np.float32)  # 4 neurons of noise
    for neuron, concept in planted.items():
        column = images @ texts[concept]
        rest = tokens[:, 1:, neuron]
        # tokens 1.. shifted so that the mean over all t tokens is the column, whatever token 0 holds
        rest += ((t * column - tokens[:, 0, neuron] - rest.sum(axis=1)) / (t - 1))[:, None]

    class TokenLayer(nn.Module):
        def forward(self, index: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(tokens)[index]

    model = nn.Sequential()
    model.add_module("block", TokenLayer())
    with hooked_layers(model, ["block"]) as store:
        for start in range(0, n, 64):
            model(torch.arange(start, min(start + 64, n)))
    pooled = torch.cat(store["block"]).numpy()
    np.testing.assert_allclose(pooled, tokens.mean(axis=1), rtol=1e-5, atol=1e-6)
    result = dissect_model(
        {"block": pooled},
        images,
        texts,
        [f"concept{i}" for i in range(m)],
        model_name="tokens",
        probe_ids=[str(i) for i in range(n)],
        null_seed=None,
    )
    assert result.labels("block")[: len(planted)] == [f"concept{planted[i]}" for i in range(len(planted))]


def test_each_target_gets_its_own_transform_from_one_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EfficientNet's bicubic crop and ResNet18's bilinear one, from each image decoded once; each equals a
    separate pass with that model's own transform."""
    from torchvision.models import EfficientNet_B0_Weights, ResNet18_Weights

    paths = []
    rng = np.random.default_rng(1)
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(paths[-1])
    transforms = {
        "a": ResNet18_Weights.IMAGENET1K_V1.transforms(),
        "b": EfficientNet_B0_Weights.IMAGENET1K_V1.transforms(),
        "c": ResNet18_Weights.IMAGENET1K_V1.transforms(),  # an equal, separate object: shares a's crop
    }
    crops, crop_of = _target_crops(dict.fromkeys(transforms, nn.Identity()), transforms)
    assert len(crops) == 2 and crop_of == {"a": 0, "b": 1, "c": 0}

    def net(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 7, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()

    targets = {name: net(seed) for seed, name in enumerate(transforms)}
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: (opened.append(path), real_open(path, *a, **k))[1])
    out = probe_pass(paths, batch_size=2, targets=targets, target_transform=transforms, layers=["0"], workers=0)
    assert sorted(map(str, opened)) == sorted(map(str, paths))
    monkeypatch.setattr(Image, "open", real_open)
    for name, model in targets.items():
        expected = layer_activations(model, image_batches(paths, transforms[name], 2), ["0"])
        np.testing.assert_array_equal(out.activations[name]["0"], expected["0"])
    assert not np.array_equal(out.activations["a"]["0"], out.activations["c"]["0"])  # different weights


def test_two_models_with_different_layers_are_compared_by_position() -> None:
    from xai.dissect.analysis import compare_models
    from xai.dissect.result import DissectionResult, label_layer

    concepts = ("dog", "cat", "sky", "road")

    def result(name: str, layers: dict[str, list[int]]) -> DissectionResult:
        dissected = []
        for layer, labels in layers.items():
            scores = np.zeros((len(labels), len(concepts)), np.float32)
            scores[np.arange(len(labels)), labels] = 1
            top = np.zeros((len(labels), 1), np.int64)
            dissected.append(label_layer(layer, scores, np.zeros((1, len(labels))), top))
        return DissectionResult(name, "soft_wpmi", {}, concepts, ("p0",), tuple(dissected))

    a = result("resnet18_imagenet", {"layer2": [0], "layer3": [0, 1], "layer4": [2, 2], "fc": [0, 1, 2]})
    b = result("vit_b_16", {"encoder_layer_10": [1, 1], "encoder_layer_11": [2, 3], "heads": [0, 3]})
    comparison = compare_models(a, b)
    assert comparison.paired_by == "position"
    assert [o.pair for o in comparison.layers] == [
        "layer3 ↔ encoder_layer_10",
        "layer4 ↔ encoder_layer_11",
        "fc ↔ heads",
        "all",
    ]
    assert comparison.layers[1].shared == ("sky",) and comparison.layers[2].only_b == ("road",)
    assert compare_models(a, a).paired_by == "name"
    # MobileNet and EfficientNet share the name features.3 but not the role of their other stages: by position
    mobilenet = result("mobilenet_v3_small", {"features.3": [0], "features.8": [1], "classifier": [2]})
    efficientnet = result("efficientnet_b0", {"features.3": [0], "features.5": [1], "classifier": [3]})
    assert [o.pair for o in compare_models(mobilenet, efficientnet).layers[:3]] == [
        "features.3",
        "features.8 ↔ features.5",
        "classifier",
    ]
    from xai.dissect.analysis import ModelComparison

    assert serial.from_parts(ModelComparison, *serial.to_parts(comparison)) == comparison


@pytest.mark.slow
def test_dissection_of_a_resnet_a_mobilenet_and_a_vit(tmp_path: Path, mirror: Path) -> None:
    """The whole stage and its pages: three architectures, layers auto, seeded random weights."""
    from xai.cli import main

    config = {
        "name": "any-model",
        "weights": "random",
        "stages": ["dissect"],
        "output_dir": str(tmp_path / "docs"),
        "cache_dir": str(tmp_path / "cache"),
        "dissect": {
            "models": ["resnet18_imagenet", "mobilenet_v3_small", "vit_b_16"],
            "layers": "auto",
            "probe": "imagenet-samples",
            "probe_limit": 20,
            "concepts": "broden_labels",
            "batch_size": 10,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path), "--quiet"]) == 0
    docs = tmp_path / "docs" / "dissection"
    index = (docs / "index.md").read_text()
    vit_layers = [f"encoder.layers.encoder_layer_{i}" for i in (9, 10, 11)]
    expected = {
        "resnet18_imagenet": ["layer2", "layer3", "layer4", "fc"],
        "mobilenet_v3_small": ["features.3", "features.8", "features.12", "classifier"],
        "vit_b_16": [*vit_layers, "heads"],
    }
    for model, layers in expected.items():
        for layer in layers:
            assert (docs / f"{model}-{layer}.md").is_file(), (model, layer)
    rows = {line.split("|")[1].strip(): line for line in index.splitlines() if line.startswith("| ") and "| `" in line}
    assert "`vit_b_16`" in rows["vit_b_16"] and "IMAGENET1K_V1" in rows["vit_b_16"]
    assert "`encoder.layers.encoder_layer_11` (mean over all tokens)" in rows["vit_b_16"]
    assert "`heads` (not needed (one value per neuron))" in rows["vit_b_16"] and "| `heads` |" in rows["vit_b_16"]
    assert "`features.12` (mean over the spatial map)" in rows["mobilenet_v3_small"]
    assert "CLIP-Dissect takes a ViT layer's class token instead" in index
    # the fc self-check for the paper's model only; the others say why not
    assert "Do the labels find the known answer?" in index
    assert "| mobilenet_v3_small | not one of the paper&#39;s models" in index
    assert "## ResNet18 (ImageNet) vs mobilenet_v3_small" in index and "compared by position" in index
    assert "layer4 ↔ features.12" in index and "fc ↔ classifier" in index
    for page in docs.glob("vit_b_16-*.md"):
        body = page.read_text().split("Every neuron of", 1)[1]  # below the site-wide random-weights banner
        assert "ResNet" not in body and "`vit_b_16`, weights IMAGENET1K_V1" in body
    assert "pooled per neuron: mean over all tokens" in (docs / f"vit_b_16-{vit_layers[-1]}.md").read_text()
    for page in docs.glob("*.md"):  # a table glued to the paragraph above renders as a paragraph of pipes
        lines = page.read_text().splitlines()
        glued = [n for n in range(1, len(lines)) if lines[n].startswith("| ") and lines[n - 1].strip()[:1] not in "|"]
        assert not glued, (page.name, glued)
    # every model's strips are its own (two models with a layer of the same name must not overwrite each other)
    strips = tmp_path / "docs" / "assets" / "dissection" / "strips"
    assert {folder.name for folder in strips.iterdir()} == set(expected)


def test_dissected_models_say_what_was_dissected(tmp_path: Path) -> None:
    """The report's row per model: architecture, weights (member, published file or checkpoint with its sha256),
    the weights member and its probe preprocessing, the resolved layers and whether the paper's self-check applies."""
    import hashlib

    from xai.config import validate
    from xai.plan import make_plan

    def facts(*models: object, layers: object = PRESET_LAYERS) -> list:
        config = validate(
            {"weights": "random", "stages": ["dissect"], "dissect": {"models": list(models), "layers": layers}},
            base=tmp_path,
        )
        return [entry.facts for entry in make_plan(config).dissect.models]

    checkpoint = tmp_path / "birds.pt"
    checkpoint.write_bytes(b"not read in random mode")
    places, mine, bare = facts("resnet18_places365", {"name": "resnet18", "checkpoint": "birds.pt"}, "resnet50")
    assert places.weights_description == "resnet18_places365.pth.tar" and places.preset and not places.no_self_check
    assert places.preprocessing == "resize 256, crop 224, bilinear" and places.weights_member == "IMAGENET1K_V1"
    digest = hashlib.sha256(b"not read in random mode").hexdigest()
    assert mine.model_id == "resnet18_birds" and mine.weights_description.startswith(f"birds.pt (sha256 {digest})")
    assert not mine.preset and "not one of the paper's models" in mine.no_self_check
    assert mine.layers.final_layer == "fc"  # a ResNet18 of the user's own: same layers, no paper row
    # a bare name is its DEFAULT member, which for resnet50 is V2 with its own resize: the row says so
    assert (bare.weights_member, bare.preprocessing) == ("IMAGENET1K_V2", "resize 232, crop 224, bilinear")
    assert "final layer fc is not among" in facts("resnet18_imagenet", layers=("layer4",))[0].no_self_check
