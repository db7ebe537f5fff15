"""Is the concept in the image? CLIP's rank of a bar's label on the crop its map points at, against random crops.

For each shown concept k: its map ``M_k`` upsampled to the image (:func:`xai.concepts.maps.upsample`), the top
``top_fraction`` (20%) of pixels (ties broken by a seeded permutation, :func:`xai.compare.nulls.random_tie_ranks`),
and the crop of the image under them. CLIP embeds the crop; the rank of the label among the whole concept set by
cosine with the crop (1 = CLIP's best match) is compared with its rank on ``random_crops`` crops of the same height
and width placed uniformly at random (seeded). A label is *confirmed* when its rank on the region is within the top
``rank_fraction`` of the concept set and better than its median rank on the random crops: the first says CLIP
sees the concept there, the second that it sees it there more than anywhere (not just that the image is about it).
Not in IBD, WWW or CLIP-Dissect; arXiv 2501.19271 reports post-hoc concept explanations naming concepts absent
from the image, which is what this catches.

Crop geometry (our choice): the bounding box of the top-20% region. A box keeps the region's place and aspect and
shows CLIP a natural-looking crop, as its training crops were; a fixed-size window would cut a large region or
pad a small one with unrelated context. The control crops have exactly the box's size, so CLIP sees the same
scale: its similarities depend on zoom. When the region is scattered its box is large and the random crops
overlap it; their mean IoU with the box (``random_box_iou``) says how weak the control then is.

CLIP is taken as a callable so it can be faked in tests: ``encode_crops(list of (h, w, 3) uint8 crops)`` returns
(n, D) L2-normalised image embeddings (CLIP's own preprocessing inside), and ``text_embeddings`` (M, D) are the
L2-normalised embeddings of the concept set, row = concept id.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xai.compare.agreement import fraction_area
from xai.compare.nulls import degenerate_reason, random_tie_ranks
from xai.concepts.maps import upsample

TOP_FRACTION = 0.2
RANDOM_CROPS = 4
RANK_FRACTION = 0.05

EncodeCrops = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class ClipFunctions:
    """CLIP as the presence check needs it (see the module docstring)."""

    encode_crops: EncodeCrops
    text_embeddings: np.ndarray


@dataclass(frozen=True)
class ConceptPresence:
    """CLIP's view of one concept's region.

    Attributes:
        concept, concept_id: the label checked.
        box: (4,) int64 ``(top, left, bottom, right)`` of the region's bounding box, bottom/right exclusive.
        region_rank: the label's rank among the ``n_concepts`` concepts on the region's crop (1 = best).
        random_boxes: (n, 4) int64 the control crops.
        random_ranks: (n,) int64 the label's rank on each control crop.
        n_concepts: M.
        random_box_iou: mean IoU of the control boxes with the region's box.
        confirmed: see the module docstring.
        excluded: why the concept was not checked ("" when it was).
    """

    concept: str
    concept_id: int
    box: np.ndarray
    region_rank: int
    random_boxes: np.ndarray
    random_ranks: np.ndarray
    n_concepts: int
    random_box_iou: float
    confirmed: bool
    excluded: str = ""

    @property
    def rank_gain(self) -> float:
        """Median control rank minus the region's rank (positive: the region shows the concept better)."""
        if self.excluded or self.random_ranks.size == 0:
            return math.nan
        return float(np.median(self.random_ranks)) - self.region_rank


def region_box(image_map: np.ndarray, fraction: float = TOP_FRACTION, seed: int = 0) -> np.ndarray:
    """(4,) bounding box ``(top, left, bottom, right)`` of the top ``fraction`` of pixels of an (H, W) map."""
    area = max(1, fraction_area(fraction, image_map.size))
    mask = random_tie_ranks(image_map, seed) < area
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([rows[0], columns[0], rows[-1] + 1, columns[-1] + 1], dtype=np.int64)


