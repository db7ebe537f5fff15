"""Model zoo: the three torchvision ResNets and CLIP, with real (checksummed) weights or seeded random ones.

Real weights are looked for, in order, in the configured weights directory, the torch hub cache
(``$TORCH_HOME/hub/checkpoints``) and finally downloaded. Offline with nothing on disk, :func:`check_weights`
names every missing file with its URL and where to put it, before any heavy work starts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

WeightsMode = Literal["pretrained", "random"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither on disk nor downloadable; the message says what to fetch and where."""


@dataclass(frozen=True)
class WeightFile:
    """One pretrained checkpoint: where it comes from and how it is verified."""

    model: str
    filename: str
    url: str
    known_hash: str
    """``sha256:<hex>``, ``md5:<hex>`` or ``sha256-prefix:<hex>`` (torchvision's name-embedded prefix)."""


WEIGHT_FILES: dict[str, WeightFile] = {
    "resnet50": WeightFile(
        "resnet50", "resnet50-11ad3fa6.pth", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        "sha256-prefix:11ad3fa6",
    ),
    "resnet18_imagenet": WeightFile(
        "resnet18_imagenet", "resnet18-f37072fd.pth", "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        "sha256-prefix:f37072fd",
    ),
    "resnet18_places365": WeightFile(
        "resnet18_places365", "resnet18_places365.pth.tar",
        "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar",
        "md5:7a8808eefd4ea7458650ca84855f69b1",
    ),
    "clip": WeightFile(
        "clip", "open_clip_pytorch_model.bin",
        "https://huggingface.co/timm/vit_base_patch16_clip_224.openai/resolve/main/open_clip_pytorch_model.bin",
        "",  # open_clip verifies its own download; a user-supplied file is accepted as given
    ),
}


@dataclass
class LoadedModel:
    """A classifier ready for inference, with what the report needs to say about it."""

    name: str
    module: nn.Module
    weights: WeightsMode
    weights_id: str
    """File name and checksum for pretrained weights, ``random(seed=N)`` otherwise."""
    categories: list[str]


