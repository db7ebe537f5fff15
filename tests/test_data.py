"""Checksummed fetch with a mirror, and image loading for every awkward kind of input."""

from __future__ import annotations

import hashlib
import io
import re
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
    entry = ManifestEntry(
        "concepts/tiny.txt", hashlib.sha256(content).hexdigest(), len(content), "https://invalid.invalid/tiny.txt"
    )
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


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.jpg", b"", "empty file"),
        ("notes.jpg", b"this is not an image at all", "not an image"),
    ],
)
def test_bad_files_are_rejected_with_their_name(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=reason) as raised:
        data.load_image(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_unreadable_file_is_named_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(_halves(), tmp_path / "locked.png")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)  # chmod does not stop root, who runs CI containers
    with pytest.raises(BadImageError, match="cannot read it \\(Permission denied\\); fix its permissions"):
        data.load_image(path)


def test_truncated_image_is_rejected(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    _halves((400, 400)).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(BadImageError, match="corrupt or truncated"):
        data.load_image(path)


def test_absurdly_large_image_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "MAX_PIXELS", 50_000)
    with pytest.raises(BadImageError, match="decompression bomb"):
        data.load_image(_save(_halves((300, 200)), tmp_path / "big.png"))


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose header claims ``width`` x ``height``: a decompression bomb as PIL first sees it."""
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    raw = bytearray(buffer.getvalue())
    header = struct.pack(">II", width, height) + bytes(raw[24:29])  # IHDR: width, height, then 5 bytes
    raw[16:29] = header
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("side", [20_000, 13_000])
def test_decompression_bomb_is_refused_as_such(tmp_path: Path, side: int) -> None:
    # 20000^2 is over PIL's own hard limit, 13000^2 only over ours: both are named a bomb, not "corrupt".
    path = _png_claiming(tmp_path / "bomb.png", side, side)
    with pytest.raises(BadImageError, match="decompression bomb") as raised:
        data.load_image(path)
    assert str(path) in str(raised.value) and "corrupt" not in str(raised.value)


def test_large_mpo_phone_photo_decodes_at_reduced_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Phones save multi-picture JPEGs (MPO); over the full-decode limit they decode at reduced scale like JPEG.
    The limits are scaled down (a 1200x900 photo stands for a 12000x9000 one) to keep the test's memory small."""
    from PIL import MpoImagePlugin

    path = tmp_path / "phone.jpg"
    _halves((1200, 900)).save(path, "MPO", save_all=True, append_images=[_halves((600, 450))], quality=80)
    monkeypatch.setattr(data, "MAX_FULL_DECODE_PIXELS", 600_000)
    monkeypatch.setattr(data, "DRAFT_ABOVE_PIXELS", 160_000)
    drafts = []
    real_draft = MpoImagePlugin.MpoImageFile.draft

    def spy(self: Image.Image, mode: str | None, size: tuple[int, int] | None) -> object:
        drafts.append(self.format)
        return real_draft(self, mode, size)

    monkeypatch.setattr(MpoImagePlugin.MpoImageFile, "draft", spy)
    with Image.open(path) as opened:
        assert opened.format == "MPO" and opened.width * opened.height > data.MAX_FULL_DECODE_PIXELS
    pixels = data.load_image(path, resize=64, crop=64)
    assert drafts == ["MPO"] and pixels.shape == (64, 64, 3) and pixels[32, 2, 0] > 200 and pixels[32, 61, 2] > 200
    big_png = _save(_halves((1000, 700)), tmp_path / "big.png")
    with pytest.raises(BadImageError, match="too large to decode in bounded memory"):
        data.load_image(big_png)  # formats without reduced-scale decoding are still refused


