"""Any torchvision classifier: names, weights, the built architecture and user checkpoints, without real weights.

The published files cannot be downloaded here, so the architecture the random path builds is checked against
torchvision's own builders: a state dict in the published format is fed to ``get_model(name, weights=member)`` (its
``get_state_dict`` patched to return it, so the builder's strict load, key renaming and head dropping all run) and
written as the enum's file name for our pretrained path (the sha256-prefix check bypassed by blanking the known hash
in ``weight_file``, since the test's file cannot match torchvision's prefix).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models._api import WeightsEnum

from xai import classifiers
from xai.checkpoints import CheckpointError, read_classes
from xai.classifiers import (
    ClassifierSpec,
    ModelChoiceError,
    architecture,
    build_classifier,
    check_model_name,
    model_names,
    resolve_weights,
    weight_file,
)
from xai.models import WEIGHT_FILES, WeightsUnavailableError

SMALL = torch.Generator().manual_seed(1)


def _input(size: int = 224) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(7))


# --- names and weights ------------------------------------------------------------------------------------------


def test_model_names_are_the_classification_models() -> None:
    names = model_names()
    assert {"resnet50", "vit_b_16", "swin_t", "convnext_tiny", "efficientnet_b0"} <= set(names)
    assert not [name for name in names if "rcnn" in name or "deeplab" in name or "r3d" in name or "raft" in name]
    assert names == torchvision.models.list_models(module=torchvision.models)


def test_unknown_model_lists_close_matches_first_in_one_line() -> None:
    with pytest.raises(ModelChoiceError) as raised:
        check_model_name("resnet5")
    message = str(raised.value)
    assert isinstance(raised.value, ValueError) and "\n" not in message
    assert message.startswith("explain.model: unknown model 'resnet5'; close: resnet50")
    close = message.split("; close: ")[1].split(";")[0].split(", ")
    assert set(close) <= {name for name in model_names() if name.startswith("resnet")}
    assert "; all: alexnet, convnext_base," in message


def test_weights_resolve_default_and_reject_unknown_names() -> None:
    member = resolve_weights("resnet50", "DEFAULT")
    assert member.name == "IMAGENET1K_V2" and len(member.meta["categories"]) == 1000
    with pytest.raises(
        ModelChoiceError,
        match=r"^explain.model_weights: unknown weights for resnet50 'IMAGENET1K_V3'; "
        r"close: IMAGENET1K_V[12], IMAGENET1K_V[12]; all: DEFAULT, ",
    ):
        resolve_weights("resnet50", "IMAGENET1K_V3")
    with pytest.raises(ModelChoiceError, match=r"^explain\.model: unknown model 'resnet5'"):
        resolve_weights("resnet5")


def test_config_entries_become_specs(tmp_path: Path) -> None:
    from xai.config import ConfigError, validate

    def specs(*entries: object) -> tuple[ClassifierSpec, ...]:
        return validate({"dissect": {"models": list(entries)}}, base=tmp_path).dissect.specs()

    (tmp_path / "m.pt").write_bytes(b"weights")
    (tmp_path / "c.txt").write_text("a\nb\n")
    assert specs("resnet18_places365")[0] is classifiers.resnet18_places365
    assert specs("efficientnet_b0")[0] == ClassifierSpec("efficientnet_b0")
    entry = {"name": "resnet18", "checkpoint": "m.pt", "classes": "c.txt"}
    assert specs(entry)[0] == ClassifierSpec(
        "resnet18", "DEFAULT", tmp_path / "m.pt", tmp_path / "c.txt", model_id="resnet18_m"
    )
    with pytest.raises(
        ConfigError,
        match=r"dissect.models: unknown model 'resnet18_place'; close: resnet18_places365, resnet18, resnet18_imagenet",
    ):
        specs("resnet18_place")
    with pytest.raises(ConfigError, match=r"dissect.models: entry 0: name: unknown model 'resnt18'; close: resnet18"):
        specs({"name": "resnt18"})
    with pytest.raises(ConfigError, match=r"unknown weights for resnet18 'V2'"):
        specs({"name": "resnet18", "weights": "V2"})
    with pytest.raises(ConfigError, match="ckpt"):
        specs({"name": "resnet18", "ckpt": "m.pt"})


def test_weight_file_of_default_config_is_the_existing_resnet50_file() -> None:
    ours = weight_file("resnet50", resolve_weights("resnet50"))
    old = WEIGHT_FILES["resnet50"]
    assert (ours.filename, ours.url, ours.known_hash) == (old.filename, old.url, old.known_hash)
    swin = weight_file("swin_t", resolve_weights("swin_t"))
    assert swin.known_hash == "sha256-prefix:" + re.search(r"-([0-9a-f]+)\.pth$", swin.url).group(1)


def test_offline_message_names_the_enum_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    def offline(*_args, **_kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    member = resolve_weights("convnext_tiny")
    with pytest.raises(WeightsUnavailableError) as raised:
        build_classifier(ClassifierSpec("convnext_tiny"), "pretrained", seed=0, weights_dir=tmp_path)
    assert member.url in str(raised.value) and str(tmp_path) in str(raised.value)


def test_default_config_random_resnet50_is_torchvisions_resnet50_and_seeded() -> None:
    """The assignment's default (resnet50, random in tests) is torchvision's resnet50, parameter for parameter, and
    its weights follow the seed."""
    ours = build_classifier(ClassifierSpec("resnet50"), "random", seed=3, weights_dir=None)
    assert ours.weights_id == "random(seed=3)" and ours.weights_member == "IMAGENET1K_V2"
    reference = torchvision.models.resnet50(weights=None)
    shapes = [(key, tuple(value.shape)) for key, value in ours.module.state_dict().items()]
    assert shapes == [(key, tuple(value.shape)) for key, value in reference.state_dict().items()]
    same = build_classifier(ClassifierSpec("resnet50"), "random", seed=3, weights_dir=None).module.state_dict()
    other = build_classifier(ClassifierSpec("resnet50"), "random", seed=4, weights_dir=None).module.state_dict()
    for key, value in ours.module.state_dict().items():
        assert torch.equal(value, same[key]), key
    assert not torch.equal(ours.module.conv1.weight, other["conv1.weight"])
    assert not torch.equal(ours.module.fc.weight, other["fc.weight"])


def test_random_vit_head_is_redrawn_so_gradients_are_not_zero() -> None:
    """torchvision zero-initialises ViT's head: every logit would be equal and every gradient zero."""
    loaded = build_classifier(ClassifierSpec("vit_b_32"), "random", seed=0, weights_dir=None)
    assert "heads.head re-drawn" in loaded.load_note and loaded.module.heads.head.weight.abs().sum() > 0
    with torch.no_grad():
        logits = loaded.module(_input())
    assert logits.std() > 0
    assert build_classifier(ClassifierSpec("resnet18"), "random", seed=0, weights_dir=None).load_note == ""


