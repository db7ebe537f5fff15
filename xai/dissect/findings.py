"""Findings sentences for the report, generated from computed summaries only (no hand-written numbers)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from xai.dissect.analysis import FcSelfCheck, ModelComparison, ModelSummary


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def model_findings(summary: ModelSummary) -> list[str]:
    """Most frequent concepts, distinct counts, interpretable fractions and categories of one model."""
    sentences = []
    for layer in summary.layers:
        if layer.top_concepts:
            concept, count = layer.top_concepts[0]
            sentences.append(
                f"{summary.model_name}: the most frequent {layer.layer} concept is '{concept}' "
                f"({count} of {layer.n_units} neurons); {layer.n_distinct} distinct concepts label its "
                f"{layer.n_units} neurons, and {_percent(layer.duplicate_label_fraction)} of them share "
                f"their "
                f"label with another neuron of the layer."
            )
        if layer.interpretable_count >= 0:
            sentences.append(
                f"{summary.model_name} {layer.layer}: {layer.interpretable_count} of {layer.n_units} neurons "
                f"({_percent(layer.interpretable_fraction)}) score above the shuffled-probe threshold "
                f"{layer.threshold:.3f} (95th percentile of the null)."
            )
        categories = [(name, count) for name, count in layer.category_counts if name != "other" and count]
        if categories:
            name, count = max(categories, key=lambda item: (item[1], item[0]))
            sentences.append(
                f"{summary.model_name} {layer.layer}: among categorised labels, '{name}' is the largest "
                f"category ({count} of {layer.n_units} neurons)."
            )
    for layer_a, layer_b, shared, jaccard in summary.cross_layer:
        sentences.append(
            f"{summary.model_name}: {shared} concepts label neurons in both {layer_a} and {layer_b} "
            f"(Jaccard {jaccard:.2f})."
        )
    return sentences


def comparison_findings(comparison: ModelComparison) -> list[str]:
    """Shared and unique concepts of two models, per layer."""
    sentences = []
    for overlap in comparison.layers:
        where = "over all compared layers" if overlap.layer == "all" else f"in {overlap.pair}"
        sentence = (
            f"{where.capitalize()}, {comparison.model_a} uses {overlap.n_distinct_a} distinct concepts and "
            f"{comparison.model_b} {overlap.n_distinct_b}; they share {overlap.n_shared} "
            f"(Jaccard {overlap.jaccard:.2f}), {overlap.n_unique_a} are unique to {comparison.model_a} and "
            f"{overlap.n_unique_b} to {comparison.model_b}."
        )
        if overlap.shared:
            sentence += f" Most common shared concepts: {', '.join(repr(c) for c in overlap.shared[:5])}."
        sentences.append(sentence)
    return sentences


def self_check_findings(check: FcSelfCheck) -> list[str]:
    """The final-layer validity check in words."""
    sentence = (
        f"{check.model_name} {check.layer} self-check: {_percent(check.top1_fraction)} of {check.n_scored} "
        f"scorable output neurons are labelled with their own class name "
        f"(top-5: {_percent(check.top5_fraction)})"
    )
    if not math.isnan(check.mean_clip_cosine):
        sentence += f"; mean CLIP text cosine between label and class name {check.mean_clip_cosine:.3f}"
    return [sentence + "."]


def dissection_findings(
    summaries: Sequence[ModelSummary],
    comparison: ModelComparison | None = None,
    checks: Sequence[FcSelfCheck] = (),
) -> list[str]:
    """All findings: per model, then the comparison, then the final-layer self-checks."""
    sentences = [sentence for summary in summaries for sentence in model_findings(summary)]
    if comparison is not None:
        sentences += comparison_findings(comparison)
    for check in checks:
        sentences += self_check_findings(check)
    return sentences
