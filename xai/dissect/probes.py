"""Probe image sets and concept sets for CLIP-Dissect.

Probe sets: ``imagenet-samples`` (1000 ImageNet images, one per class), any image folder (recursive, sorted; a
Broden-format tree is read from its ``index.csv``), ``broden`` (CLIP-Dissect's default, 63,305 images, downloaded
and checksummed with pooch) and a deterministic stratified ``probe_limit``. Concept sets: ``20k`` (default),
``10k``, ``3k``, ``broden_labels``, ``imagenet_labels``, ``places365`` or a user file (one concept per line).
Concept lists drop blank lines and are otherwise used verbatim: CLIP-Dissect filters nothing (spec 1.5).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xai.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

BRODEN_URL = "http://netdissect.csail.mit.edu/data/broden1_224.zip"
BRODEN_MD5 = "be13c292eaef3300da03f8d0e48eab1c"
"""MD5 of broden1_224.zip as published by a third-party setup script (spec 2.1); verified by pooch."""
BRODEN_SOURCES = ("ade20k", "dtd", "opensurfaces", "pascal")
BRODEN_IMAGE_COUNT = 63305
BRODEN_INDEX_HEADER = ("image", "split", "ih", "iw", "sh", "sw")
"""The first columns of a NetDissect-format ``index.csv`` (Broden's: then color, object, part, material, scene,
texture). ``image`` is the image's path below ``images/``; the other cells name the segmentation PNGs beside it."""


class ProbeSetError(UserError):
    """A probe set that cannot be had or read (Broden's download or checksum, its index, a missing image); the
    message is one line naming the file or folder and the fix."""


CONCEPT_FILES = {
    "20k": "clip-dissect-concepts/20k.txt",
    "10k": "clip-dissect-concepts/10k.txt",
    "3k": "clip-dissect-concepts/3k.txt",
    "broden_labels": "clip-dissect-concepts/broden_labels_clean.txt",
    "imagenet_labels": "clip-dissect-concepts/imagenet_labels.txt",
    "places365": "places365/categories_places365.txt",
}
DEFAULT_CONCEPT_SET = "20k"


def _fetch(relpath: str) -> Path:
    """Checksummed local copy of a data file (``xai.data.fetch``: mirror, cache, then download)."""
    from xai.data import fetch

    return fetch(relpath)


def imagenet_sample_paths() -> list[Path]:
    """The 1000 ImageNet sample images (one per class), sorted by file name (``xai.data``)."""
    from xai.data import imagenet_sample_paths as checked_paths

    return list(checked_paths())


