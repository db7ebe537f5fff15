"""File formats of the dissection's inputs, on planted stand-ins: the Broden probe set is the JPEGs its index
lists (never the segmentation PNGs beside them), and the Places365 checkpoint's legacy pickle (PyTorch 0.2, Python
2.7) loads, while a checkpoint without a published checksum is never loaded without ``weights_only``."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import resnet18

from xai import classifiers, models
from xai.classifiers import PRESETS, ClassifierSpec, LoadedClassifier, build_classifier, weight_file
from xai.dissect import probes
from xai.models import WeightsUnavailableError


def _mock_broden(root: Path) -> list[str]:
    """A broden1_224 tree as the zip extracts it: JPEGs plus colour/object/part masks, index.csv, c_scene.csv."""
    images = []
    for source, stems in {
        "ade20k": ["ADE_train_00000001", "ADE_train_00000002"],
        "dtd": ["banded_0002"],
        "opensurfaces": ["100963"],
        "pascal": ["2008_000002"],
    }.items():
        folder = root / "images" / source
        folder.mkdir(parents=True)
        for stem in stems:
            Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / f"{stem}.jpg")
            for mask in ("color", "object", "part_1", "material"):
                Image.new("RGB", (8, 8)).save(folder / f"{stem}_{mask}.png")
            images.append(f"{source}/{stem}.jpg")
    rows = ["image,split,ih,iw,sh,sw,color,object,part,material,scene,texture"]
    rows += [f"{name},train,224,224,112,112,{name[:-4]}_color.png,,,,," for name in images]
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    (root / "c_scene.csv").write_text("number,name,frequency,coverage\n1,airfield-s,10,1\n")
    return images


def test_broden_probe_is_the_index_jpegs_only(tmp_path: Path) -> None:
    names = _mock_broden(tmp_path / "broden1_224")
    paths = probes.broden_paths(tmp_path, expected=len(names))  # images/ exists: no download is attempted
    root = tmp_path / "broden1_224" / "images"
    assert [p.relative_to(root).as_posix() for p in paths] == sorted(names)
    assert all(p.suffix == ".jpg" for p in paths)


def test_broden_with_a_missing_image_or_index_is_one_clear_line(tmp_path: Path) -> None:
    names = _mock_broden(tmp_path / "broden1_224")
    (tmp_path / "broden1_224" / "images" / names[1]).unlink()
    with pytest.raises(probes.ProbeSetError) as raised:
        probes.broden_paths(tmp_path, expected=len(names))
    message = str(raised.value)
    assert "\n" not in message
    assert f"expected {len(names)} probe images, found {len(names) - 1}" in message and names[1] in message
    with pytest.raises(probes.ProbeSetError, match="expected 63,305"):
        probes.broden_paths(tmp_path)  # the real count by default
    (tmp_path / "broden1_224" / "index.csv").unlink()
    with pytest.raises(probes.ProbeSetError, match=r"index\.csv is missing"):
        probes.broden_paths(tmp_path, expected=len(names))


# ---------------------------------------------------------------------------------------------------------------
# 3. Places365 checkpoint: PyTorch 0.2 / Python 2.7 legacy pickle


def _legacy_places_checkpoint(path: Path, *, numpy_scalar: bool) -> str:
    """As CSAIL wrote it: non-zip pickle, protocol 2, DataParallel 'module.' keys, no num_batches_tracked."""
    torch.manual_seed(0)
    state = {
        f"module.{k}": v
        for k, v in resnet18(num_classes=365).state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    checkpoint = {
        "epoch": 90,
        "arch": "resnet18",
        "state_dict": state,
        "best_prec1": np.float64(54.74) if numpy_scalar else 54.74,
    }
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False, pickle_protocol=2)
    return hashlib.md5(path.read_bytes()).hexdigest()


def _places_spec(weights_dir: Path, known_hash: str) -> ClassifierSpec:
    """The Places365 preset as ``RunContext.classifier`` fills it (``classes`` = a categories_places365.txt in
    CSAIL's ``/a/airfield 0`` format), its published checkpoint pinned to ``known_hash``."""
    classes = weights_dir / "categories_places365.txt"
    classes.write_text("".join(f"/a/class_{i} {i}\n" for i in range(365)))
    preset = PRESETS["resnet18_places365"]
    published = dataclasses.replace(preset.published, known_hash=known_hash)
    return dataclasses.replace(preset, published=published, classes=classes)


def _load_places(weights_dir: Path, known_hash: str) -> LoadedClassifier:
    return build_classifier(_places_spec(weights_dir, known_hash), "pretrained", seed=0, weights_dir=weights_dir)


@pytest.mark.parametrize("numpy_scalar", [False, True])
def test_legacy_places365_checkpoint_loads(tmp_path: Path, numpy_scalar: bool) -> None:
    path = tmp_path / "resnet18_places365.pth.tar"
    digest = _legacy_places_checkpoint(path, numpy_scalar=numpy_scalar)
    assert path.read_bytes()[:2] == b"\x80\x02"  # a bare protocol-2 pickle, not a zip archive
    if numpy_scalar:
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
    loaded = _load_places(tmp_path, f"md5:{digest}")
    torch.manual_seed(0)
    reference = resnet18(num_classes=365)
    assert torch.equal(loaded.module.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert torch.equal(loaded.module.fc.weight, reference.fc.weight)
    if numpy_scalar:
        assert "weights_only=False" in loaded.load_note and "checksum matched" in loaded.load_note
    else:
        assert loaded.load_note == ""


def test_unsafe_checkpoint_without_a_published_checksum_is_refused(tmp_path: Path) -> None:
    _legacy_places_checkpoint(tmp_path / "resnet18_places365.pth.tar", numpy_scalar=True)
    with pytest.raises(WeightsUnavailableError, match="no published full checksum"):
        _load_places(tmp_path, "")


def test_torchvision_prefix_hash_never_allows_an_unrestricted_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An 8-hex sha256 prefix (torchvision's file names) matches a crafted file easily: no fallback on it."""
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.manual_seed(0)
    torch.save({"state_dict": resnet18().state_dict(), "best_prec1": np.float64(1.0)}, path)
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    monkeypatch.setattr(
        classifiers,
        "weight_file",
        lambda *a: dataclasses.replace(weight_file(*a), known_hash=f"sha256-prefix:{prefix}"),
    )
    with pytest.raises(WeightsUnavailableError, match="no published full checksum") as raised:
        build_classifier(PRESETS["resnet18_imagenet"], "pretrained", seed=0, weights_dir=tmp_path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)
    assert models.full_checksum(f"md5:{'0' * 32}") and models.full_checksum(f"sha256:{'0' * 64}")
    assert not models.full_checksum("sha256-prefix:f37072fd") and not models.full_checksum("")
