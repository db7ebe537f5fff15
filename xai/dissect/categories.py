"""Concept categories like Network Dissection's (object / scene / texture / colour), via keyword maps.

Broden's own per-label category files are not available offline, so a concept is categorised by exact match
(after lower-casing, ``_`` -> space, Broden's ``-c``/``-s`` suffixes) against public vocabularies, first match
wins in this order:

- ``colour``: Broden's 11 colour names (+ "gray"/"colour" spellings);
- ``texture``: the 47 Describable Textures Dataset (DTD) classes, which are Broden's texture labels;
- ``scene``: the 365 Places365 categories (``apartment_building/outdoor`` also matches
  ``apartment building``);
- ``object``: every synonym of the 1000 ImageNet classes (and its plural with a trailing ``s``);
- ``other``: everything else — most of the 20k English words (verbs, adjectives, web junk).

It is a coarse keyword map, not a semantic classifier: "orange" counts as a colour, not a fruit.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

CATEGORIES = ("colour", "texture", "scene", "object", "other")

COLOURS = frozenset(
    (
        "black",
        "blue",
        "brown",
        "green",
        "grey",
        "gray",
        "orange",
        "pink",
        "purple",
        "red",
        "white",
        "yellow",
    )
)
DTD_TEXTURES = frozenset(
    (
        "banded",
        "blotchy",
        "braided",
        "bubbly",
        "bumpy",
        "chequered",
        "cobwebbed",
        "cracked",
        "crosshatched",
        "crystalline",
        "dotted",
        "fibrous",
        "flecked",
        "freckled",
        "frilly",
        "gauzy",
        "grid",
        "grooved",
        "honeycombed",
        "interlaced",
        "knitted",
        "lacelike",
        "lined",
        "marbled",
        "matted",
        "meshed",
        "paisley",
        "perforated",
        "pitted",
        "pleated",
        "polka-dotted",
        "porous",
        "potholed",
        "scaly",
        "smeared",
        "spiralled",
        "sprinkled",
        "stained",
        "stratified",
        "striped",
        "studded",
        "swirly",
        "veined",
        "waffled",
        "woven",
        "wrinkled",
        "zigzagged",
    )
)


def _normalise(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").split())


@lru_cache(maxsize=1)
def default_vocabulary() -> dict[str, frozenset[str]]:
    """``{category: names}`` built from the Places365 and ImageNet class lists shipped with the data."""
    from xai.dissect.probes import load_concepts, places365_class_names

    scenes: set[str] = set()
    for name in places365_class_names():
        scene = _normalise(name)
        scenes.add(scene)
        scenes.add(scene.split("/")[0])
        scenes.add(scene.replace("/", "-"))
    objects: set[str] = set()
    for line in load_concepts("imagenet_labels"):
        for synonym in line.split(","):
            objects.add(_normalise(synonym))
    return {
        "colour": COLOURS,
        "texture": DTD_TEXTURES,
        "scene": frozenset(scenes),
        "object": frozenset(objects),
    }


def concept_category(concept: str, vocabulary: Mapping[str, frozenset[str]] | None = None) -> str:
    """Category of one concept (see module doc); ``vocabulary`` defaults to :func:`default_vocabulary`."""
    vocabulary = default_vocabulary() if vocabulary is None else vocabulary
    text = _normalise(concept)
    if text.endswith("-c") and text[:-2] in COLOURS:
        return "colour"
    if text.endswith("-s"):
        text = text[:-2]
    for category in ("colour", "texture", "scene", "object"):
        names = vocabulary.get(category, frozenset())
        if text in names:
            return category
        if category == "object" and text.endswith("s") and text[:-1] in names:
            return category
    return "other"
