"""The true class of an explained image, where it is known: an ImageNet sample image named by its WordNet synset
(``n01443537_goldfish.JPEG``), explained by a model whose outputs are ImageNet-1k's 1000 classes.

ImageNet-1k's class index is the synset's position in the sorted list of its 1000 synsets (the order of the
training folders, which torchvision's weights and category names follow); the data manifest lists one sample image
per synset, so that list is read from it (:func:`imagenet_synsets`). Anything else (a user's folder, a checkpoint
with its own classes) has no known true class: -1, and the correct/wrong split says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

UNKNOWN = -1
SYNSET = re.compile(r"(n\d{8})_")
SAMPLE_FOLDER = "imagenet-sample-images/"


@cache
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ImageNet-1k synsets in class-index order (sorted), from the manifest's sample images."""
    from xai.data import manifest

    synsets = sorted({path.removeprefix(SAMPLE_FOLDER)[:9] for path in manifest() if path.startswith(SAMPLE_FOLDER)})
    if len(synsets) != 1000:
        raise ValueError(f"the manifest lists {len(synsets)} ImageNet synsets, not 1000")
    return tuple(synsets)


def is_imagenet(categories: Sequence[str]) -> bool:
    """Whether ``categories`` are torchvision's ImageNet-1k class names, in order."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return tuple(categories) == tuple(_IMAGENET_CATEGORIES)


def true_class(file_name: str, imagenet_classes: bool) -> int:
    """ImageNet class index of an image file named ``nXXXXXXXX_...`` when the model's classes are ImageNet's
    (``imagenet_classes``), else :data:`UNKNOWN`."""
    found = SYNSET.match(file_name)
    if not imagenet_classes or found is None or found.group(1) not in imagenet_synsets():
        return UNKNOWN
    return imagenet_synsets().index(found.group(1))
