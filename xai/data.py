"""Checksummed data acquisition with a local mirror, and robust image loading.

Every downloadable file is listed in ``manifest.tsv`` (path, sha256, bytes, pinned source URL). ``fetch`` looks
in the mirror directory named by ``$XAI_MIRROR`` first, then in the download cache, then downloads with pooch;
a file whose hash does not match is never used.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from xai.errors import UserError

MIRROR_ENV = "XAI_MIRROR"
CACHE_ENV = "XAI_DATA_DIR"
MANIFEST = Path(__file__).with_name("manifest.tsv")
MAX_PIXELS = 150_000_000
"""Larger images are refused as decompression bombs (a 12000x9000 photo is 108 million pixels)."""
MAX_FULL_DECODE_PIXELS = 60_000_000
"""Formats that cannot decode at reduced scale (PNG, TIFF, ...) are refused above this: decoding is ~4 B/pixel."""
DRAFT_ABOVE_PIXELS = 16_000_000
"""JPEGs larger than this decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling), keeping at least 4x the
resolution the resize needs; smaller ones decode in full, exactly as torchvision's transforms would see them."""
MIN_SIDE = 16
"""Images with a side shorter than this are refused: upscaled to 224 pixels they hold no structure to explain."""
ID_MAX_LENGTH = 60

TASK_IMAGES = (
    "n02098286_West_Highland_white_terrier",
    "n02018207_American_coot",
    "n04037443_racer",
    "n02007558_flamingo",
    "n01608432_kite",
    "n01443537_goldfish",
    "n01491361_tiger_shark",
    "n01616318_vulture",
    "n01677366_common_iguana",
    "n07747607_orange",
)
"""The ten ImageNet sample images the assignment fixes, in its order."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DataError(UserError, RuntimeError):
    """A data file is missing, corrupt or cannot be downloaded; the message names the file and the fix."""


class BadImageError(ValueError):
    """An input image cannot be used; the message names the file, the reason and the fix."""


def slugify(text: str) -> str:
    """``Über <b> Bild_2`` -> ``uber-b-bild-2``: lowercase ASCII letters and digits joined by ``-``; may be empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:ID_MAX_LENGTH].rstrip("-")


def image_ids(paths: Sequence[Path], root: Path | None = None, *, fixed: bool = False) -> list[str]:
    """The id of every input image: the one name its pages, anchors, figures, CSV rows and cache keys use.

    ``fixed``: the paths are a fixed list known to slug apart (the assignment's ten task images), so each id is
    its plain slug (``n01443537-goldfish``), with no hash; a collision there is a programming error.

    A file whose name is exactly its slug plus a lowercase suffix (``goldfish.jpg``) has the slug as its id; any
    other name (``a b.png``, ``a_b.png``, ``Case.png``, ``Über.png``, a 255-byte name) loses information in the
    slug, so ``-<8 hex digits>`` of a hash of its path relative to ``root`` is appended. The id so depends on the
    file alone: adding ``a b.png`` beside ``a_b.png`` never renames ``a_b.png``'s id. Names are NFC-normalised
    first (macOS writes NFD), so a folder copied between systems keeps its ids. Only files whose slugs are both
    exact and equal (``x.png`` and ``x.jpg``, or one name in two subfolders) are told apart by sorted order: the
    first keeps the bare slug, the others get the hash. A name with nothing slug-able (``日本.png``, ``....png``)
    is ``image-<hash>``.
    """
    if fixed:
        slugs = [slugify(unicodedata.normalize("NFC", path.stem)) for path in paths]
        if len(set(slugs)) != len(slugs) or not all(slugs):
            raise ValueError(f"fixed image names do not slug apart: {slugs}")
        return slugs

    def relative(path: Path) -> str:
        text = (path.relative_to(root) if root is not None else Path(path.name)).as_posix()
        return unicodedata.normalize("NFC", text)

    ids: dict[Path, str] = {}
    taken: set[str] = set()
    for path in sorted(paths, key=lambda p: relative(p).encode("utf-8", "surrogateescape")):
        digest = hashlib.sha256(relative(path).encode("utf-8", "surrogateescape")).hexdigest()
        name = unicodedata.normalize("NFC", path.name)
        stem, suffix = Path(name).stem, Path(name).suffix
        slug = slugify(stem)
        exact = bool(slug) and stem == slug and suffix == suffix.lower()
        candidate = slug if exact else f"{slug or 'image'}-{digest[:8]}"
        extra = 8
        while candidate in taken:
            candidate = f"{slug or 'image'}-{digest[:extra]}"
            extra += 4
        taken.add(candidate)
        ids[path] = candidate
    return [ids[path] for path in paths]


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    sha256: str
    size: int
    url: str