# --- random architecture == the one the published weights load into ----------------------------------------------


def _published_state(name: str, member) -> dict[str, torch.Tensor]:
    """A state dict with the published file's keys (densenet's old ``norm.1`` names, googlenet's aux heads) and
    ``_metadata`` (module versions), as torch.load returns it."""
    torch.manual_seed(11)
    state = architecture(name, member).state_dict()
    if name.startswith("densenet"):
        # torchvision's densenet files predate torch 0.4: old key names, no num_batches_tracked, no _metadata
        state = {
            re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key): value
            for key, value in state.items()
            if not key.endswith("num_batches_tracked")
        }
        assert any(".norm.1." in key for key in state)
    return state


ARCHITECTURES = [
    ("resnet18", "DEFAULT"),
    ("mobilenet_v3_small", "DEFAULT"),
    ("efficientnet_b0", "DEFAULT"),
    ("squeezenet1_1", "DEFAULT"),
    ("shufflenet_v2_x0_5", "DEFAULT"),
    ("mnasnet0_5", "DEFAULT"),
    ("regnet_y_400mf", "DEFAULT"),
    ("densenet121", "DEFAULT"),
    ("googlenet", "DEFAULT"),
    pytest.param("inception_v3", "DEFAULT", marks=pytest.mark.slow),
    pytest.param("convnext_tiny", "DEFAULT", marks=pytest.mark.slow),
    pytest.param("swin_t", "DEFAULT", marks=pytest.mark.slow),
    pytest.param("maxvit_t", "DEFAULT", marks=pytest.mark.slow),
    pytest.param("vit_b_16", "IMAGENET1K_SWAG_LINEAR_V1", marks=pytest.mark.slow),
    pytest.param("vit_b_16", "IMAGENET1K_SWAG_E2E_V1", marks=pytest.mark.slow),  # 384 px: image_size from meta
]


