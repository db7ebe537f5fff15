"""Findings of "why this prediction, in concepts": short sentences generated from the concept explanations and their
summary (no hand-written number), each at most two lines of the report.

* :func:`image_answers`: one image's answers (its Concepts tab opens with them): which concept carries the logit,
  whether removing the explanation's units changes the prediction more than random units, whether it is named right.
* :func:`summary_answers`: the same questions across images: medians and shares with their 95% intervals.
* :func:`bar_sentence`: what a bar is, with the numbers of this layer and image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xai.concepts.artifacts import ConceptArtifacts
from xai.concepts.explanation import ConceptExplanation
from xai.concepts.summary import ConceptSummary

SHARE_SENTENCES = {
    "flipped": "removing up to the largest K units changes the top-1 class",
    "top_concept_beats_random": "the top concept's units beat random units of its size (p ≤ 0.05)",
    "naming_beats_permutation": "the naming concentrates the evidence beyond shuffled labels (p ≤ 0.05)",
    "top_concept_present": "CLIP confirms the top concept on its region",
}
"""The shares of images the across-images answers state, in order: faithful first, then named right."""


def _share(value: float) -> str:
    """A share as a percentage with three significant digits (a random-weight bar can hold 0.035%)."""
    return "n/a" if not math.isfinite(value) else f"{100 * value:.3g}%"


def _p(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def bar_sentence(artifacts: ConceptArtifacts, explanation: ConceptExplanation) -> str:
    """What a bar is, with the numbers of this layer and image (how many units a bar holds)."""
    labels = artifacts.labels
    sizes = sorted(bar.n_units for bar in explanation.bars.bars)
    held = (
        f"here the {len(sizes)} labelled bars hold {sizes[0]} to {sizes[-1]} unit(s) (median {sizes[len(sizes) // 2]})"
        if sizes
        else "here no unit clears it, so every contribution is in the unlabelled bar"
    )
    return (
        f"A bar sums the contributions c_u of the units whose CLIP-Dissect label is that concept and whose label "
        f"score clears Task 1's interpretability threshold for `{artifacts.layer}` ({labels.threshold:.4g}, the "
        f"95th percentile of its scores on shuffled probe images; {labels.n_reliable:,} of "
        f"{labels.n_units:,} units clear it); {held}. The rest is one bar, the units without a reliable label."
    )


def image_answers(explanation: ConceptExplanation) -> list[str]:
    """One image: the top concept's share, whether the explanation's units matter more than random ones, and
    whether the top concept is named right."""
    bars, faith = explanation.bars, explanation.faithfulness
    top = bars.top(1)
    found = []
    if top:
        found.append(
            f"Top concept '{top[0].concept}' ({top[0].n_units} unit(s)) carries {_share(top[0].share)} of Σ|c_u|; "
            f"the units without a reliable label {_share(bars.unlabelled.share)}."
        )
    else:
        found.append(f"No unit has a reliable label: the unlabelled units carry {_share(bars.unlabelled.share)}.")
    flip = (
        f"removing the top {faith.flip_k} unit(s) changes the top-1 class"
        if faith.flip_k > 0
        else f"removing up to {faith.flip_search} units never changes the top-1 class"
    )
    removal = explanation.concept_removals[0] if explanation.concept_removals else None
    versus = (
        f"; the top concept's units vs as many random units: p = {_p(removal.p_margin)}" if removal is not None else ""
    )
    found.append(f"Faithful? {flip[0].upper()}{flip[1:]}{versus}.")
    presence = explanation.presence[0] if explanation.presence else None
    permutation = f"naming vs shuffled labels p = {_p(explanation.label_permutation.p_value)}"
    if presence is not None and not presence.excluded:
        seen = "confirms" if presence.confirmed else "does not confirm"
        found.append(
            f"Named right? CLIP {seen} '{presence.concept}' on its region (rank {presence.region_rank:,} of "
            f"{presence.n_concepts:,}); {permutation}."
        )
    else:
        found.append(f"Named right? {permutation[0].upper()}{permutation[1:]}.")
    return found


def summary_answers(summary: ConceptSummary, groups: Sequence[str] = ("all",)) -> list[str]:
    """Across images (group ``all``): the top concept's median share and each check's share of images, with their
    95% intervals (order-statistic for the median, Clopper-Pearson for a share)."""
    found = []
    median = next((row for row in summary.medians if row.metric == "top_concept_share" and row.group in groups), None)
    if median is not None and median.n:
        bounds = (
            f" [{_share(median.low)}, {_share(median.high)}]"
            if math.isfinite(median.low)
            else " (no interval below 6 images)"
        )
        found.append(f"The top concept's share of Σ|c_u|: median {_share(median.median)}{bounds}, n = {median.n}.")
    for metric, sentence in SHARE_SENTENCES.items():
        share = next((row for row in summary.shares if row.metric == metric and row.group in groups), None)
        if share is None or not share.n:
            continue
        found.append(
            f"On {_share(share.share)} [{_share(share.low)}, {_share(share.high)}] of images "
            f"({share.count}/{share.n}), {sentence}."
        )
    return found
