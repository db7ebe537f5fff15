"""Weight files and CLIP: the checksummed checkpoints the pipeline may fetch (:data:`WEIGHT_FILES`), how they are
found, downloaded and read (the Places365 legacy pickle included), ImageNet normalisation, and CLIP ViT-B/16 with
real or seeded random weights. Classifiers are built by :func:`xai.classifiers.build_classifier` on top of this.

Real weights are looked for, in order, in the configured weights directory, the torch hub cache
(``$TORCH_HOME/hub/checkpoints``) and finally downloaded. Offline with nothing on disk, the load fails with
:func:`missing_message`: the missing file, its URL and where to put it.

CLIP's weights are OpenAI's own ``ViT-B-16.pt``, pinned by the sha256 in its URL (:func:`clip_file` says which
file a run uses; open_clip's unpinned ``.bin`` only with ``clip_unverified: true``).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from xai.errors import UserError

WeightsMode = Literal["pretrained", "random"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailableError(UserError):
    """Pretrained weights are missing, fail their checksum or cannot be trusted; the message says what to fetch and
    where."""


@dataclass(frozen=True)
class WeightFile:
    """One pretrained checkpoint: where it comes from and how it is verified."""

    model: str
    filename: str
    url: str
    known_hash: str
    """``sha256:<hex>``, ``md5:<hex>`` or ``sha256-prefix:<hex>`` (torchvision's name-embedded prefix)."""


OPENAI_CLIP_SHA256 = "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"
"""sha256 of OpenAI's ``ViT-B-16.pt``: the path component of its URL in OpenAI's ``clip`` package."""

WEIGHT_FILES: dict[str, WeightFile] = {
    "resnet50": WeightFile(
        "resnet50",
        "resnet50-11ad3fa6.pth",
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        "sha256-prefix:11ad3fa6",
    ),
    "resnet18_imagenet": WeightFile(
        "resnet18_imagenet",
        "resnet18-f37072fd.pth",
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        "sha256-prefix:f37072fd",
    ),
    "resnet18_places365": WeightFile(
        "resnet18_places365",
        "resnet18_places365.pth.tar",
        "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar",
        "md5:7a8808eefd4ea7458650ca84855f69b1",
    ),
    # OpenAI's own file, as OpenAI's `clip` package names it (clip/clip.py, _MODELS["ViT-B/16"]; open_clip's
    # pretrained.py gives the same URL for ViT-B-16 'openai'). The path component before the file name is its sha256,
    # which clip._download checks: that is the pin.
    "clip": WeightFile(
        "clip",
        "ViT-B-16.pt",
        f"https://openaipublic.azureedge.net/clip/models/{OPENAI_CLIP_SHA256}/ViT-B-16.pt",
        f"sha256:{OPENAI_CLIP_SHA256}",
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
    load_note: str = ""
    """How the checkpoint was read when it was not the plain ``weights_only=True`` load (for the run record)."""


def to_input(
    images: np.ndarray | torch.Tensor, *, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> torch.Tensor:
    """(N, H, W, 3) uint8 or float RGB in 0..255 -> float32 (N, 3, H, W), normalised with ``mean``/``std``
    (ImageNet's unless a weights member's transform says otherwise: :class:`xai.classifiers.Preprocessing`).
    A tensor is normalised on its own device (LIME builds its samples on the GPU), with the same operations."""
    if isinstance(images, torch.Tensor):
        batch = images.to(torch.float32).permute(0, 3, 1, 2) / 255.0
    else:
        batch = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    centre, scale = (torch.tensor(values, device=batch.device).view(1, 3, 1, 1) for values in (mean, std))
    return (batch - centre) / scale


def _file_matches(path: Path, known_hash: str) -> bool:
    if not known_hash:
        return True
    algorithm, _, expected = known_hash.partition(":")
    if algorithm == "md5":
        digest = hashlib.md5()
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest() == expected
    actual = file_sha256(path)  # remembered: the CLIP file is checked when found and again right before it is read
    return actual.startswith(expected) if algorithm == "sha256-prefix" else actual == expected


def full_checksum(known_hash: str) -> bool:
    """Whether ``known_hash`` pins the whole file (``md5:`` or ``sha256:``). torchvision's 8-hex ``sha256-prefix``
    does not: a crafted file matching 32 bits is cheap to make, so it cannot vouch for an unrestricted unpickle."""
    algorithm, _, expected = known_hash.partition(":")
    return (algorithm, len(expected)) in {("md5", 32), ("sha256", 64)}


_SHA256_BY_FILE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a large checkpoint is read once per process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256_BY_FILE:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        _SHA256_BY_FILE[key] = digest.hexdigest()
    return _SHA256_BY_FILE[key]


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
        path = Path(pooch.retrieve(weight.url, known_hash=known, fname=weight.filename, path=target, progressbar=True))
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


def weights_present(model: str | WeightFile, weights_dir: Path | None) -> bool:
    """Whether a verified local copy exists (a corrupt copy raises instead of counting as absent); ``model`` is a
    :data:`WEIGHT_FILES` key or the file itself. For CLIP, which may also run on open_clip's unpinned file, ask
    :func:`clip_weights_present`."""
    weight = WEIGHT_FILES[model] if isinstance(model, str) else model
    return find_weights(weight, weights_dir) is not None


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def places365_categories(path: Path) -> list[str]:
    """Class names from ``categories_places365.txt`` (``/a/airfield 0`` -> ``airfield``), in output order."""
    names = []
    for line in path.read_text().splitlines():
        if line.strip():
            label = line.split()[0]
            names.append(label[3:].replace("/", " ").replace("_", " "))
    return names


def _load_state(path: Path, *, verified: bool) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict of a checkpoint, read with ``weights_only=True``; returns (state, note).

    The Places365 checkpoint was written by PyTorch 0.2 under Python 2.7 as a legacy (non-zip) pickle:
    ``{'epoch', 'arch', 'state_dict': {'module.<key>': tensor}, 'best_prec1'}``. torch's restricted unpickler
    reads that format, but it refuses any global off its allow-list (a numpy scalar, say) with a
    ``pickle.UnpicklingError`` whose advice is to edit the calling code. Only then, and only when ``verified``
    (the file's published checksum matched, so it is byte-identical to the published file), it is read again
    without the restriction; the note says so in the run record.
    """
    note = ""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not verified:
            raise WeightsUnavailableError(
                f"{path}: holds objects torch's safe loader refuses and has no published full checksum to trust "
                f"it by ({str(error).splitlines()[0][:160]}); download the published file again from its URL"
            ) from None
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        note = (
            f"{path.name}: read with weights_only=False after the safe loader refused it "
            f"({str(error).splitlines()[0][:160]}); its checksum matched the published one"
        )
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    # The Places365 checkpoint was saved from DataParallel; every key carries a 'module.' prefix.
    return {key.removeprefix("module."): value for key, value in state.items()}, note