def test_very_large_jpeg_decodes_in_bounded_memory(tmp_path: Path) -> None:
    """A 12000x9000 photo (108 million pixels, 324 MB decoded in full) is decoded at reduced scale."""
    import subprocess
    import sys

    path = tmp_path / "huge.jpg"
    _halves((12000, 9000)).save(path, quality=50)
    script = (
        "import resource, sys; from pathlib import Path; from xai.data import load_image\n"
        "import torchvision.transforms.functional\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "pixels = load_image(Path(sys.argv[1]))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(pixels.shape, pixels[112, 10, 0], pixels[112, 213, 2], (after - before) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    shape, red, blue, grown_mb = done.stdout.rsplit("\n", 2)[0].rsplit(" ", 3)[0], *done.stdout.split()[-3:]
    assert shape.startswith("(224, 224, 3)") and int(red) > 200 and int(blue) > 200
    assert int(grown_mb) < 100, f"decoding grew the process by {grown_mb} MB"


def test_tiny_image_is_refused_and_a_small_one_upscaled(tmp_path: Path) -> None:
    with pytest.raises(BadImageError, match="too small") as raised:
        data.load_image(_save(Image.new("RGB", (1, 1), (255, 0, 0)), tmp_path / "dot.png"))
    assert "dot.png" in str(raised.value)
    pixels = data.load_image(_save(_halves((20, 16)), tmp_path / "small.png"))
    assert pixels.shape == (224, 224, 3) and pixels[112, 10, 0] > 200 and pixels[112, 213, 2] > 200


NASTY_NAMES = [
    "<img src=x onerror=alert(1)>.png",
    "a b.png",
    "a_b.png",
    "x.png",
    "x.jpg",
    "Case.png",
    "case.png",
    "a&b#c%d.png",
    "*bold* [link](y) `code`.png",
    ".hidden.png",
    "...png",
    "日本語.png",
    "Über café.png",
    "L" * 251 + ".png",
    "L" * 250 + "M.png",
    "a|b=c.png",
]


def test_image_ids_are_distinct_safe_slugs_and_stable(tmp_path: Path) -> None:
    import re

    paths = [tmp_path / name for name in NASTY_NAMES]
    ids = data.image_ids(paths, tmp_path)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) and len(i) <= 80 for i in ids), ids
    by_name = dict(zip(NASTY_NAMES, ids, strict=True))
    assert by_name["Über café.png"].startswith("uber-cafe-") and by_name["x.jpg"] == "x"  # sorted first keeps it
    assert by_name["x.png"].startswith("x-") and by_name[".hidden.png"].startswith("hidden-")
    # Stable: the order the files are listed in does not change any id.
    reordered = data.image_ids(paths[::-1], tmp_path)[::-1]
    assert reordered == ids
    # Ids depend on the path below the root, not where the folder lives.
    assert data.image_ids([tmp_path / "moved" / n for n in NASTY_NAMES], tmp_path / "moved") == ids


def test_adding_a_file_never_renames_another_files_id(tmp_path: Path) -> None:
    """``a_b.png`` alone and beside ``a b.png``, ``A_B.png`` and ``a-b.png`` keeps its id, whatever the sort order;
    an NFD name (as macOS writes it) has the id of its NFC twin."""
    import unicodedata

    existing = ["a_b.png", "café.png", "goldfish.jpg", "Case.png", "z.png"]
    before = dict(zip(existing, data.image_ids([tmp_path / n for n in existing], tmp_path), strict=True))
    assert before["goldfish.jpg"] == "goldfish" and before["z.png"] == "z"  # exact names keep readable ids
    added = [*existing, "a b.png", "A_B.png", "a-b.png", "case.png", "Cafe\u0301.png", "goldfish.JPG", "0.png"]
    after = dict(zip(added, data.image_ids([tmp_path / n for n in added], tmp_path), strict=True))
    assert {name: after[name] for name in existing} == before
    assert len(set(after.values())) == len(added) and after["a-b.png"] == "a-b"
    nfd = unicodedata.normalize("NFD", "café.png")
    assert data.image_ids([tmp_path / nfd], tmp_path) == [before["café.png"]]


def test_every_file_is_listed_including_non_images(tmp_path: Path) -> None:
    for name in ("b.png", ".hidden.jpg", "notes.txt", "sub/c.JPEG"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in data.list_images(tmp_path)] == [
        ".hidden.jpg",
        "b.png",
        "notes.txt",
        "sub/c.JPEG",
    ]


def _folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("_bad.jpg"):
            (folder / name).write_bytes(b"not an image")
        else:
            _save(_halves((40, 30)), folder / name)
    return folder


