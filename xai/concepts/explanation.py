"""One prediction explained in concepts: every analysis of the package on one image, in one artifact."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from xai.concepts.agreement import LIME_K, LimeWeights, MapAgreement, map_agreements
from xai.concepts.bars import ConceptBars, concept_bars
from xai.concepts.concept_tests import (
    PERMUTATIONS,
    ConceptRemoval,
    LabelPermutation,
    concept_removals,
    label_permutation_null,
)
from xai.concepts.contributions import DEFAULT_STEPS, UnitContributions, unit_contributions
from xai.concepts.faithfulness import DEFAULT_KS, RANDOM_SETS, UnitFaithfulness, unit_faithfulness
from xai.concepts.head import UnitReplacement, detect_head
from xai.concepts.labels import UnitLabels
from xai.concepts.maps import ConceptMaps, concept_maps
from xai.concepts.presence import (
    RANDOM_CROPS,
    RANK_FRACTION,
    TOP_FRACTION,
    ClipFunctions,
    ConceptPresence,
    concept_presence,
)
from xai.concepts.suffix import SuffixRunner
from xai.explain.cams._core import Reshape

SHOWN_CONCEPTS = 5


@dataclass(frozen=True)
class ConceptSettings:
    """Every knob of :func:`explain_in_concepts` (all belong in a cache key).

    Attributes:
        method: ``auto`` (linear head: exact ``w_tu · mean A_u``; else integrated gradients), ``linear_head``,
            ``integrated_gradients`` or ``gradient_x_activation``.
        steps: integrated-gradients quadrature nodes.
        ks: unit-set sizes K for removal and keep-only.
        random_sets: random unit sets per K and per concept.
        permutations: label permutations.
        shown: concepts (largest positive bars) given the concept-level, presence and agreement checks.
        top_fraction: the share of pixels of a concept's region (presence crop, CAM agreement).
        random_crops: control crops per concept.
        rank_fraction: a label is confirmed only within CLIP's top ``rank_fraction`` of the concept set.
        lime_k: LIME's top-k superpixels for the IoU.
    """

    method: str = "auto"
    steps: int = DEFAULT_STEPS
    ks: tuple[int, ...] = DEFAULT_KS
    random_sets: int = RANDOM_SETS
    permutations: int = PERMUTATIONS
    shown: int = SHOWN_CONCEPTS
    top_fraction: float = TOP_FRACTION
    random_crops: int = RANDOM_CROPS
    rank_fraction: float = RANK_FRACTION
    lime_k: int = LIME_K


@dataclass(frozen=True)
class ConceptExplanation:
    """Why this prediction, in concepts: one image, one explained class.

    Attributes:
        image_id: the image's id (as the explain stage names it).
        target_class: t, the explained class.
        predicted_class: the model's top-1 on the image.
        true_class: the label when known, else -1.
        layer: the explained layer (its dissection's name).
        head_kind, head_reason: :class:`xai.concepts.head.Head`.
        strategy: how the layers after the target ran (``after-target`` or ``full-forward``).
        contributions, bars, maps, faithfulness: see their modules.
        concept_removals: the shown concepts' units removed against random sets of the same size.
        label_permutation: the top concept's share against shuffled labels.
        presence: CLIP's check of the shown concepts (empty without CLIP or image).
        agreement: the shown concepts' maps against LIME's and each CAM's (empty without them).
        settings: what produced it.
        seed: the seed of every random draw.
        seconds: wall time of :func:`explain_in_concepts` on this image.
    """

    image_id: str
    target_class: int
    predicted_class: int
    true_class: int
    layer: str
    head_kind: str
    head_reason: str
    strategy: str
    contributions: UnitContributions
    bars: ConceptBars
    maps: ConceptMaps
    faithfulness: UnitFaithfulness
    concept_removals: tuple[ConceptRemoval, ...]
    label_permutation: LabelPermutation
    presence: tuple[ConceptPresence, ...]
    agreement: tuple[MapAgreement, ...]
    settings: ConceptSettings = field(default_factory=ConceptSettings)
    seed: int = 0
    seconds: float = math.nan

    @property
    def correct(self) -> bool | None:
        """Whether the prediction is right (None when the true class is unknown)."""
        return None if self.true_class < 0 else self.predicted_class == self.true_class


def explain_in_concepts(
    model: nn.Module,
    target_layer: nn.Module,
    image_tensor: torch.Tensor,
    target_class: int,
    labels: UnitLabels,
    probe_mean: np.ndarray,
    *,
    reshape: Reshape = None,
    image: np.ndarray | None = None,
    clip: ClipFunctions | None = None,
    cam_maps: Mapping[str, np.ndarray] | None = None,
    lime: LimeWeights | None = None,
    image_id: str = "",
    true_class: int = -1,
    seed: int = 0,
    settings: ConceptSettings | None = None,
) -> ConceptExplanation:
    """Explain the logit of ``target_class`` on one image through the labelled units of ``target_layer``.

    Runs, in order: the head detection, the unit contributions (:mod:`~xai.concepts.contributions`), concept bars
    and maps, unit-level faithfulness with its random, activation, weight and keep-only controls, the shown
    concepts' removal against random same-size sets, the label-permutation null, and, when given, CLIP's presence
    check and the agreement with LIME and the CAMs.

    Args:
        model: the classifier, in eval mode, on its device (every tensor op runs there).
        target_layer: the explained module (e.g. ``model.layer4[-1]``), the layer ``labels`` label.
        image_tensor: (1, 3, H, W) the normalised input.
        target_class: t, normally the predicted class.
        labels: the layer's CLIP-Dissect labels (:func:`xai.concepts.labels.unit_labels`).
        probe_mean: (K,) each unit's mean pooled activation over the probe set: the removal baseline (and the
            integrated-gradients baseline).
        reshape: the target layer's reshape (``vit_tokens_to_map`` for ViT), as the explain stage's target has it.
        image: (H, W, 3) uint8 image as the model saw it (for the presence crops).
        clip: CLIP as callables (presence is skipped without it or ``image``).
        cam_maps: ``{method: (H, W) map}`` of the same image and class (Task 2).
        lime: LIME's segments and weights for the same image (Task 2).
        image_id, true_class: recorded; ``true_class`` (-1 unknown) splits correct and wrong predictions.
        seed: seeds every random draw (random unit sets, permutations, tie-breaking, control crops).
        settings: :class:`ConceptSettings` (defaults when None).
    """
    started = time.perf_counter()
    settings = settings or ConceptSettings()
    runner = SuffixRunner(model, image_tensor, target_layer, reshape)
    if labels.n_units != runner.n_units:
        raise ValueError(f"{labels.n_units} unit labels for the {runner.n_units} units of the explained layer")
    head = detect_head(runner)
    contributions = unit_contributions(
        runner, head, target_class, probe_mean, method=settings.method, steps=settings.steps
    )
    bars = concept_bars(contributions, labels)
    maps = concept_maps(contributions, bars)
    replacement = UnitReplacement(runner, head, probe_mean)
    faithfulness = unit_faithfulness(replacement, contributions, ks=settings.ks, draws=settings.random_sets, seed=seed)
    shown = bars.top(settings.shown)
    removals = concept_removals(replacement, shown, target_class, draws=settings.random_sets, seed=seed + 1)
    permutation = label_permutation_null(contributions, labels, draws=settings.permutations, seed=seed + 2)
    shown_maps = [maps.map_of(bar.concept) for bar in shown]
    presence: tuple[ConceptPresence, ...] = ()
    if clip is not None and image is not None:
        if tuple(np.shape(image)[:2]) != tuple(image_tensor.shape[-2:]):
            raise ValueError(
                f"the image is {np.shape(image)[:2]} but the model input {tuple(image_tensor.shape[-2:])}; pass the "
                "image at the geometry the model saw (the maps are upsampled to it)"
            )
        presence = concept_presence(
            image,
            shown_maps,
            [(bar.concept, bar.concept_id) for bar in shown],
            clip,
            top_fraction=settings.top_fraction,
            random_crops=settings.random_crops,
            rank_fraction=settings.rank_fraction,
            seed=seed + 3,
        )
    agreement: tuple[MapAgreement, ...] = ()
    if cam_maps or lime is not None:
        agreement = map_agreements(
            shown_maps,
            [bar.concept for bar in shown],
            tuple(image_tensor.shape[-2:]),
            cam_maps=cam_maps,
            lime=lime,
            top_fraction=settings.top_fraction,
            lime_k=settings.lime_k,
            seed=seed + 4,
        )
    return ConceptExplanation(
        image_id=image_id,
        target_class=int(target_class),
        predicted_class=int(runner.logits.argmax()),
        true_class=int(true_class),
        layer=labels.layer,
        head_kind=head.kind,
        head_reason=head.reason,
        strategy=runner.strategy,
        contributions=contributions,
        bars=bars,
        maps=maps,
        faithfulness=faithfulness,
        concept_removals=removals,
        label_permutation=permutation,
        presence=presence,
        agreement=agreement,
        settings=settings,
        seed=int(seed),
        seconds=time.perf_counter() - started,
    )