def to_input(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 or float RGB in 0..255 -> float32 (N, 3, H, W), normalised with ImageNet mean/std."""
    batch = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch - mean) / std


def _file_matches(path: Path, known_hash: str) -> bool:
    if not known_hash:
        return True
    algorithm, _, expected = known_hash.partition(":")
    digest = hashlib.md5() if algorithm == "md5" else hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    return actual.startswith(expected) if algorithm == "sha256-prefix" else actual == expected


def candidate_paths(weight: WeightFile, weights_dir: Path | None) -> list[Path]:
    """Where a checkpoint may already lie: the configured weights directory, then the torch hub cache."""
    places = [weights_dir / weight.filename] if weights_dir else []
    places.append(Path(torch.hub.get_dir()) / "checkpoints" / weight.filename)
    return places


def find_weights(weight: WeightFile, weights_dir: Path | None) -> Path | None:
    """The first existing, checksum-valid copy of ``weight``; a corrupt copy is reported, never used."""
    for path in candidate_paths(weight, weights_dir):
        if path.is_file():
            if not _file_matches(path, weight.known_hash):
                raise WeightsUnavailableError(
                    f"{path}: checksum does not match {weight.known_hash}; delete it and download {weight.url}"
                )
            return path
    return None


def fetch_weights(weight: WeightFile, weights_dir: Path | None) -> Path:
    """A local verified checkpoint, downloading it into the torch hub cache with pooch if needed."""
    found = find_weights(weight, weights_dir)
    if found:
        return found
    import pooch

    pooch.get_logger().setLevel("WARNING")  # its "Downloading ..." line would precede our one-line error
    target = Path(torch.hub.get_dir()) / "checkpoints"
    known = None if weight.known_hash.startswith("sha256-prefix") or not weight.known_hash else weight.known_hash
    try:
        path = Path(pooch.retrieve(weight.url, known_hash=known, fname=weight.filename, path=target,
                                   progressbar=True))
    except Exception as error:  # network errors come in many types; all mean the same to the user
        raise WeightsUnavailableError(missing_message([weight], weights_dir)) from error
    if not _file_matches(path, weight.known_hash):
        path.unlink()
        raise WeightsUnavailableError(f"{weight.url}: downloaded file fails its checksum {weight.known_hash}")
    return path


def missing_message(missing: list[WeightFile], weights_dir: Path | None) -> str:
    """One readable message naming each missing checkpoint, its URL and where to put it."""
    where = weights_dir or Path(torch.hub.get_dir()) / "checkpoints"
    lines = [f"Pretrained weights are not available offline. Download and place them in {where}:"]
    lines += [f"  - {w.filename} ({w.model}): {w.url}" for w in missing]
    lines.append("Or run with --weights random (seeded random weights; every page is then marked as such).")
    return "\n".join(lines)


def check_weights(models: list[str], weights_dir: Path | None, *, allow_download: bool) -> None:
    """Fail early, with one message for all of them, if any needed checkpoint cannot be had."""
    missing = [WEIGHT_FILES[m] for m in models if not weights_present(m, weights_dir)]
    if missing and not allow_download:
        raise WeightsUnavailableError(missing_message(missing, weights_dir))


def weights_present(model: str, weights_dir: Path | None) -> bool:
    """Whether a verified local copy exists (a corrupt copy raises instead of counting as absent)."""
    if find_weights(WEIGHT_FILES[model], weights_dir) is not None:
        return True
    # open_clip keeps its own download in the Hugging Face hub cache.
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return model == "clip" and (hf_home / "hub" / "models--timm--vit_base_patch16_clip_224.openai").is_dir()


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def imagenet_categories() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def places365_categories(path: Path) -> list[str]:
    """Class names from ``categories_places365.txt`` (``/a/airfield 0`` -> ``airfield``), in output order."""
    names = []
    for line in path.read_text().splitlines():
        if line.strip():
            label = line.split()[0]
            names.append(label[3:].replace("/", " ").replace("_", " "))
    return names


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint)
    # The Places365 checkpoint was saved from DataParallel; every key carries a 'module.' prefix.
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_classifier(name: str, weights: WeightsMode, *, seed: int, weights_dir: Path | None,
                    categories: list[str]) -> LoadedModel:
    """Build ``resnet50``, ``resnet18_imagenet`` or ``resnet18_places365`` in eval mode."""
    from torchvision.models import resnet18, resnet50

    builder: Callable[..., nn.Module] = resnet50 if name == "resnet50" else resnet18
    _seeded(seed)
    module = builder(weights=None, num_classes=len(categories))
    if weights == "random":
        weights_id = f"random(seed={seed})"
    else:
        weight = WEIGHT_FILES[name]
        path = fetch_weights(weight, weights_dir)
        module.load_state_dict(_load_state(path), strict=True)
        weights_id = f"{weight.filename} ({weight.known_hash or 'unverified'})"
    return LoadedModel(name, module.eval(), weights, weights_id, categories)


@dataclass
class LoadedClip:
    """CLIP ViT-B/16 with its image preprocessing and tokenizer."""

    module: nn.Module
    preprocess: Callable
    tokenizer: Callable
    weights: WeightsMode
    weights_id: str


def load_clip(weights: WeightsMode, *, seed: int, weights_dir: Path | None) -> LoadedClip:
    """CLIP ViT-B/16 with OpenAI's weights (open_clip), or seeded random weights of the same architecture."""
    import open_clip

    _seeded(seed)
    if weights == "random":
        pretrained, weights_id = None, f"random(seed={seed})"
    else:
        local = find_weights(WEIGHT_FILES["clip"], weights_dir)
        pretrained = str(local) if local else "openai"
        weights_id = f"openai ({local.name if local else 'open_clip cache'})"
    try:
        module, _, preprocess = open_clip.create_model_and_transforms("ViT-B-16", pretrained=pretrained)
    except Exception as error:  # offline hub/URL failures surface as many exception types
        raise WeightsUnavailableError(missing_message([WEIGHT_FILES["clip"]], weights_dir)) from error
    return LoadedClip(module.eval(), preprocess, open_clip.get_tokenizer("ViT-B-16"), weights, weights_id)
