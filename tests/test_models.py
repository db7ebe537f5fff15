"""Model loading: seeded random weights, checksummed checkpoints, the offline message."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18

from xai import classifiers, models
from xai.classifiers import PRESETS, ClassifierSpec, build_classifier, weight_file
from xai.models import WeightFile, WeightsUnavailableError


def test_random_weights_are_seeded_and_labelled() -> None:
    preset = PRESETS["resnet18_imagenet"]
    first = build_classifier(preset, "random", seed=3, weights_dir=None)
    second = build_classifier(preset, "random", seed=3, weights_dir=None)
    other = build_classifier(preset, "random", seed=4, weights_dir=None)
    assert first.weights_id == "random(seed=3)" and not first.module.training
    assert torch.equal(first.module.fc.weight, second.module.fc.weight)
    assert not torch.equal(first.module.fc.weight, other.module.fc.weight)


def test_offline_message_names_every_missing_file(tmp_path: Path) -> None:
    message = models.missing_message(
        [models.WEIGHT_FILES[name] for name in ("resnet50", "resnet18_places365", "clip")], tmp_path
    )
    for name in ("resnet50", "resnet18_places365", "clip"):
        weight = models.WEIGHT_FILES[name]
        assert weight.filename in message and weight.url in message
    assert str(tmp_path) in message and "--weights random" in message


def _places_checkpoint(path: Path) -> str:
    """A DataParallel-style checkpoint like CSAIL's: {'state_dict': {'module.<key>': tensor}}."""
    torch.manual_seed(0)
    state = {f"module.{k}": v for k, v in resnet18(num_classes=365).state_dict().items()}
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": state}, path)
    return hashlib.md5(path.read_bytes()).hexdigest()


def _places_spec(weights_dir: Path, known_hash: str) -> ClassifierSpec:
    """The Places365 preset as the pipeline fills it (its category file), its checkpoint pinned to ``known_hash``."""
    classes = weights_dir / "categories_places365.txt"
    classes.write_text("".join(f"/a/class_{i} {i}\n" for i in range(365)))
    preset = PRESETS["resnet18_places365"]
    published = dataclasses.replace(preset.published, known_hash=known_hash)
    return dataclasses.replace(preset, published=published, classes=classes)


def test_places365_checkpoint_loads_safely(tmp_path: Path) -> None:
    digest = _places_checkpoint(tmp_path / "resnet18_places365.pth.tar")
    loaded = build_classifier(_places_spec(tmp_path, f"md5:{digest}"), "pretrained", seed=0, weights_dir=tmp_path)
    torch.manual_seed(0)
    reference = resnet18(num_classes=365)
    assert torch.equal(loaded.module.fc.weight, reference.fc.weight)
    assert loaded.module.fc.out_features == 365 and digest in loaded.weights_id
    assert loaded.categories[0] == "class 0" and len(loaded.categories) == 365


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    _places_checkpoint(tmp_path / "resnet18_places365.pth.tar")
    with pytest.raises(WeightsUnavailableError, match="checksum does not match"):
        build_classifier(_places_spec(tmp_path, "md5:" + "0" * 32), "pretrained", seed=0, weights_dir=tmp_path)


def test_offline_download_fails_with_the_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(name: str, member: object) -> WeightFile:
        return dataclasses.replace(weight_file(name, member), url="https://invalid.invalid/r18.pth")

    monkeypatch.setattr(classifiers, "weight_file", unreachable)
    with pytest.raises(WeightsUnavailableError, match="not available offline"):
        build_classifier(PRESETS["resnet18_imagenet"], "pretrained", seed=0, weights_dir=tmp_path)


def test_places365_category_names(mirror: Path) -> None:
    names = models.places365_categories(mirror / "places365" / "categories_places365.txt")
    assert len(names) == 365 and names[0] == "airfield" and "apartment building outdoor" in names


def test_to_input_normalises() -> None:
    import numpy as np

    batch = models.to_input(np.full((2, 4, 4, 3), 255, dtype=np.uint8))
    assert batch.shape == (2, 3, 4, 4)
    expected = (1 - models.IMAGENET_MEAN[0]) / models.IMAGENET_STD[0]
    assert torch.allclose(batch[:, 0], torch.full((2, 4, 4), expected))


def test_resolve_layer_reads_attribute_and_index_specs() -> None:
    from xai.architectures import resolve_layer

    model = resnet18()
    assert resolve_layer(model, "layer4[-1]") is model.layer4[1]
    assert resolve_layer(model, "layer4.0") is resolve_layer(model, "layer4[-2]") is model.layer4[0]
    assert resolve_layer(model, "layer3") is model.layer3
    for spec in ("layer9", "layer4[5]", "fc[0]"):
        with pytest.raises(ValueError, match="does not name a module"):
            resolve_layer(model, spec)
    assert not hasattr(models, "resolve_layer")  # one resolver: xai.architectures


@pytest.mark.parametrize(
    ("name", "spec", "channels"),
    [
        ("resnet50", "layer4[-1]", 2048),
        ("resnet50", "auto", 2048),
        ("resnet50", "layer3", 1024),
        ("resnet18", "layer4[-1]", 512),
        ("mobilenet_v3_small", "auto", 576),
        ("vit_b_16", "auto", 768),  # tokens: D channels once folded to a map
        ("swin_t", "auto", 768),
    ],
)
def test_layer_channels_are_inferred_without_weights(name: str, spec: str, channels: int) -> None:
    """The meta-device shape inference sees what the built network's layer outputs (after the target's reshape)
    on a real forward."""
    from xai.architectures import reshape_transform, resolve_layer
    from xai.classifiers import ClassifierSpec, build_classifier
    from xai.shapes import plan_target

    planned = plan_target(name, "DEFAULT", spec)
    assert planned.channels == channels
    model = build_classifier(ClassifierSpec(name), "random", seed=0, weights_dir=None).module
    shapes = []
    reshape = reshape_transform(planned.target.reshape) or (lambda out: out)
    handle = resolve_layer(model, planned.target.path).register_forward_hook(
        lambda m, i, out: shapes.append(reshape(out).shape)
    )
    with torch.inference_mode():
        model(torch.zeros(1, 3, 224, 224))
    handle.remove()
    assert shapes[0][1] == channels
