"""Tasks 2-3's findings: short sentences generated from the explanations (no hand-written number), each at most two
lines of the report, each with the topic of the section that holds its evidence.

A mean over images carries its 95% interval (:func:`xai.compare.intervals.interval`: Student's t below 10 images,
the studentised bootstrap from 10, none for one image); the per-image numbers are in the page's tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xai.compare.intervals import interval
from xai.explain.explained import ExplainArtifacts, MethodCost
from xai.explain.registry import METHODS

TOPICS = ("predictions", "lime", "cost")
"""What a finding is about: the section of the Tasks 2-3 page that holds its evidence."""


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _seconds(value: float) -> str:
    """As the report's tables print a time (``xai.report.page.fmt_seconds``'s units)."""
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def mean_with_interval(values: Sequence[float], bounds: tuple[float, float] | None = None) -> str:
    """``0.42 [0.30, 0.55]``: the mean over images and its 95% interval (the mean alone for one image)."""
    mean, low, high, _, _ = interval(list(values), bounds=bounds)
    bracket = f" [{_fmt(low)}, {_fmt(high)}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"{_fmt(mean)}{bracket}"


def costliest(costs: Sequence[MethodCost]) -> tuple[MethodCost, MethodCost] | None:
    """The most and the least expensive method per image (None without costs)."""
    if not costs:
        return None
    ordered = sorted(costs, key=lambda cost: cost.seconds)
    return ordered[-1], ordered[0]


def answers(explained: ExplainArtifacts) -> list[tuple[str, str]]:
    """(topic, finding) pairs answering Tasks 2-3: what was explained, how well LIME's surrogate fits and how stable
    its top superpixels are across seeds, and what each method costs."""
    if not explained.images:
        return [("predictions", "No image could be explained.")]
    first = explained.images[0]
    top1 = first.explanation.prediction.top1
    probability = float(first.explanation.prediction.probabilities[0])
    cams = [method for method in explained.methods if METHODS[method].family != "lime"]
    found = [
        (
            "predictions",
            f"{len(explained.images)} image(s) explained with {len(explained.methods)} methods ({len(cams)} CAM(s)); "
            f"e.g. {first.name} is predicted '{explained.categories[top1]}' (p = {_fmt(probability, 3)}).",
        )
    ]
    limes = [item.explanation.lime for item in explained.images if item.explanation.lime is not None]
    if limes:
        fit = mean_with_interval([lime.score for lime in limes], bounds=(-math.inf, 1.0))  # R² never exceeds 1
        found.append(
            ("lime", f"LIME's surrogate fits its own samples with weighted R² {fit} (mean, n = {len(limes)} images).")
        )
        stabilities = [item.explanation.stability for item in explained.images if item.explanation.stability]
        if stabilities:
            k, seeds = stabilities[0].ks[0], len(stabilities[0].seeds)
            overlap = mean_with_interval([stability.mean_jaccard[k] for stability in stabilities], bounds=(0.0, 1.0))
            found.append(
                (
                    "lime",
                    f"LIME's top-{k} superpixels across {seeds} sampling seeds: Jaccard {overlap} (mean, "
                    f"n = {len(stabilities)} images).",
                )
            )
    extremes = costliest(explained.costs)
    if extremes is not None:
        dearest, cheapest = extremes
        found.append(
            (
                "cost",
                f"Most expensive: {METHODS[dearest.method].title}, {_seconds(dearest.seconds)} and "
                f"{dearest.forward_passes:,} forward passes per image; cheapest: {METHODS[cheapest.method].title}, "
                f"{_seconds(cheapest.seconds)}.",
            )
        )
    return found