def folder_images(root: str | Path) -> list[Path]:
    """Every non-hidden image below ``root`` (recursive), sorted by relative path (platform-independent).

    A Broden-format tree (``root`` holds its ``index.csv``, or is the ``images/`` folder beside it) is listed from
    the index instead (:func:`broden_index_images`): its folders also hold a segmentation PNG per label category
    (``_color.png``, ``_object.png``, ``_part_N.png``, ...) that CLIP-Dissect never sees (its ``dlbroden.sh`` deletes
    them before loading ``images/`` as an ImageFolder).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"probe folder {root} does not exist")
    broden = broden_tree(root)
    if broden is not None:
        return broden_index_images(broden, expected=None, fix=_FOLDER_FIX)
    paths = [
        p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return sorted(paths, key=lambda p: p.relative_to(root).as_posix())


_FOLDER_FIX = "extract broden1_224.zip there again, or point dissect.probe at a folder without a Broden index"


def _is_broden_index(index: Path) -> bool:
    with index.open(newline="", encoding="utf-8", errors="replace") as stream:
        header = next(csv.reader(stream), [])
    return tuple(column.strip() for column in header[: len(BRODEN_INDEX_HEADER)]) == BRODEN_INDEX_HEADER


def broden_tree(folder: str | Path) -> Path | None:
    """The Broden-format tree ``folder`` is, or is the ``images/`` folder of (CLIP-Dissect's ``broden`` root):
    the folder whose ``index.csv`` starts with :data:`BRODEN_INDEX_HEADER`; None for any other folder."""
    folder = Path(folder)
    for candidate in (folder, folder.parent if folder.name == "images" else None):
        if candidate is not None and (candidate / "index.csv").is_file() and _is_broden_index(candidate / "index.csv"):
            return candidate
    return None


def probe_ids(paths: Sequence[Path], root: str | Path | None = None) -> list[str]:
    """Stable ids: the path relative to ``root`` (or the file name) without suffix, ``/``-separated."""
    ids = []
    for path in paths:
        path = Path(path)
        relative = path.relative_to(root) if root is not None else Path(path.name)
        ids.append(relative.with_suffix("").as_posix())
    return ids


def image_class(path: Path, root: str | Path | None = None) -> str:
    """Stratum of an image: its first folder below ``root`` if it has one (ImageFolder layout), else the
    file-name prefix before the first ``_`` (``n01440764_tench.JPEG`` -> ``n01440764``)."""
    path = Path(path)
    if root is not None:
        parts = path.relative_to(root).parts
        if len(parts) > 1:
            return parts[0]
    return path.stem.split("_", 1)[0]


def stratified_limit(
    paths: Sequence[Path], limit: int | None, *, seed: int = 0, root: str | Path | None = None
) -> list[Path]:
    """A deterministic class-stratified subset of at most ``limit`` images, in the input order.

    Classes come from :func:`image_class`. Each class's images are shuffled with ``seed``, then classes are
    visited round-robin in sorted order taking one image each until ``limit`` is reached, so every class gets
    ⌊limit / classes⌋ or one more (when it has enough images).
    """
    if limit is None or limit >= len(paths):
        return list(paths)
    if limit <= 0:
        raise ValueError("probe_limit must be positive")
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for position, path in enumerate(paths):
        by_class[image_class(path, root)].append(position)
    queues = {name: list(rng.permutation(members)) for name, members in sorted(by_class.items())}
    chosen: list[int] = []
    while len(chosen) < limit:
        for name in sorted(queues):
            if queues[name] and len(chosen) < limit:
                chosen.append(int(queues[name].pop(0)))
    return [paths[i] for i in sorted(chosen)]


def broden_paths(cache_dir: str | Path, *, expected: int = BRODEN_IMAGE_COUNT, quiet: bool = False) -> list[Path]:
    """Broden (broden1_224) probe images: download + MD5 check with pooch, unzip, list the images.

    CLIP-Dissect loads ``broden1_224/images`` as an ImageFolder after its ``dlbroden.sh`` deleted every
    segmentation PNG (colour, object, part and material masks) from the four source folders; what stays are
    the 63,305 JPEGs, exactly the ``image`` column of ``index.csv``. The zip keeps the PNGs, so the images are
    taken from ``index.csv`` (:func:`broden_index_images`), never by listing the folders. About 1 GB; ``quiet``
    hides the download's byte progress bar (``--quiet``).

    Raises:
        ProbeSetError: one line, when the archive cannot be downloaded or fails its checksum, or the extracted set
            is not ``expected`` images.
    """
    cache_dir = Path(cache_dir)
    image_root = cache_dir / "broden1_224" / "images"
    if not image_root.is_dir():
        import pooch

        try:
            pooch.retrieve(
                BRODEN_URL,
                known_hash=f"md5:{BRODEN_MD5}",
                fname="broden1_224.zip",
                path=cache_dir,
                processor=pooch.Unzip(extract_dir="."),
                progressbar=not quiet,  # a byte bar with total and ETA (tqdm) for the 1 GB download
            )
        except Exception as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ProbeSetError(
                f"cannot fetch the Broden probe set from {BRODEN_URL} ({message}); download broden1_224.zip "
                f"(md5 {BRODEN_MD5}) and unzip it into {cache_dir}, or choose probe 'imagenet-samples'"
            ) from None
    root = cache_dir / "broden1_224"
    fix = f"delete {root} and run again to download and extract broden1_224.zip ({BRODEN_URL}) afresh"
    return broden_index_images(root, expected=expected, fix=fix)


def broden_index_images(root: str | Path, *, expected: int | None = BRODEN_IMAGE_COUNT, fix: str = "") -> list[Path]:
    """The probe images of a Broden-format tree at ``root``: ``images/<image>`` for each row of ``index.csv``
    (first listing kept), sorted by that relative path, which is the order of CLIP-Dissect's ImageFolder over
    ``images/`` (class folders sorted, then files). Every listed image must exist, and there must be ``expected``
    of them unless None: a half-extracted archive is refused, never used in part.

    Raises:
        ProbeSetError: one line naming the index, the expected and found counts or the first missing image, and
            ``fix``.
    """
    root = Path(root)
    index = root / "index.csv"
    fix = fix or _FOLDER_FIX
    if not index.is_file():
        raise ProbeSetError(f"Broden at {root}: {index.name} is missing (it lists the probe images); {fix}")
    with index.open(newline="", encoding="utf-8") as stream:
        rows = csv.DictReader(stream)
        if "image" not in (rows.fieldnames or ()):
            raise ProbeSetError(f"{index}: no 'image' column ({','.join(BRODEN_INDEX_HEADER)},...); {fix}")
        names = [row["image"] for row in rows if row.get("image")]
    listed = [root / "images" / name for name in dict.fromkeys(names)]
    found = [path for path in listed if path.is_file()]
    missing = [path for path in listed if not path.is_file()]
    if not listed or missing or (expected is not None and len(found) != expected):
        wanted = f"expected {expected:,} probe images, " if expected is not None else ""
        detail = f"; first missing: {missing[0].relative_to(root)}" if missing else ""
        raise ProbeSetError(
            f"Broden at {root}: {wanted}found {len(found):,} ({index.name} lists {len(listed):,}{detail}); {fix}"
        )
    return sorted(found, key=lambda path: path.relative_to(root / "images").as_posix())


def read_concepts(path: str | Path) -> list[str]:
    """Non-blank lines of a concept file, stripped (CLIP-Dissect drops blank lines, nothing else)."""
    text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def places365_class_names(path: str | Path | None = None) -> list[str]:
    """Places365 class names as the paper's ground truth: ``/a/apartment_building/outdoor 8`` ->
    ``apartment_building/outdoor`` (path minus the ``/x/`` prefix and the index)."""
    path = Path(path) if path is not None else _fetch(CONCEPT_FILES["places365"])
    names = []
    for line in read_concepts(path):
        category = line.rsplit(" ", 1)[0]
        names.append(re.sub(r"^/[a-z]/", "", category))
    return names


def load_concepts(name_or_path: str | Path = DEFAULT_CONCEPT_SET) -> list[str]:
    """A named concept set (``20k``, ``10k``, ``3k``, ``broden_labels``, ``imagenet_labels``, ``places365``)
    or a user file path; ``places365`` gives the class names of :func:`places365_class_names`."""
    if str(name_or_path) == "places365":
        return places365_class_names()
    if str(name_or_path) in CONCEPT_FILES:
        return read_concepts(_fetch(CONCEPT_FILES[str(name_or_path)]))
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"concept set {name_or_path!r} is neither one of {sorted(CONCEPT_FILES)} nor a file")
    concepts = read_concepts(path)
    if not concepts:
        raise ValueError(f"concept file {path} has no concepts")
    return concepts


@dataclass(frozen=True)
class ProbeSet:
    """A named probe set: how to list its images, and the folder their ids (and classes) are relative to."""

    images: Callable[[bool], list[Path]]
    """``quiet -> paths`` (``quiet`` hides a download's progress bar)."""
    root: Callable[[], Path | None]
    """The folder ids are relative to; None names images by file stem (:func:`probe_ids`)."""


def _cache_dir() -> Path:
    from xai.data import cache_dir

    return cache_dir()


PROBE_SETS: dict[str, ProbeSet] = {
    "broden": ProbeSet(
        lambda quiet: broden_paths(_cache_dir(), quiet=quiet), lambda: _cache_dir() / "broden1_224" / "images"
    ),
    "imagenet-samples": ProbeSet(lambda quiet: imagenet_sample_paths(), lambda: None),
}
"""The named probe sets ``dissect.probe`` accepts; any other value is a folder of images (:func:`folder_images`)."""


def probe_images(probe: str, *, quiet: bool = False) -> tuple[list[Path], Path | None]:
    """The images of ``probe`` (a name of :data:`PROBE_SETS` or a folder) and the folder their ids are relative to:
    a Broden-format folder's ``images/``, so its ids and strata (source datasets) are those of the ``broden`` set."""
    if probe in PROBE_SETS:
        return PROBE_SETS[probe].images(quiet), PROBE_SETS[probe].root()
    broden = broden_tree(probe) if Path(probe).is_dir() else None
    return folder_images(probe), (broden / "images" if broden is not None else Path(probe))
