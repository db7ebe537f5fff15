"""Analyses of dissection results: concept frequencies, score distributions, interpretability, model overlap,
the final-layer self-check and concept categories. Every number is computed from a :class:`DissectionResult`.

Interpretable threshold: a CLIP-Dissect score is a relative PMI value with no absolute scale (spec 3.6, issue
#1), so a fixed cut would not transfer between setups. We calibrate per layer against a null: the same layer
scored after the probe images were shuffled (``dissect_model(null_seed=...)``). A neuron counts as
interpretable when its best score exceeds the 95th percentile of its layer's null best scores, i.e. it beats
what 95% of neurons achieve when activations carry no information about image content.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from xai.dissect.categories import CATEGORIES, concept_category
from xai.dissect.result import DissectionResult, LayerDissection

TOP_CONCEPTS = 20
NULL_QUANTILE = 0.95


def _counts(items: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple((str(name), int(count)) for name, count in items)


@dataclass(frozen=True)
class LayerSummary:
    """Per-layer statistics of one model's labels.

    Attributes:
        layer: module name.
        n_units: neurons K.
        top_concepts: the most frequent labels with their neuron counts (count desc, then name).
        n_distinct: number of different labels.
        duplicate_label_fraction: fraction of neurons whose label is shared with another neuron of the layer
            (redundancy).
        score_stats: min, 25%, median, 75%, max and mean of the best scores.
        threshold: the interpretable threshold (95th percentile of null best scores); NaN without a null.
        interpretable_count: neurons whose best score exceeds ``threshold`` (-1 without a null).
        category_counts: neurons per concept category (``xai.dissect.categories``).
    """

    layer: str
    n_units: int
    top_concepts: tuple[tuple[str, int], ...]
    n_distinct: int
    duplicate_label_fraction: float
    score_stats: tuple[tuple[str, float], ...]
    threshold: float
    interpretable_count: int
    category_counts: tuple[tuple[str, int], ...]

    @property
    def interpretable_fraction(self) -> float:
        """``interpretable_count / n_units`` (NaN without a null)."""
        return math.nan if self.interpretable_count < 0 else self.interpretable_count / self.n_units


@dataclass(frozen=True)
class ModelSummary:
    """All layer summaries of one model plus labels shared between its layers.

    ``cross_layer`` rows are ``(layer_a, layer_b, shared concepts, Jaccard)`` of the two layers' label sets.
    """

    model_name: str
    layers: tuple[LayerSummary, ...]
    cross_layer: tuple[tuple[str, str, int, float], ...]

    def layer(self, name: str) -> LayerSummary:
        """Summary of layer ``name``."""
        return next(summary for summary in self.layers if summary.layer == name)


def interpretable_threshold(layer: LayerDissection, quantile: float = NULL_QUANTILE) -> float:
    """``quantile`` of the layer's null best scores (NaN when no null was computed)."""
    if layer.null_scores.size == 0:
        return math.nan
    return float(np.quantile(layer.null_scores.astype(np.float64), quantile))


def summarise_layer(
    layer: LayerDissection,
    concepts: Sequence[str],
    *,
    top: int = TOP_CONCEPTS,
    quantile: float = NULL_QUANTILE,
    vocabulary: Mapping[str, frozenset[str]] | None = None,
) -> LayerSummary:
    """Frequencies, distinct labels, redundancy, score distribution, interpretable fraction, categories.

    ``vocabulary`` is the category keyword map of :func:`xai.dissect.categories.concept_category` (default:
    built from the shipped ImageNet and Places365 class lists).
    """
    labels = [concepts[i] for i in layer.label_ids]
    counts = Counter(labels)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    scores = layer.best_scores.astype(np.float64)
    quantiles = np.quantile(scores, [0.0, 0.25, 0.5, 0.75, 1.0])
    stats = tuple(zip(("min", "q25", "median", "q75", "max"), map(float, quantiles), strict=True))
    stats += (("mean", float(scores.mean())),)
    threshold = interpretable_threshold(layer, quantile)
    interpretable = -1 if math.isnan(threshold) else int((scores > threshold).sum())
    shared = sum(count for count in counts.values() if count > 1)
    categories = Counter(concept_category(label, vocabulary) for label in labels)
    return LayerSummary(
        layer=layer.layer,
        n_units=layer.n_units,
        top_concepts=_counts(ranked[:top]),
        n_distinct=len(counts),
        duplicate_label_fraction=shared / layer.n_units,
        score_stats=stats,
        threshold=threshold,
        interpretable_count=interpretable,
        category_counts=tuple((name, int(categories.get(name, 0))) for name in CATEGORIES),
    )


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else math.nan