@pytest.mark.parametrize(("name", "weights"), ARCHITECTURES)
def test_random_architecture_is_the_pretrained_one(
    name: str, weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = resolve_weights(name, weights)
    published = _published_state(name, member)
    torch.save(published, tmp_path / weight_file(name, member).filename)

    # torchvision's builder, given the published-format state dict instead of downloading it
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *a, **k: copy.copy(published))  # keeps _metadata
    reference = torchvision.models.get_model(name, weights=member).eval()
    monkeypatch.undo()

    # our pretrained path reading the same file (hash check bypassed: the test's file cannot match the prefix)
    monkeypatch.setattr(classifiers, "weight_file", lambda *a: dataclasses.replace(weight_file(*a), known_hash=""))
    spec = ClassifierSpec(name, weights)
    loaded = build_classifier(spec, "pretrained", seed=0, weights_dir=tmp_path)
    random = build_classifier(spec, "random", seed=0, weights_dir=None)

    def layout(module: torch.nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
        tensors = [(key, "tensor", tuple(value.shape)) for key, value in module.state_dict().items()]
        return tensors + [(key, type(sub).__name__, ()) for key, sub in module.named_modules()]

    assert layout(random.module) == layout(reference) == layout(loaded.module)
    for attribute in ("transform_input", "aux_logits", "image_size"):
        assert getattr(random.module, attribute, None) == getattr(reference, attribute, None), attribute
    size = member.meta["min_size"][0] if name.startswith("vit") else 224
    batch = _input(max(size, 224))
    with torch.no_grad():
        assert torch.equal(loaded.module(batch), reference(batch))  # same weights, same forward (transform_input...)
    assert loaded.weights_id == f"{weight_file(name, member).filename} (unverified)"
    assert loaded.categories == list(member.meta["categories"]) and random.weights_id == "random(seed=0)"


# --- user checkpoints and class files -----------------------------------------------------------------------------


def _classes(path: Path, count: int) -> Path:
    path.write_text("".join(f"class {index}\n" for index in range(count)))
    return path


def _resnet18_checkpoint(path: Path, classes: int, *, wrap: bool = False) -> dict[str, torch.Tensor]:
    torch.manual_seed(5)
    state = torchvision.models.resnet18(num_classes=classes).state_dict()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}} if wrap else state, path)
    return state


@pytest.mark.parametrize("wrap", [False, True], ids=["state_dict", "dataparallel_wrapped"])
def test_fine_tuned_resnet18_with_12_classes_loads(tmp_path: Path, wrap: bool) -> None:
    state = _resnet18_checkpoint(tmp_path / "model.pt", 12, wrap=wrap)
    spec = ClassifierSpec("resnet18", checkpoint=tmp_path / "model.pt", classes=_classes(tmp_path / "c.txt", 12))
    loaded = build_classifier(spec, "pretrained", seed=0, weights_dir=None)
    with torch.no_grad():
        assert loaded.module(_input()).shape == (1, 12)
    assert loaded.categories == [f"class {index}" for index in range(12)]
    assert torch.equal(loaded.module.state_dict()["fc.weight"], state["fc.weight"])
    import hashlib

    assert loaded.weights_id == f"model.pt (sha256:{hashlib.sha256((tmp_path / 'model.pt').read_bytes()).hexdigest()})"
    # random mode never reads the checkpoint but keeps the output size
    random = build_classifier(spec, "random", seed=0, weights_dir=None)
    assert random.weights_id == "random(seed=0)" and random.module.fc.out_features == 12


def test_wrong_shape_checkpoint_names_the_tensor_and_both_shapes(tmp_path: Path) -> None:
    _resnet18_checkpoint(tmp_path / "model.pt", 12)
    spec = ClassifierSpec("resnet18", checkpoint=tmp_path / "model.pt", classes=_classes(tmp_path / "c.txt", 10))
    with pytest.raises(CheckpointError) as raised:
        build_classifier(spec, "pretrained", seed=0, weights_dir=None)
    assert str(raised.value) == (
        f"{tmp_path / 'model.pt'}: tensor 'fc.weight' has shape (12, 512) in the checkpoint "
        "but (10, 512) in resnet18 with 10 classes; check the model name and the class file"
    )


def test_missing_and_unexpected_keys_are_listed_in_one_line(tmp_path: Path) -> None:
    state = _resnet18_checkpoint(tmp_path / "model.pt", 12)
    del state["fc.bias"]
    state["head.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "model.pt")
    spec = ClassifierSpec("resnet18", checkpoint=tmp_path / "model.pt", classes=_classes(tmp_path / "c.txt", 12))
    with pytest.raises(CheckpointError) as raised:
        build_classifier(spec, "pretrained", seed=0, weights_dir=None)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'model.pt'}: does not fit resnet18 with 12 classes")
    assert "missing keys: 1 (fc.bias)" in message and "unexpected keys: 1 (head.weight)" in message


def test_other_architecture_checkpoint_lists_first_keys_and_counts(tmp_path: Path) -> None:
    torch.save(torchvision.models.squeezenet1_1(num_classes=3).state_dict(), tmp_path / "other.pt")
    spec = ClassifierSpec("resnet18", checkpoint=tmp_path / "other.pt", classes=_classes(tmp_path / "c.txt", 3))
    with pytest.raises(
        CheckpointError,
        match=r"missing keys: 122 \(conv1.weight, bn1.weight, bn1.bias, "
        r"bn1.running_mean, bn1.running_var, \.\.\.\); unexpected keys: 52 ",
    ):
        build_classifier(spec, "pretrained", seed=0, weights_dir=None)


