"""The final-layer self-check the paper's way (spec rows 3.2/3.4): the concept set, class names and ground-truth
targets each model's ``fc`` is checked against (:mod:`xai.dissect.paper`), the ``fc`` layer scored on its own with
SoftWPMI whatever the run's main similarity, and the main labels checked against the class names. The dissect
stage (:mod:`xai.stages.dissect`) caches what these return.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xai.data import cache_dir
from xai.dissect import paper, probes
from xai.dissect.analysis import FcSelfCheck, fc_self_check
from xai.dissect.labelling import dissect_model
from xai.dissect.result import DissectionResult


@dataclass(frozen=True)
class FcCheckInputs:
    """Concept set, class names, paper targets and embeddings of one model's fc self-check (paper rows 3.2/3.4).

    ``match`` is the paper's rule for the model: ``index`` (ImageNet: unit i is class i, the concept list *is*
    the class list) or ``string`` (Places365: the label must equal the unit's target string); ``targets`` are
    those strings (None for an unscorable unit) and ``rule`` says how they were chosen."""

    concept_set: str
    concepts: list[str]
    match: str
    concept_embeddings: np.ndarray
    class_names: list[str]
    class_embeddings: np.ndarray
    targets: list[str | None] | None = None
    rule: str = "index"

    @property
    def targets_key(self) -> str:
        return hashlib.sha256(repr((self.rule, self.targets)).encode()).hexdigest()[:16]


def fc_check_inputs(model_name: str, probe: str, embed: Callable[[Sequence[str]], np.ndarray]) -> FcCheckInputs:
    """The paper's concept set, class names and targets for ``model_name``'s fc self-check, with their CLIP text
    embeddings (``embed``)."""
    concept_set = paper.FC_CONCEPT_SETS[model_name]
    concepts = probes.load_concepts(concept_set)
    match = paper.FC_MATCH[model_name]
    concept_embeddings = embed(concepts)
    if match == "index":
        return FcCheckInputs(
            concept_set, concepts, match, concept_embeddings, class_names=concepts, class_embeddings=concept_embeddings
        )
    class_names = probes.places365_class_names()
    scenes_csv = cache_dir() / "broden1_224" / "c_scene.csv"
    scenes = paper.read_scene_names(scenes_csv) if probe == "broden" and scenes_csv.is_file() else None
    return FcCheckInputs(
        concept_set,
        concepts,
        match,
        concept_embeddings,
        class_names=class_names,
        class_embeddings=embed(class_names),
        targets=paper.places_targets(class_names, scenes, concepts),
        rule=paper.PLACES_SCORABLE_RULE if scenes is not None else "class name in the concept set",
    )


def paper_self_check(
    acts: np.ndarray,
    image_embeddings: np.ndarray,
    ids: Sequence[str],
    model_name: str,
    check: FcCheckInputs,
    device: torch.device | str,
) -> FcSelfCheck:
    """The fc layer scored on its own the paper's way: SoftWPMI at the repository's defaults (whatever the main
    similarity), the paper's concept set, the paper's matching rule."""
    fc_result = dissect_model(
        {"fc": acts},
        image_embeddings,
        check.concept_embeddings,
        check.concepts,
        model_name=model_name,
        probe_ids=ids,
        similarity=paper.PAPER_SIMILARITY,
        null_seed=None,
        device=device,
    )
    return fc_self_check(
        fc_result,
        check.class_names,
        match=check.match,
        targets=check.targets,
        concept_embeddings=check.concept_embeddings,
        class_embeddings=check.class_embeddings,
        concept_set=check.concept_set,
        scorable_rule=check.rule,
    )


def label_check(
    result: DissectionResult, check: FcCheckInputs, concept_embeddings: np.ndarray, concept_set: str
) -> FcSelfCheck:
    """The paper's metric on the main labels: fc labels from the main concept set against the class names, by
    CLIP similarity."""
    return fc_self_check(
        result,
        check.class_names,
        match="string",
        concept_embeddings=concept_embeddings,
        class_embeddings=check.class_embeddings,
        concept_set=concept_set,
    )
