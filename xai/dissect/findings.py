"""Task 1's findings: short sentences generated from the computed summaries only (no hand-written number), each at
most two lines of the report; the per-layer numbers behind them are in the page's tables.

* :func:`answers`: the assignment's questions answered, one line each, with the topic that says where the evidence is
  (``model:<name>`` for a model's section, ``comparison``, ``categories``, ``self_check``);
* :func:`dissection_findings`: every finding, per model and layer, then the comparison and the self-checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from xai.dissect.analysis import FcSelfCheck, LayerSummary, ModelComparison, ModelSummary

if TYPE_CHECKING:
    from xai.dissect.paper import PaperRow

MODEL_TITLES = {"resnet18_imagenet": "ResNet18 (ImageNet)", "resnet18_places365": "ResNet18 (Places365)"}
"""Titles of the paper's models (presets); any other model goes by its display name."""
SHARED_NAMED = 1
"""Shared concepts a comparison sentence names (the table lists more)."""


def model_title(model: str) -> str:
    return MODEL_TITLES.get(model, model)


def _percent(fraction: float) -> str:
    return "n/a" if not math.isfinite(fraction) else f"{100 * fraction:.1f}%"


def _count(value: int) -> str:
    return f"{value:,}"


def deepest_conv(summary: ModelSummary, final_layer: str | None) -> LayerSummary | None:
    """The model's last dissected layer before its classifier (its deepest concepts), else its last layer."""
    convs = [layer for layer in summary.layers if layer.layer != final_layer] or list(summary.layers)
    return convs[-1] if convs else None


def _top(layer: LayerSummary) -> str:
    concept, count = layer.top_concepts[0]
    return f"'{concept}' ({_count(count)} of {_count(layer.n_units)})"


def _share(layer: LayerSummary, category: str) -> str:
    return _percent(dict(layer.category_counts).get(category, 0) / layer.n_units if layer.n_units else math.nan)


def answers(
    summaries: Mapping[str, ModelSummary],
    final_layers: Mapping[str, str | None],
    comparison: ModelComparison | None = None,
    checks: Sequence[FcSelfCheck] = (),
) -> list[tuple[str, str]]:
    """(topic, finding) pairs answering Task 1: which concept labels the most neurons of each model's deepest layer
    and how many clear the threshold; how many distinct concepts each model uses and how many the models share; how
    the label categories differ; and the final-layer self-checks."""
    found: list[tuple[str, str]] = []
    deepest = {model: deepest_conv(summary, final_layers.get(model)) for model, summary in summaries.items()}
    for model, layer in deepest.items():
        if layer is None or not layer.top_concepts:
            continue
        interpretable = (
            f"; {_percent(layer.interpretable_fraction)} clear the threshold" if layer.interpretable_count >= 0 else ""
        )
        found.append(
            (
                f"model:{model}",
                f"{model_title(model)} {layer.layer}: most neurons labelled {_top(layer)}{interpretable}.",
            )
        )
    overall = next((o for o in comparison.layers if o.layer == "all"), None) if comparison is not None else None
    if comparison is not None and overall is not None:
        found.append(
            (
                "comparison",
                f"Distinct concepts over all layers: {model_title(comparison.model_a)} {_count(overall.n_distinct_a)}, "
                f"{model_title(comparison.model_b)} {_count(overall.n_distinct_b)}; {_count(overall.n_shared)} shared "
                f"(Jaccard {overall.jaccard:.2f}).",
            )
        )
    else:
        for model, summary in summaries.items():
            per_layer = ", ".join(f"{layer.layer} {_count(layer.n_distinct)}" for layer in summary.layers)
            found.append((f"model:{model}", f"{model_title(model)}, distinct concepts per layer: {per_layer}."))
    shares = [
        f"{model_title(model)} {_share(layer, 'object')} object, {_share(layer, 'scene')} scene"
        for model, layer in deepest.items()
        if layer is not None and layer.n_units
    ]
    if shares:
        layers = sorted({layer.layer for layer in deepest.values() if layer is not None})
        found.append(("categories", f"Labels of {' / '.join(layers)}: {'; '.join(shares)}."))
    found += [("self_check", line) for check in checks for line in self_check_findings(check)]
    return found