@cache
def manifest() -> dict[str, ManifestEntry]:
    with MANIFEST.open(newline="") as stream:
        rows = csv.DictReader(stream, delimiter="\t")
        return {r["path"]: ManifestEntry(r["path"], r["sha256"], int(r["bytes"]), r["source_url"]) for r in rows}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    import pooch

    return Path(os.environ.get(CACHE_ENV) or pooch.os_cache("xai-report"))


def mirror_dir() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def fetch(relpath: str) -> Path:
    """A local, checksum-verified copy of a manifest file: mirror first, then cache, then download."""
    try:
        entry = manifest()[relpath]
    except KeyError:
        raise DataError(f"{relpath}: not in {MANIFEST.name}; add its URL and sha256 there") from None
    mirror = mirror_dir()
    if mirror and (mirror / relpath).is_file():
        candidate = mirror / relpath
        if sha256_of(candidate) == entry.sha256:
            return candidate
        warnings.warn(f"{candidate}: checksum mismatch, ignoring the mirror copy", stacklevel=2)
    import pooch

    pooch.get_logger().setLevel("WARNING")  # its "Downloading ..." line would precede our one-line error
    try:
        return Path(
            pooch.retrieve(
                entry.url,
                known_hash=f"sha256:{entry.sha256}",
                fname=Path(relpath).name,
                path=cache_dir() / Path(relpath).parent,
            )
        )
    except ValueError as error:  # pooch's hash mismatch
        raise DataError(f"{relpath}: downloaded file fails its sha256 check ({error})") from error
    except Exception as error:  # offline: requests raises several types
        hint = f"set {MIRROR_ENV} to a folder holding {relpath}" if not mirror else f"{mirror} lacks it"
        raise DataError(f"{relpath}: cannot download {entry.url} ({type(error).__name__}); {hint}") from error


def local_copy(relpath: str) -> Path | None:
    """Where ``fetch`` would find ``relpath`` without downloading (the mirror, then the download cache), or None.
    Presence only: ``fetch`` verifies the checksum when the file is used."""
    mirror = mirror_dir()
    for candidate in ([mirror / relpath] if mirror else []) + [cache_dir() / relpath]:
        if candidate.is_file():
            return candidate
    return None


def read_lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a text file (blank lines would shift every label after them)."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def imagenet_sample_paths() -> list[Path]:
    """The 1000 ImageNet sample images (one per class), sorted by file name, each checksum-verified."""
    return sorted((fetch(p) for p in manifest() if p.startswith("imagenet-sample-images/")), key=lambda p: p.name)


def task_image_paths() -> list[Path]:
    return [fetch(f"imagenet-sample-images/{name}.JPEG") for name in TASK_IMAGES]


