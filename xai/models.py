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
import logging
import os
import pickle
import warnings
from collections.abc import Callable
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

UNVERIFIED_CLIP = WeightFile(
    "clip",
    "open_clip_pytorch_model.bin",
    "https://huggingface.co/timm/vit_base_patch16_clip_224.openai/resolve/main/open_clip_pytorch_model.bin",
    # No published checksum: a LAION or DFN ViT-B-16 has the same tensor shapes and loads into the same network,
    # so this file is used only with `clip_unverified: true`; its computed sha256 then keys the cache.
    "",
)
"""open_clip's re-save of OpenAI's ViT-B/16 on the Hugging Face hub (what open_clip's ``openai`` tag downloads)."""


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
    images: np.ndarray, *, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> torch.Tensor:
    """(N, H, W, 3) uint8 or float RGB in 0..255 -> float32 (N, 3, H, W), normalised with ``mean``/``std``
    (ImageNet's unless a weights member's transform says otherwise: :class:`xai.classifiers.Preprocessing`)."""
    batch = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    return (batch - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


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


CLIP_ARCH = "ViT-B-16-quickgelu"
"""open_clip config of OpenAI's CLIP ViT-B/16: the same network as ``ViT-B-16`` but with QuickGELU
(``x * sigmoid(1.702 x)``), the activation OpenAI trained with. ``ViT-B-16`` builds ``nn.GELU`` in both towers;
with OpenAI's weights that silently changes every embedding (open_clip >= 2.27 only warns for the ``openai``
tag, and never for a local file). Random mode builds this same config, so tests see the pretrained network."""


@dataclass
class LoadedClip:
    """CLIP ViT-B/16 with its image preprocessing and tokenizer."""

    module: nn.Module
    preprocess: Callable
    tokenizer: Callable
    weights: WeightsMode
    weights_id: str
    dtype: torch.dtype = torch.float32
    """fp16 on CUDA (as CLIP-Dissect runs OpenAI's CLIP), fp32 on the CPU."""


def clip_dtype(device: str | torch.device) -> torch.dtype:
    """CLIP-Dissect loads OpenAI's CLIP with ``clip.load``: fp16 weights on CUDA, fp32 on the CPU."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def _first_existing(weight: WeightFile, weights_dir: Path | None) -> Path | None:
    return next((path for path in candidate_paths(weight, weights_dir) if path.is_file()), None)


def _hub_cached_bin() -> Path | None:
    """open_clip's own download of the ``.bin`` (its ``openai`` tag) in the Hugging Face hub cache, if any."""
    hub = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    found = sorted(hub.glob(f"models--timm--vit_base_patch16_clip_224.openai/snapshots/*/{UNVERIFIED_CLIP.filename}"))
    return found[0] if found else None


def clip_file(weights_dir: Path | None, *, unverified: bool = False) -> Path | None:
    """The local CLIP weights file a pretrained run uses, chosen without reading it; None: OpenAI's pinned
    ``ViT-B-16.pt``, still to be downloaded.

    Order: the pinned file (weights directory, then torch hub cache); else, only with ``unverified``
    (``clip_unverified: true``), open_clip's ``.bin`` there or in the Hugging Face hub cache. A ``.bin`` placed in the
    weights directory or torch hub cache without the flag is refused rather than skipped: it was put there to be used.

    Raises:
        WeightsUnavailableError: one line naming the ``.bin``, why it is refused and the two fixes.
    """
    pinned = _first_existing(WEIGHT_FILES["clip"], weights_dir)
    if pinned is not None:
        return pinned
    placed = _first_existing(UNVERIFIED_CLIP, weights_dir)
    if placed is not None and not unverified:
        pin = WEIGHT_FILES["clip"]
        raise WeightsUnavailableError(
            f"{placed}: open_clip's CLIP file has no published checksum, and a LAION or DFN ViT-B-16 saved under this "
            f"name would load silently into OpenAI's network; put OpenAI's {pin.filename} (sha256-pinned) from "
            f"{pin.url} in {placed.parent}, or set clip_unverified: true in the config to use this file as it is"
        )
    return (placed or _hub_cached_bin()) if unverified else None


def _is_pinned(path: Path | None) -> bool:
    return path is None or path.name == WEIGHT_FILES["clip"].filename


def clip_weights_id(weights_dir: Path | None, *, unverified: bool = False) -> str:
    """What identifies the pretrained CLIP weights in cache keys and the run record: OpenAI's file by its pinned
    sha256 (present or still to be downloaded: it is verified before it is read, so it is not hashed here), open_clip's
    unpinned ``.bin`` (only with ``unverified``) by its computed sha256, so replacing that file changes every CLIP
    cache key."""
    local = clip_file(weights_dir, unverified=unverified)
    if _is_pinned(local):
        return f"{WEIGHT_FILES['clip'].filename}:{WEIGHT_FILES['clip'].known_hash}"
    return f"{local.name}:sha256:{file_sha256(local)} (computed, not pinned)"


def clip_weights_present(weights_dir: Path | None, *, unverified: bool = False) -> bool:
    """Whether a pretrained run finds its CLIP file on disk (:func:`clip_file`), so nothing has to be downloaded."""
    return clip_file(weights_dir, unverified=unverified) is not None


def openai_clip_state(path: Path, weight: WeightFile) -> dict[str, torch.Tensor]:
    """The state dict of OpenAI's CLIP file, a TorchScript archive, read as open_clip reads it.

    open_clip's ``load_openai_model`` (and OpenAI's ``clip.load``) calls ``torch.jit.load(path, map_location="cpu")``,
    takes the module's ``state_dict()`` and drops the ``input_resolution``, ``context_length`` and ``vocab_size``
    entries; the rest are open_clip's CLIP keys (OpenAI's names) and are loaded strictly. ``create_model(pretrained=
    <file>)`` does the same through ``torch.load``, which since torch 2.6 refuses TorchScript archives under its
    default ``weights_only=True`` (``weights_only=False`` dispatches to ``torch.jit.load``). An archive can carry
    code, so it is read only when ``weight`` pins its whole content (sha256 or md5) and the file matches: it is then
    byte-identical to OpenAI's published file, the one ``clip.load("ViT-B/16")`` itself loads. Only its tensors are
    kept; its scripted module is never run.

    Raises:
        WeightsUnavailableError: one line, when ``weight`` has no full checksum or the file does not match it.
    """
    if not full_checksum(weight.known_hash) or not _file_matches(path, weight.known_hash):
        raise WeightsUnavailableError(
            f"{path}: not read, as it does not match the pinned {weight.known_hash or 'checksum (none given)'} of "
            f"{weight.filename}; delete it and download {weight.url}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        archive = torch.jit.load(str(path), map_location="cpu")
    state = dict(archive.state_dict())
    for key in ("input_resolution", "context_length", "vocab_size"):
        state.pop(key, None)
    return state


class _NoRandomInitNote(logging.Filter):
    """Drops open_clip's "Model initialized randomly" warning while real weights are about to be loaded."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


def build_clip(
    pretrained: str | None,
    *,
    device: str | torch.device = "cpu",
    precision: str | None = None,
    state: dict[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, Callable]:
    """open_clip's :data:`CLIP_ARCH` with ``pretrained`` (None, a tag or a file open_clip reads with
    ``weights_only=True``) or ``state`` (OpenAI's tensors, :func:`openai_clip_state`; strict) loaded into it.

    Every path goes through here, so they build the same modules. ``precision`` defaults to ``fp16`` on CUDA, as
    OpenAI's ``clip.load`` (and so CLIP-Dissect) runs the model there: open_clip then builds fp32-computing LayerNorms
    and converts linear, conv and attention weights to fp16 (``convert_weights_to_lp``); ``fp32`` elsewhere.
    ``state`` is copied into those parameters' dtypes, as open_clip's ``load_openai_model`` does.
    """
    import open_clip

    precision = precision or ("fp16" if clip_dtype(device) == torch.float16 else "fp32")
    note = _NoRandomInitNote()
    if state is not None:
        logging.getLogger().addFilter(note)
    try:
        module, _, preprocess = open_clip.create_model_and_transforms(
            CLIP_ARCH, pretrained=pretrained, force_quick_gelu=True, precision=precision, device=device
        )
    finally:
        logging.getLogger().removeFilter(note)
    if state is not None:
        module.load_state_dict(state, strict=True)
    return module.eval(), preprocess


def load_clip(
    weights: WeightsMode,
    *,
    seed: int,
    weights_dir: Path | None,
    device: str | torch.device = "cpu",
    unverified: bool = False,
) -> LoadedClip:
    """CLIP ViT-B/16 (QuickGELU): OpenAI's pinned weights (downloaded if absent), open_clip's unpinned ``.bin``
    only with ``unverified`` (:func:`clip_file`), or seeded random weights of the same architecture; fp16 on CUDA,
    fp32 on the CPU."""
    import open_clip

    _seeded(seed)
    if weights == "random":
        module, preprocess = build_clip(None, device=device)
        weights_id = f"random(seed={seed})"
    else:
        local = clip_file(weights_dir, unverified=unverified)
        weights_id = clip_weights_id(weights_dir, unverified=unverified)
        if _is_pinned(local):
            pinned = WEIGHT_FILES["clip"]
            path = fetch_weights(pinned, weights_dir)  # checksummed; offline, the message names the URL
            module, preprocess = build_clip(None, device=device, state=openai_clip_state(path, pinned))
        else:
            try:
                module, preprocess = build_clip(str(local), device=device)
            except Exception as error:  # a truncated or foreign file: open_clip raises many types
                raise WeightsUnavailableError(
                    f"{local}: cannot be read as CLIP ViT-B/16 ({str(error).splitlines()[0][:160]}); use OpenAI's "
                    f"{WEIGHT_FILES['clip'].filename} from {WEIGHT_FILES['clip'].url} instead"
                ) from None
    return LoadedClip(module, preprocess, open_clip.get_tokenizer(CLIP_ARCH), weights, weights_id, clip_dtype(device))