def layer_findings(summary: ModelSummary, layer: LayerSummary) -> str:
    """One layer in one line: distinct concepts, interpretable share and the most frequent label (the largest
    category is in the layer's table; a finding is at most two lines)."""
    parts = [f"{model_title(summary.model_name)} {layer.layer}: {_count(layer.n_distinct)} distinct concepts"]
    if layer.interpretable_count >= 0:
        parts.append(f"{_percent(layer.interpretable_fraction)} interpretable")
    if layer.top_concepts:
        parts.append(f"most frequent {_top(layer)}")
    return "; ".join(parts) + "."


def model_findings(summary: ModelSummary) -> list[str]:
    """Each layer in one line, then the concepts its layers share."""
    sentences = [layer_findings(summary, layer) for layer in summary.layers]
    for layer_a, layer_b, shared, jaccard in summary.cross_layer:
        sentences.append(
            f"{model_title(summary.model_name)}: {_count(shared)} concepts label neurons in both {layer_a} and "
            f"{layer_b} (Jaccard {jaccard:.2f})."
        )
    return sentences


def comparison_findings(comparison: ModelComparison) -> list[str]:
    """Shared and distinct concepts of two models, per layer (the unique ones are in the table)."""
    a, b = model_title(comparison.model_a), model_title(comparison.model_b)
    sentences = []
    for overlap in comparison.layers:
        where = "All compared layers" if overlap.layer == "all" else overlap.pair
        named = ", ".join(repr(concept) for concept in overlap.shared[:SHARED_NAMED])
        examples = f", e.g. {named}" if named else ""
        sentences.append(
            f"{where}: {a} {_count(overlap.n_distinct_a)} concepts, {b} {_count(overlap.n_distinct_b)}; "
            f"{_count(overlap.n_shared)} shared (Jaccard {overlap.jaccard:.2f}){examples}."
        )
    return sentences


def self_check_findings(check: FcSelfCheck) -> list[str]:
    """The final-layer validity check in words."""
    sentence = (
        f"{model_title(check.model_name)} {check.layer} self-check: {_percent(check.top1_fraction)} of "
        f"{_count(check.n_scored)} scorable neurons labelled with their own class (top-5: "
        f"{_percent(check.top5_fraction)})"
    )
    if not math.isnan(check.mean_clip_cosine):
        sentence += f"; label-class CLIP cosine {check.mean_clip_cosine:.3f}"
    return [sentence + "."]


def paper_row(check: FcSelfCheck, probe_name: str, n_probe: int) -> tuple[PaperRow | None, str]:
    """The paper's self-check row comparable with ``check`` (same probe, similarity and scorable rule) and the
    sentence naming it, or None and why no row is comparable."""
    from xai.dissect import paper

    row = paper.comparable_row(
        check.model_name, probe_name, n_probe, similarity=check.similarity, scorable_rule=check.scorable_rule
    )
    if row is not None:
        return row, f"{row.model}, probe {row.probe} ({row.source})"
    published = ", ".join(f"{r.probe} ({r.n_probe:,} images)" for r in paper.PAPER_FC_ROWS[check.model_name])
    if check.similarity != paper.PAPER_SIMILARITY:
        why = f"scored with {check.similarity or 'an unrecorded similarity'}, the paper with soft_wpmi"
    elif check.match == "string" and check.scorable_rule != paper.PLACES_SCORABLE_RULE:
        why = (
            f"scorable classes by {check.scorable_rule or 'an unrecorded rule'}, the paper's by "
            f"{paper.PLACES_SCORABLE_RULE}"
        )
    else:
        why = f"this probe is {probe_name} ({n_probe:,} images), the paper's {published}"
    return None, f"none comparable: {why}"


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