def list_images(folder: Path) -> list[Path]:
    """Every file under ``folder`` (recursive), sorted by relative path: each is opened, and explained or
    reported with its reason, so a broken or misnamed file is never silently left out."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory; pass a folder of images to --images")
    try:
        files = [p for p in folder.rglob("*") if p.is_file()]
    except OSError as error:
        raise DataError(f"{folder}: cannot list it ({error.strerror or error}); check its permissions") from None
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float images: scale the actual range to 8 bits rather than clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255 if high > low else np.zeros_like(array)
        image = Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


PREPROCESSING: dict[str, dict[str, Any]] = {
    "weights": {"resize": 232, "crop": 224, "squash": False},
    "lime_tutorial": {"resize": 256, "crop": 224, "squash": True},
}
"""``explain.preprocess`` choices: ``weights`` is the explained weights member's own transform
(the run plan fills it from :func:`xai.classifiers.preprocessing`; the values here are
resnet50 IMAGENET1K_V2's: shorter side to 232, centre crop 224, bilinear); ``lime_tutorial`` is the lime PyTorch
tutorial's (``Resize((256, 256))``, which squashes the aspect ratio, then centre crop 224)."""


def _check_size(path: Path, opened: Image.Image) -> None:
    """Refuse, from the header alone, images too large to decode safely or too small to explain."""
    width, height = opened.size
    pixels = width * height
    if pixels > MAX_PIXELS:
        raise BadImageError(
            f"{path}: refused as a decompression bomb: {width}x{height} is {pixels:,} pixels, "
            f"over the {MAX_PIXELS:,}-pixel limit; downscale it if it is a real image"
        )
    # MPO (phones' multi-picture JPEGs) subclasses the JPEG plugin and decodes at reduced scale just the same.
    if pixels > MAX_FULL_DECODE_PIXELS and not isinstance(opened, JpegImagePlugin.JpegImageFile):
        raise BadImageError(
            f"{path}: {width}x{height} {opened.format} is too large to decode in bounded memory "
            f"(over {MAX_FULL_DECODE_PIXELS:,} pixels; only JPEG decodes at reduced scale); "
            "downscale it or save it as JPEG"
        )
    if min(width, height) < MIN_SIDE:
        raise BadImageError(
            f"{path}: {width}x{height} pixels is too small to explain (a side under {MIN_SIDE} "
            f"pixels); use an image at least {MIN_SIDE}x{MIN_SIDE}"
        )


def load_image(
    path: Path, *, resize: int = 232, crop: int = 224, squash: bool = False, interpolation: str = "bilinear"
) -> np.ndarray:
    """Decode ``path`` into a (crop, crop, 3) uint8 RGB array, as a weights member's transforms do (the defaults:
    resnet50 IMAGENET1K_V2's).

    EXIF orientation is applied; grayscale, CMYK, palette, alpha and 16-bit images are converted. The shorter
    side is resized to ``resize`` (``interpolation``, antialiased; small images are upscaled) and the centre ``crop``
    square is kept; with ``squash`` both sides are resized to ``resize`` (the lime tutorial's way, aspect ratio
    not kept). Very large JPEGs decode at reduced scale (bounded memory); see ``DRAFT_ABOVE_PIXELS``.

    Raises:
        BadImageError: empty, truncated, corrupt, non-image, tiny or decompression-bomb files.
    """
    from torchvision.transforms import InterpolationMode, functional

    if not path.is_file():
        raise BadImageError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise BadImageError(f"{path}: empty file; replace it with a valid image or remove it")
    try:
        with warnings.catch_warnings():
            # Our own limits below decide; PIL's warning (above 89 million pixels) would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                _check_size(path, opened)
                if opened.width * opened.height > DRAFT_ABOVE_PIXELS:
                    opened.draft("RGB", (4 * resize, 4 * resize))
                opened.load()
                image = _to_rgb(ImageOps.exif_transpose(opened))
    except BadImageError:
        raise
    except UnidentifiedImageError:
        raise BadImageError(f"{path}: not an image file PIL can read; remove it or convert it to JPEG/PNG") from None
    except Image.DecompressionBombError as error:
        raise BadImageError(
            f"{path}: refused as a decompression bomb ({error}); downscale it if it is a real image"
        ) from None
    except PermissionError as error:
        raise BadImageError(f"{path}: cannot read it ({error.strerror}); fix its permissions or remove it") from None
    except MemoryError:
        raise BadImageError(f"{path}: not enough memory to decode it; downscale it first") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise BadImageError(f"{path}: corrupt or truncated image ({error}); re-download or remove it") from None
    size = [resize, resize] if squash else resize
    resized = functional.resize(image, size, interpolation=InterpolationMode(interpolation), antialias=True)
    image = functional.center_crop(resized, crop)
    return np.asarray(image, dtype=np.uint8).copy()