def test_checkpoint_that_is_not_a_state_dict(tmp_path: Path) -> None:
    torch.save({"model": torchvision.models.resnet18(num_classes=2)}, tmp_path / "whole.pt")
    spec = ClassifierSpec("resnet18", checkpoint=tmp_path / "whole.pt", classes=_classes(tmp_path / "c.txt", 2))
    with pytest.raises(CheckpointError) as raised:
        build_classifier(spec, "pretrained", seed=0, weights_dir=None)
    assert str(raised.value) == (
        f"{tmp_path / 'whole.pt'}: holds Python objects, not only tensors (torch's "
        "weights_only loader refuses torchvision.models.resnet.ResNet); save "
        "torch.save(model.state_dict(), path) instead"
    )
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text\.pt: not a readable state dict \(.+\); save it with "):
        build_classifier(
            dataclasses.replace(spec, checkpoint=tmp_path / "text.pt"), "pretrained", seed=0, weights_dir=None
        )
    missing = dataclasses.replace(spec, checkpoint=tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match=r"absent\.pt: checkpoint not found"):
        build_classifier(missing, "pretrained", seed=0, weights_dir=None)


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("", "the class file is empty; write one class name per line"),
        ("\n\n", "the class file is empty"),
        ("cat\n\ndog\n", "line 2 is blank; write one class name per line with no blank lines in between"),
        ("cat\ndog\ncat\n", "class 'cat' appears on lines 1 and 3; give each class one line with a distinct name"),
    ],
)
def test_bad_class_files_give_one_line_naming_the_file(tmp_path: Path, text: str, fault: str) -> None:
    path = tmp_path / "classes.txt"
    path.write_text(text)
    with pytest.raises(CheckpointError) as raised:
        read_classes(path)
    assert str(raised.value).startswith(f"{path}: {fault}") and "\n" not in str(raised.value)


def test_class_file_names_in_order(tmp_path: Path) -> None:
    path = tmp_path / "classes.txt"
    path.write_text("golden retriever\r\n tabby cat \nsports car\n\n")
    assert read_classes(path) == ["golden retriever", "tabby cat", "sports car"]


def test_places365_preset_reads_the_published_dataparallel_format(tmp_path: Path) -> None:
    """The CSAIL file: {'epoch', 'arch', 'state_dict': {'module.<key>'}, 'best_prec1'}, 365 outputs."""
    torch.manual_seed(2)
    state = torchvision.models.resnet18(num_classes=365).state_dict()
    weight = dataclasses.replace(WEIGHT_FILES["resnet18_places365"], known_hash="")  # the md5 cannot match
    torch.save(
        {
            "epoch": 90,
            "arch": "resnet18",
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "best_prec1": 54.7,
        },
        tmp_path / weight.filename,
    )
    categories = tmp_path / "categories_places365.txt"
    categories.write_text("".join(f"/a/place_{index} {index}\n" for index in range(365)))
    spec = dataclasses.replace(classifiers.resnet18_places365, published=weight, classes=categories)
    loaded = build_classifier(spec, "pretrained", seed=0, weights_dir=tmp_path)
    assert loaded.name == "resnet18_places365" and loaded.categories[:2] == ["place 0", "place 1"]
    assert len(loaded.categories) == 365 and torch.equal(loaded.module.fc.weight, state["fc.weight"])
    assert loaded.weights_id == "resnet18_places365.pth.tar (unverified)"
    imagenet = classifiers.resnet18_imagenet
    assert (
        weight_file(imagenet.architecture, resolve_weights(imagenet.architecture, imagenet.weights_member)).filename
        == WEIGHT_FILES["resnet18_imagenet"].filename
    )


def test_fine_tuned_googlenet_checkpoint_without_aux_heads_loads(tmp_path: Path) -> None:
    """googlenet(weights=...) drops its auxiliary heads after loading, so a fine-tuned model's state has none."""
    torch.manual_seed(4)
    tuned = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False, num_classes=4)
    torch.save(tuned.state_dict(), tmp_path / "g.pt")
    spec = ClassifierSpec("googlenet", checkpoint=tmp_path / "g.pt", classes=_classes(tmp_path / "c.txt", 4))
    loaded = build_classifier(spec, "pretrained", seed=0, weights_dir=None)
    assert loaded.module.aux1 is None and loaded.module.transform_input  # as the published model is fine-tuned
    with torch.no_grad():
        assert loaded.module(_input()).shape == (1, 4)
