"""The probe pass's images decoded and cropped on the device: the workers only read files, nvJPEG decodes.

On a GPU the probe pass is bound by JPEG decoding (issue #22: 0.53 of its floor on an H100, the ResNet18s at
0.12 of theirs, waiting for images). Here the loader's workers read each file's bytes (no decoding); the main
process hands a whole batch to ``torchvision.io.decode_jpeg(..., device=device)`` (nvJPEG's batched decoder on
CUDA; libjpeg-turbo on the CPU, which the tests use), and each network's crop is cut from the one decoded image
with the tensor forms of the same transforms (:func:`tensor_transform`): resize (antialiased, as PIL) and
centre crop, then the device-side ``/ 255`` and normalisation of :class:`xai.dissect.probe_pass.SplitTransform`.

What differs from the CPU path: torchvision's tensor resize is not PIL's (fixed-point, rounded per pass), so a
crop's pixels can differ by a few levels of 255; the embeddings and activations agree within the tolerance the
CUDA tests check, not bit for bit. A file nvJPEG cannot decode (not a JPEG, CMYK) is decoded by PIL on the CPU
and cropped by the same transforms' PIL form, as the CPU path does; a file that cannot be read is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class TensorTransform:
    """A preprocessing transform's PIL steps as tensor ops on a decoded (3, H, W) uint8 image, on its device."""

    steps: tuple[Callable[[torch.Tensor], torch.Tensor], ...]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            image = step(image)
        return image


def _resize(image: torch.Tensor, *, size: Any, interpolation: Any, max_size: int | None) -> torch.Tensor:
    """``Resize`` on a tensor, antialiased as PIL always is."""
    from torchvision.transforms import functional as F

    return F.resize(image, size, interpolation=interpolation, max_size=max_size, antialias=True)


def _rgb_conversion(step: Any) -> bool:
    """open_clip's PIL ``convert('RGB')`` step (``MaybeConvertMode('RGB')``, ``_convert_to_rgb`` in older
    releases): decoding in RGB mode already did it."""
    if type(step).__name__ == "MaybeConvertMode":
        return getattr(step, "mode", None) == "RGB"
    return getattr(step, "__name__", "") in ("_convert_to_rgb", "convert_to_rgb")


def tensor_transform(transform: Callable) -> TensorTransform | None:
    """The tensor form of a transform whose PIL part is resize and centre crop (then ``ToTensor``/``Normalize``,
    which :class:`xai.dissect.probe_pass.SplitTransform` runs on the device): torchvision's
    ``ImageClassification`` preset and a ``Compose`` such as CLIP's. None for anything else."""
    from torchvision.transforms import CenterCrop, Compose, Normalize, Resize
    from torchvision.transforms import functional as F
    from torchvision.transforms._presets import ImageClassification

    if isinstance(transform, ImageClassification):
        t = transform

        def resize(image: torch.Tensor) -> torch.Tensor:
            return F.resize(image, t.resize_size, interpolation=t.interpolation, antialias=True)

        return TensorTransform((resize, lambda image: F.center_crop(image, t.crop_size)))
    steps = list(transform.transforms) if isinstance(transform, Compose) else []
    if len(steps) < 2 or type(steps[-2]).__name__ not in ("ToTensor", "MaybeToTensor"):
        return None
    if not isinstance(steps[-1], Normalize):
        return None
    found: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for step in steps[:-2]:
        if isinstance(step, Resize):
            found.append(partial(_resize, size=step.size, interpolation=step.interpolation, max_size=step.max_size))
        elif isinstance(step, CenterCrop):
            found.append(step)
        elif not _rgb_conversion(step):
            return None
    return TensorTransform(tuple(found))


class ProbeBytes(Dataset):
    """Probe image ``i`` as its file's bytes (a uint8 tensor): the workers read, the device decodes."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            data = Path(self.paths[index]).read_bytes()
        except OSError as error:
            return index, None, f"cannot be read ({type(error).__name__}: {error})"
        if not data:
            return index, None, "cannot be decoded (empty file)"
        return index, torch.frombuffer(bytearray(data), dtype=torch.uint8), None


def collate_bytes(items: list) -> tuple[list[int], list[torch.Tensor], list[tuple[int, str]]]:
    """(indices of the files read, their bytes, [(index, reason)] of those that could not be)."""
    good = [(index, data) for index, data, _ in items if data is not None]
    return [i for i, _ in good], [data for _, data in good], [(i, r) for i, data, r in items if data is None]


def decode_batch(datas: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """Each file's (3, H, W) uint8 RGB image on ``device`` (one batched nvJPEG call on CUDA), None where the
    decoder refuses the file (the caller decodes those with PIL)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return list(decode_jpeg(list(datas), mode=ImageReadMode.RGB, device=device))
    except RuntimeError:  # one bad file fails the batch: decode one by one to find it
        found: list[torch.Tensor | None] = []
        for data in datas:
            try:
                found.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                found.append(None)
        return found


def pil_crops(path: str | Path, to_uint8: Sequence[Callable], device: torch.device) -> list[torch.Tensor] | str:
    """The CPU path for one file nvJPEG refused: PIL decode, every transform's uint8 crop, on ``device``; or the
    reason it cannot be decoded at all."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"cannot be decoded ({type(error).__name__}: {str(error).splitlines()[0][:160]})"
    return [transform(rgb).to(device) for transform in to_uint8]


class DeviceDecodedBatches:
    """Probe batches as the probe pass consumes them, ``(indices, [uint8 crops per transform on device], bad)``,
    with every image decoded and cropped on ``device`` (see the module docs); ``len`` is the number of batches."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        to_uint8: Sequence[Callable],
        transforms: Sequence[TensorTransform],
        batch_size: int,
        device: torch.device,
        workers: int,
    ) -> None:
        from torch.utils.data import DataLoader

        self.paths, self.to_uint8, self.transforms, self.device = list(paths), list(to_uint8), list(transforms), device
        self.loader = DataLoader(
            ProbeBytes(self.paths),
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate_bytes,
            pin_memory=device.type == "cuda",
            prefetch_factor=2 if workers else None,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[list[int], list[torch.Tensor] | None, list[tuple[int, str]]]]:
        for indices, datas, bad in self.loader:
            kept: list[int] = []
            crops: list[list[torch.Tensor]] = [[] for _ in self.transforms]
            for index, image in zip(indices, decode_batch(datas, self.device), strict=True):
                found = pil_crops(self.paths[index], self.to_uint8, self.device) if image is None else None
                if isinstance(found, str):
                    bad.append((index, found))
                    continue
                for crop, tensors in zip(found or [t(image) for t in self.transforms], crops, strict=True):
                    tensors.append(crop)
                kept.append(index)
            yield kept, [torch.stack(tensors) for tensors in crops] if kept else None, sorted(bad)


def device_decoding(device: torch.device, transforms: Sequence[Callable]) -> list[TensorTransform] | None:
    """The tensor forms of ``transforms`` when every one has one and ``decode_jpeg`` decodes on ``device``;
    else None (the probe pass decodes with PIL in its workers)."""
    forms = [tensor_transform(transform) for transform in transforms]
    if any(form is None for form in forms):
        return None
    try:
        from torchvision.io import decode_jpeg  # noqa: F401 (nvJPEG is part of torchvision's CUDA build)
    except ImportError:
        return None
    return forms  # type: ignore[return-value]