def summarise_model(
    result: DissectionResult,
    *,
    top: int = TOP_CONCEPTS,
    quantile: float = NULL_QUANTILE,
    vocabulary: Mapping[str, frozenset[str]] | None = None,
) -> ModelSummary:
    """:func:`summarise_layer` for every layer plus label sets shared between each pair of layers."""
    label_sets = {layer.layer: set(result.labels(layer.layer)) for layer in result.layers}
    cross = tuple(
        (a, b, len(label_sets[a] & label_sets[b]), _jaccard(label_sets[a], label_sets[b]))
        for a, b in combinations(label_sets, 2)
    )
    return ModelSummary(
        model_name=result.model_name,
        layers=tuple(
            summarise_layer(layer, result.concepts, top=top, quantile=quantile, vocabulary=vocabulary)
            for layer in result.layers
        ),
        cross_layer=cross,
    )


@dataclass(frozen=True)
class LayerOverlap:
    """Label sets of two models in one layer (``layer == "all"``: union over their common layers); ``layer_b`` is
    model B's layer when the layers were paired by position (empty when both have the same name)."""

    layer: str
    n_distinct_a: int
    n_distinct_b: int
    n_shared: int
    jaccard: float
    shared: tuple[str, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    layer_b: str = ""

    @property
    def pair(self) -> str:
        """``layer3`` or, paired by position, ``layer3 ↔ features.8``."""
        return f"{self.layer} ↔ {self.layer_b}" if self.layer_b and self.layer_b != self.layer else self.layer

    @property
    def n_unique_a(self) -> int:
        """Concepts that label neurons of model A only."""
        return self.n_distinct_a - self.n_shared

    @property
    def n_unique_b(self) -> int:
        """Concepts that label neurons of model B only."""
        return self.n_distinct_b - self.n_shared


@dataclass(frozen=True)
class ModelComparison:
    """Per-layer overlap of two models' labels; ``shared``/``only_*`` sorted by neuron count, then name.

    ``paired_by`` says how layers were matched: ``name`` (the layers both models share, e.g. two ResNet18s) or
    ``position`` (different architectures: the dissected layers in order, aligned from the last, so the
    classifiers pair with each other and the deepest stages with each other)."""

    model_a: str
    model_b: str
    layers: tuple[LayerOverlap, ...]
    paired_by: str = "name"

    def layer(self, name: str) -> LayerOverlap:
        """Overlap of layer ``name`` (or ``all``)."""
        return next(overlap for overlap in self.layers if overlap.layer == name)


def _overlap(name: str, labels_a: Sequence[str], labels_b: Sequence[str], name_b: str = "") -> LayerOverlap:
    count_a, count_b = Counter(labels_a), Counter(labels_b)
    set_a, set_b = set(count_a), set(count_b)
    total = count_a + count_b

    def ranked(items: set[str], counter: Counter) -> tuple[str, ...]:
        return tuple(sorted(items, key=lambda concept: (-counter[concept], concept)))

    return LayerOverlap(
        layer=name,
        n_distinct_a=len(set_a),
        n_distinct_b=len(set_b),
        n_shared=len(set_a & set_b),
        jaccard=_jaccard(set_a, set_b),
        shared=ranked(set_a & set_b, total),
        only_a=ranked(set_a - set_b, count_a),
        only_b=ranked(set_b - set_a, count_b),
        layer_b=name_b,
    )


def compare_models(result_a: DissectionResult, result_b: DissectionResult) -> ModelComparison:
    """Distinct, shared and unique labels and their Jaccard index, per layer pair and over all of them.

    Layers pair by name when both models have the same layer list (two ResNet18s); otherwise by position, aligned
    from the last layer (``paired_by="position"``): with ``layers: auto`` each model's list is its last stages and
    its classifier, so stage pairs with stage and classifier with classifier, whatever the modules are called (a
    name both share, such as MobileNet's and EfficientNet's ``features.3``, need not be the same role)."""
    names_a = [layer.layer for layer in result_a.layers]
    names_b = [layer.layer for layer in result_b.layers]
    if names_a == names_b:
        pairs, paired_by = [(name, name) for name in names_a], "name"
    else:
        count = min(len(names_a), len(names_b))
        pairs, paired_by = list(zip(names_a[-count:], names_b[-count:], strict=True)), "position"
    if not pairs:
        raise ValueError("a result has no layers")
    overlaps = [_overlap(a, result_a.labels(a), result_b.labels(b), "" if paired_by == "name" else b) for a, b in pairs]
    all_a = [label for a, _ in pairs for label in result_a.labels(a)]
    all_b = [label for _, b in pairs for label in result_b.labels(b)]
    overlaps.append(_overlap("all", all_a, all_b))
    return ModelComparison(result_a.model_name, result_b.model_name, tuple(overlaps), paired_by)


@dataclass(frozen=True)
class FcSelfCheck:
    """Final-layer validity check: output unit k should be labelled with class k (paper Sec. 4.1, spec 3.1).

    Attributes:
        model_name, layer: which neurons.
        match: ``index`` (concept set = class names; correct iff label index == unit) or ``string``
            (normalised string equality, scored only for classes present in the concept set).
        n_units: neurons checked; n_scored: units whose class can be matched at all.
        top1_fraction, top5_fraction: fraction of scored units whose class is the label / in the top-5.
        mean_clip_cosine: mean over all units of the CLIP text cosine between label and class name
            (NaN when no embeddings were given).
        concept_set: the concept set the fc layer was scored with.
        scorable_rule: how the scored units were chosen (string match), e.g. Broden's ``c_scene.csv``.
    """

    model_name: str
    layer: str
    match: str
    n_units: int
    n_scored: int
    top1_fraction: float
    top5_fraction: float
    mean_clip_cosine: float
    concept_set: str = ""
    scorable_rule: str = ""
    top5_notebook_fraction: float = math.nan
    """Top-5 the way the paper's notebook counts it (``get_topk_acc``, table2): one hit for *every* top-5 concept
    equal to the target, so a concept string listed twice in the set (``broden_labels_clean`` has such) counts a
    unit twice; the paper's 86.14% is this number. ``top5_fraction`` counts a unit at most once."""
    similarity: str = ""
    """The similarity function the fc layer was scored with (the paper's rows are soft_wpmi)."""


def normalise_label(text: str) -> str:
    """The paper's Places matching rule: lower case, drop a Broden ``-s`` scene suffix, ``_`` -> space."""
    text = text.strip().lower()
    if text.endswith("-s"):
        text = text[:-2]
    return text.replace("_", " ")


def fc_self_check(
    result: DissectionResult,
    class_names: Sequence[str],
    *,
    layer: str = "fc",
    concept_embeddings: np.ndarray | None = None,
    class_embeddings: np.ndarray | None = None,
    match: str = "index",
    targets: Sequence[str | None] | None = None,
    concept_set: str = "",
    scorable_rule: str = "",
) -> FcSelfCheck:
    """Does each output unit get its own class as label?

    Args:
        result: a dissection that includes the final layer.
        class_names: name of output unit k (for ImageNet the full ``imagenet_labels.txt`` line, for Places365
            :func:`xai.dissect.probes.places365_class_names`).
        layer: the output layer's module name.
        concept_embeddings: (M, D) normalised CLIP text embeddings of ``result.concepts``.
        class_embeddings: (K, D) normalised CLIP text embeddings of ``class_names`` (the same array as
            ``concept_embeddings`` when the concept set is the class names).
        match: ``index`` (requires ``result.concepts == class_names``) or ``string``.
        targets: for ``string``: the paper's ground-truth string per unit, None where the unit is not scored
            (:func:`xai.dissect.paper.places_targets`); compared after
            :func:`xai.dissect.paper.process_word`. Without it, class names are compared after
            :func:`normalise_label` and a unit is scored when its class is in the concept set.
        concept_set, scorable_rule: recorded in the result.
    """
    dissection = result.layer(layer)
    if dissection.n_units != len(class_names):
        raise ValueError(f"{layer} has {dissection.n_units} units but {len(class_names)} class names were given")
    top = dissection.concept_ids
    if match == "index":
        if list(result.concepts) != list(class_names):
            raise ValueError("match='index' needs the class-name concept set; use match='string'")
        units = np.arange(dissection.n_units)
        top1 = top[:, 0] == units
        top5_hits = (top[:, :5] == units[:, None]).sum(axis=1)
        scored = np.ones(dissection.n_units, dtype=bool)
    elif match == "string" and targets is not None:
        from xai.dissect.paper import process_word

        if len(targets) != dissection.n_units:
            raise ValueError(f"{len(targets)} targets for {dissection.n_units} units")
        words = [process_word(concept) for concept in result.concepts]
        scored = np.array([target is not None for target in targets])
        hits = np.array(
            [
                [target is not None and words[i] == process_word(target) for i in top[unit, :5]]
                for unit, target in enumerate(targets)
            ]
        )
        top1, top5_hits = hits[:, 0], hits.sum(axis=1)
    elif match == "string":
        normalised = [normalise_label(concept) for concept in result.concepts]
        targets = [normalise_label(name) for name in class_names]
        scored = np.array([target in set(normalised) for target in targets])
        hits = np.array([[normalised[i] == targets[unit] for i in top[unit, :5]] for unit in range(len(targets))])
        top1, top5_hits = hits[:, 0], hits.sum(axis=1)
    else:
        raise ValueError("match must be 'index' or 'string'")
    cosine = math.nan
    if concept_embeddings is not None and class_embeddings is not None:
        label_vectors = np.asarray(concept_embeddings, np.float64)[top[:, 0]]
        cosine = float((label_vectors * np.asarray(class_embeddings, np.float64)).sum(axis=1).mean())
    n_scored = int(scored.sum())
    return FcSelfCheck(
        model_name=result.model_name,
        layer=layer,
        match=match,
        n_units=dissection.n_units,
        n_scored=n_scored,
        top1_fraction=float(top1[scored].mean()) if n_scored else math.nan,
        top5_fraction=float((top5_hits[scored] > 0).mean()) if n_scored else math.nan,
        top5_notebook_fraction=float(top5_hits[scored].mean()) if n_scored else math.nan,
        similarity=result.similarity,
        mean_clip_cosine=cosine,
        concept_set=concept_set,
        scorable_rule=scorable_rule,
    )
