"""The paper's final-layer rows and its exact scoring rules, so our fc self-check reads against them.

Published anchors (CLIP-Dissect, Oikarinen & Weng, ICLR 2023; numbers from the repository's notebooks, spec 3.2
and 3.4), all SoftWPMI with CLIP ViT-B/16:

- ResNet18-Places365 ``fc`` (365 units), probe Broden, concept set ``broden_labels_clean`` (1,197): top-1 58.05%
  (155/267), top-5 86.14% (230/267) over the 267 classes with a Broden scene (paper Table 2).
- ResNet50-ImageNet ``fc`` (1,000 units), concept set ``imagenet_labels``, correct iff label index == unit index:
  probe Broden 70.7% / 90.0%, probe ImageNet val 95.5% / 98.9% (top-1 / top-5). The paper has no ResNet18
  ImageNet row; ResNet50's is the nearest and is labelled as ResNet50's.

Places matching (``table2_quantitative_rn18.ipynb`` with ``data_utils.get_places_id_to_broden_label``): class
``/a/apartment_building/outdoor`` is scorable iff ``apartment_building-outdoor-s`` is a name in Broden's
``c_scene.csv``; its ground truth is then the name with every ``-`` turned back into ``/`` plus ``-s``. Both it and
each concept go through ``process_word`` (drop a trailing ``-s``, ``_`` -> space) and must be equal. Broden
writes sub-types with ``-``, the ground truth with ``/``, so sub-typed classes count as scored but can never be
correct (the paper's conservative quirk, kept). Without ``c_scene.csv`` (probe not Broden) the scorable set is
approximated by the class names found in the concept set, and the row is not comparable anyway.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from xai.dissect.probes import BRODEN_IMAGE_COUNT

IMAGENET_VAL_COUNT = 50000

FC_CONCEPT_SETS = {"resnet18_imagenet": "imagenet_labels", "resnet18_places365": "broden_labels"}
"""Concept set of each model's fc self-check: the one the paper's row used."""
FC_MATCH = {"resnet18_imagenet": "index", "resnet18_places365": "string"}


@dataclass(frozen=True)
class PaperRow:
    """One published fc result: which model and probe it is for, and its top-1 / top-5 accuracy."""

    model: str
    probe: str
    n_probe: int
    top1: float
    top5: float
    source: str


PAPER_FC_ROWS: dict[str, tuple[PaperRow, ...]] = {
    "resnet18_places365": (
        PaperRow("ResNet18-Places365", "broden", BRODEN_IMAGE_COUNT, 155 / 267, 230 / 267, "paper Table 2"),
    ),
    "resnet18_imagenet": (
        PaperRow("ResNet50-ImageNet", "broden", BRODEN_IMAGE_COUNT, 0.707, 0.900, "paper Table 3 (ResNet50's)"),
        PaperRow("ResNet50-ImageNet", "imagenet_val", IMAGENET_VAL_COUNT, 0.955, 0.989, "paper Table 3 (ResNet50's)"),
    ),
}


PAPER_SIMILARITY = "soft_wpmi"
"""The paper's rows were scored with SoftWPMI at the repository's defaults."""
PLACES_SCORABLE_RULE = "Broden c_scene.csv"
"""The paper's scorable Places365 classes come from Broden's ``c_scene.csv``; any other rule is an approximation."""


def comparable_row(
    model: str, probe: str, n_probe: int, *, similarity: str = PAPER_SIMILARITY, scorable_rule: str = ""
) -> PaperRow | None:
    """The paper's row for ``model`` measured the paper's way on this very probe set (full Broden), or None.

    Only the full Broden set can be recognised: a folder probe may or may not be ImageNet val, and a
    ``probe_limit`` subset is a different probe. The check must be scored with SoftWPMI, and for Places365 its
    scorable classes must come from ``c_scene.csv`` (the 281-class approximation is another denominator).
    """
    if similarity != PAPER_SIMILARITY:
        return None
    if FC_MATCH.get(model) == "string" and scorable_rule != PLACES_SCORABLE_RULE:
        return None
    for row in PAPER_FC_ROWS.get(model, ()):
        if row.probe == probe and row.n_probe == n_probe:
            return row
    return None


def process_word(word: str) -> str:
    """The notebook's ``process_word`` for Broden labels: drop a trailing ``-s``, ``_`` -> space."""
    if word.endswith("-s"):
        word = word[:-2]
    return word.replace("_", " ")


def places_category_names(lines: Sequence[str]) -> list[str]:
    """``/a/apartment_building/outdoor 8`` -> ``apartment_building/outdoor`` (the notebook's ``cls[3:]``)."""
    return [line[3:].split(" ")[0] for line in lines if line.strip()]


def read_scene_names(c_scene_csv: str | Path) -> set[str]:
    """The ``name`` column of Broden's ``c_scene.csv`` (e.g. ``apartment_building-outdoor-s``)."""
    with Path(c_scene_csv).open(newline="", encoding="utf-8") as stream:
        return {row["name"] for row in csv.DictReader(stream)}


def places_targets(
    categories: Sequence[str], scene_names: Collection[str] | None, concepts: Sequence[str]
) -> list[str | None]:
    """Ground-truth string per Places365 unit (None = not scorable), as the paper's notebook builds it.

    Args:
        categories: class names in unit order, ``apartment_building/outdoor`` form.
        scene_names: Broden's scene names (``c_scene.csv``); None approximates the scorable set by the class
            names present in ``concepts`` (``/`` -> ``-``, ``_`` -> space).
        concepts: the concept set (used only for the approximation).
    """
    if scene_names is None:
        present = {process_word(concept) for concept in concepts}
        found = [process_word(name.replace("/", "-")) in present for name in categories]
    else:
        found = [name.replace("/", "-") + "-s" in scene_names for name in categories]
    return [name.replace("-", "/") + "-s" if hit else None for name, hit in zip(categories, found, strict=True)]
