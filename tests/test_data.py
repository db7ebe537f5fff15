"""Checksummed fetch with a mirror, and image loading for every awkward kind of input."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai import data
from xai.data import BadImageError, DataError, ManifestEntry


@pytest.fixture
def fake_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    """A one-file manifest pointing at an unreachable URL, and a mirror folder holding the right bytes."""
    content = b"hello concepts\n"
    entry = ManifestEntry("concepts/tiny.txt", hashlib.sha256(content).hexdigest(), len(content),
                          "https://invalid.invalid/tiny.txt")
    monkeypatch.setattr(data, "manifest", lambda: {entry.path: entry})
    mirror = tmp_path / "mirror"
    (mirror / "concepts").mkdir(parents=True)
    (mirror / "concepts" / "tiny.txt").write_bytes(content)
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    return mirror, content


def test_mirror_is_used(fake_manifest: tuple[Path, bytes]) -> None:
    mirror, content = fake_manifest
    path = data.fetch("concepts/tiny.txt")
    assert path == mirror / "concepts" / "tiny.txt" and path.read_bytes() == content


def test_checksum_mismatch_is_never_used(fake_manifest: tuple[Path, bytes]) -> None:
    mirror, _ = fake_manifest
    (mirror / "concepts" / "tiny.txt").write_bytes(b"tampered\n")
    # The bad mirror copy is refused, and the (offline) download fails with a message naming the file.
    with pytest.warns(UserWarning, match="checksum mismatch"), pytest.raises(DataError, match=r"concepts/tiny\.txt"):
        data.fetch("concepts/tiny.txt")


def test_unknown_file_names_the_manifest() -> None:
    with pytest.raises(DataError, match=r"not in manifest\.tsv"):
        data.fetch("nope/nothing.txt")


def test_real_mirror_serves_the_task_images(mirror: Path) -> None:
    paths = data.task_image_paths()
    assert [p.stem for p in paths] == list(data.TASK_IMAGES)
    assert all(p.is_relative_to(mirror) for p in paths)


def test_manifest_lists_every_needed_file() -> None:
    entries = data.manifest()
    assert sum(p.startswith("imagenet-sample-images/") for p in entries) == 1000
    assert "places365/categories_places365.txt" in entries
    assert {f"clip-dissect-concepts/{n}.txt" for n in ("20k", "broden_labels_clean", "imagenet_labels")} <= set(entries)


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def _halves(size: tuple[int, int] = (300, 200)) -> Image.Image:
    """Left half red, right half blue: orientation changes are visible in the result."""
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[:, : size[0] // 2, 0] = 255
    array[:, size[0] // 2 :, 2] = 255
    return Image.fromarray(array)


def test_loaded_image_shape_and_dtype(tmp_path: Path) -> None:
    pixels = data.load_image(_save(_halves(), tmp_path / "a.png"))
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
    assert pixels[112, 10, 0] > 200 and pixels[112, 213, 2] > 200


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": red left half ends up on top
    pixels = data.load_image(_save(_halves(), tmp_path / "rotated.jpg", exif=exif, quality=95))
    assert pixels[10, 112, 0] > 200 and pixels[213, 112, 2] > 200


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "LA", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb(tmp_path: Path, mode: str) -> None:
    source = _halves().convert("RGB")
    if mode in ("I;16", "I", "F"):
        gray = np.asarray(source.convert("L"), dtype=np.uint16) * 257
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        image = Image.fromarray(gray.astype(dtype))
        assert image.mode == mode
    else:
        image = source.convert(mode)
    suffix = ".tiff" if mode in ("CMYK", "I", "F") else ".png"
    pixels = data.load_image(_save(image, tmp_path / f"img{suffix}"))
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
    assert pixels.max() > 0


def test_sixteen_bit_range_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (256, 1))
    pixels = data.load_image(_save(Image.fromarray(ramp), tmp_path / "ramp.png"))
    assert pixels[:, :, 0].min() < 20 and pixels[:, :, 0].max() > 235


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    transparent = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    pixels = data.load_image(_save(transparent, tmp_path / "clear.png"))
    assert (pixels == 255).all()


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.jpg", b"", "empty file"),
    ("notes.jpg", b"this is not an image at all", "not an image"),
])
def test_bad_files_are_rejected_with_their_name(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=reason) as raised:
        data.load_image(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_truncated_image_is_rejected(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    _halves((400, 400)).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(BadImageError, match="corrupt or truncated"):
        data.load_image(path)


def test_absurdly_large_image_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "MAX_PIXELS", 50_000)
    with pytest.raises(BadImageError, match="exceeds"):
        data.load_image(_save(_halves((300, 200)), tmp_path / "big.png"))


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        data.list_images(tmp_path / "nowhere")
