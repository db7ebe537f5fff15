"""CLIP ViT-B/16 as CLIP-Dissect uses it: OpenAI's weights (the sha256-pinned ``ViT-B-16.pt``, or open_clip's
unpinned re-save only with ``clip_unverified: true``) or seeded random weights of the same QuickGELU network, with
OpenAI's preprocessing; fp16 on CUDA, fp32 on the CPU.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from xai.models import (
    WEIGHT_FILES,
    WeightFile,
    WeightsMode,
    WeightsUnavailableError,
    _file_matches,
    _seeded,
    candidate_paths,
    fetch_weights,
    file_sha256,
    full_checksum,
)

UNVERIFIED_CLIP = WeightFile(
    "clip",
    "open_clip_pytorch_model.bin",
    "https://huggingface.co/timm/vit_base_patch16_clip_224.openai/resolve/main/open_clip_pytorch_model.bin",
    # No published checksum: a LAION or DFN ViT-B-16 has the same tensor shapes and loads into the same network,
    # so this file is used only with `clip_unverified: true`; its computed sha256 then keys the cache.
    "",
)
"""open_clip's re-save of OpenAI's ViT-B/16 on the Hugging Face hub (what open_clip's ``openai`` tag downloads)."""


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