def random_boxes(box: np.ndarray, size: tuple[int, int], count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 4) boxes of the same height and width as ``box``, placed uniformly at random inside ``size``."""
    height, width = int(box[2] - box[0]), int(box[3] - box[1])
    tops = rng.integers(0, size[0] - height + 1, size=count)
    lefts = rng.integers(0, size[1] - width + 1, size=count)
    return np.stack([tops, lefts, tops + height, lefts + width], axis=1).astype(np.int64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``(top, left, bottom, right)`` boxes."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else math.nan


def concept_ranks(embeddings: np.ndarray, text_embeddings: np.ndarray, concept_id: int) -> np.ndarray:
    """(n,) rank of ``concept_id`` among all concepts by cosine with each image embedding (1 = best; a tie counts
    in the concept's favour)."""
    similarity = np.asarray(embeddings, np.float64) @ np.asarray(text_embeddings, np.float64).T
    own = similarity[:, concept_id : concept_id + 1]
    return 1 + (similarity > own).sum(axis=1).astype(np.int64)


def _crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[box[0] : box[2], box[1] : box[3]])


def concept_presence(
    image: np.ndarray,
    layer_maps: Sequence[np.ndarray],
    concepts: Sequence[tuple[str, int]],
    clip: ClipFunctions,
    *,
    top_fraction: float = TOP_FRACTION,
    random_crops: int = RANDOM_CROPS,
    rank_fraction: float = RANK_FRACTION,
    seed: int = 0,
) -> tuple[ConceptPresence, ...]:
    """The presence check of the module docstring for each ``(concept, concept_id)`` with its (h, w) map.

    Args:
        image: (H, W, 3) uint8, the image at the geometry the model saw (the maps are upsampled to it).
        layer_maps: the concepts' maps ``M_k`` at the layer's resolution, in the order of ``concepts``.
        concepts: ``(concept string, concept id)`` pairs.
        clip: :class:`ClipFunctions`; all crops go to ``encode_crops`` in one call.
        seed: seeds the tie-breaking and the control boxes.
    """
    image = np.asarray(image)
    size = (int(image.shape[0]), int(image.shape[1]))
    n_concepts = int(clip.text_embeddings.shape[0])
    rng = np.random.default_rng(seed)
    plans: list[tuple[str, int, np.ndarray, np.ndarray, str]] = []
    crops: list[np.ndarray] = []
    for (concept, concept_id), layer_map in zip(concepts, layer_maps, strict=True):
        image_map = upsample(layer_map, size)
        reason = degenerate_reason(image_map)
        if reason:
            plans.append((concept, concept_id, np.zeros(4, np.int64), np.zeros((0, 4), np.int64), f"map {reason}"))
            continue
        box = region_box(image_map, top_fraction, seed)
        controls = random_boxes(box, size, random_crops, rng)
        plans.append((concept, concept_id, box, controls, ""))
        crops += [_crop(image, box), *(_crop(image, control) for control in controls)]
    embeddings = np.asarray(clip.encode_crops(crops), np.float64) if crops else np.zeros((0, 1))
    if len(embeddings) != len(crops):
        raise ValueError(f"encode_crops returned {len(embeddings)} embeddings for {len(crops)} crops")
    best_allowed = max(1, math.floor(rank_fraction * n_concepts))
    results, row = [], 0
    for concept, concept_id, box, controls, reason in plans:
        if reason:
            empty = np.zeros(0, np.int64)
            results.append(
                ConceptPresence(concept, concept_id, box, -1, controls, empty, n_concepts, math.nan, False, reason)
            )
            continue
        ranks = concept_ranks(embeddings[row : row + 1 + len(controls)], clip.text_embeddings, concept_id)
        row += 1 + len(controls)
        region_rank, control_ranks = int(ranks[0]), ranks[1:]
        confirmed = region_rank <= best_allowed and (control_ranks.size == 0 or region_rank < np.median(control_ranks))
        overlap = float(np.mean([box_iou(box, control) for control in controls])) if len(controls) else math.nan
        results.append(
            ConceptPresence(
                concept, concept_id, box, region_rank, controls, control_ranks, n_concepts, overlap, bool(confirmed)
            )
        )
    return tuple(results)