def test_max_images_counts_valid_images_after_every_file_is_checked(tmp_path: Path) -> None:
    from xai import config as config_module
    from xai.pipeline import load_inputs
    from xai.plan import make_plan

    folder = _folder(tmp_path, ["a.png", "b.png", "c.png", "d.png", "sub/z_bad.jpg"])
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "._a.png").write_bytes(b"\0\5\26\7AppleDouble")
    images, skipped = load_inputs(make_plan(config_module.validate({"images": str(folder), "max_images": 2})))
    assert [i.name for i in images] == ["a", "b"]
    reasons = {s.path: s.reason for s in skipped}
    # Relative to the folder (no local absolute path reaches the site), one row per kind of excess.
    assert reasons["sub/z_bad.jpg"].startswith("sub/z_bad.jpg: not an image") and str(folder) not in str(skipped)
    assert "2 valid image(s) not explained (c.png, ...): max_images is 2" in reasons["2 valid image(s)"]
    assert "2 file-manager file(s)" in reasons["2 system file(s)"] and len(skipped) == 3


def test_non_utf8_file_name_is_shown_with_escapes(tmp_path: Path) -> None:
    """A Latin-1 name (bytes ``caf\\xe9.png``) is explained and shown as ``caf\\xe9.png``; a broken one is listed."""
    import os

    from xai import config as config_module
    from xai.pipeline import load_inputs
    from xai.plan import make_plan

    folder = tmp_path / "images"
    folder.mkdir()
    _save(_halves((40, 30)), Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png")))
    Path(os.fsdecode(os.fsencode(folder) + b"/\xff.jpg")).write_bytes(b"junk")
    images, skipped = load_inputs(make_plan(config_module.validate({"images": str(folder)})))
    assert [i.display for i in images] == ["caf\\xe9.png"] and images[0].name.startswith("caf-")
    assert skipped[0].path == "\\xff.jpg" and skipped[0].reason.startswith("\\xff.jpg: not an image")
    (images[0].display + skipped[0].path + skipped[0].reason).encode("utf-8")  # writable to the site


def test_folder_without_a_valid_image_stops_with_one_line(tmp_path: Path) -> None:
    from xai import config as config_module
    from xai.pipeline import load_inputs
    from xai.plan import make_plan

    folder = _folder(tmp_path, ["a_bad.jpg", "b_bad.jpg"])
    with pytest.raises(DataError, match="no valid image among 2 file") as raised:
        load_inputs(make_plan(config_module.validate({"images": str(folder)})))
    assert str(folder) in str(raised.value) and "\n" not in str(raised.value)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        data.list_images(tmp_path / "nowhere")


def test_task_image_ids_are_their_plain_slugs() -> None:
    paths = [Path(f"{name}.JPEG") for name in data.TASK_IMAGES]
    ids = data.image_ids(paths, fixed=True)
    assert ids[5] == "n01443537-goldfish"
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids)
    with pytest.raises(ValueError):
        data.image_ids([Path("a b.png"), Path("a_b.png")], fixed=True)


@pytest.mark.parametrize(
    ("models", "layers", "expected", "absent"),
    [
        # a non-preset with fc: no self-check, so no paper concept set for it (and no KeyError)
        (["resnet18_imagenet", "resnet50"], ["layer4", "fc"], {"imagenet_labels.txt"}, {"categories_places365.txt"}),
        # layers auto reaches fc on the presets: their self-check sets and Places' categories are listed
        (["resnet18_places365"], "auto", {"broden_labels_clean.txt", "categories_places365.txt"}, set()),
        # a user's mapping entry and a transformer: nothing of the presets'
        ([{"name": "vit_b_16"}], "auto", set(), {"imagenet_labels.txt", "categories_places365.txt"}),
    ],
)
def test_the_download_list_follows_which_models_run_the_self_check(
    models: list, layers: object, expected: set[str], absent: set[str]
) -> None:
    from xai.config import validate
    from xai.downloads import manifest_files
    from xai.plan import make_plan

    config = validate({"images": "task", "dissect": {"models": models, "layers": layers, "concepts": "3k"}})
    names = {path.rsplit("/", 1)[-1] for path in manifest_files(make_plan(config), ["dissect"])["dissect"]}
    assert "3k.txt" in names and expected <= names and not absent & names
