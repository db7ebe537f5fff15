"""The plan's wall-time estimate: per stage, its image forward passes times the seconds per image this machine
takes for each network they run through, as the batch-size measurement found (:mod:`xai.batching`).

    estimate(stage) = sum over networks n of passes(stage, n) x seconds_per_image(n)

The passes are the plan's own counts, from scratch (nothing cached): explain ``images x`` the explained model's
:attr:`~xai.plan.ExplainPlan.forward_passes_per_image`; compare the deletion/insertion curves of every map
(:func:`xai.compare.faithfulness.forward_passes`), the sanity check's cascade and the powered sample; dissect one
pass of every probe image through CLIP and through each model; concepts the explained model's dissection at its
target layer, its unit removals and CLIP's crops. It is a floor: LIME's segmentation and ridge fits, gradients,
CLIP's text encoding, figures and the report come on top (the explanations page compares each method's time with
this floor). A network with no measurement on this machine makes its stage "unknown until measured"
(:func:`xai.estimate_work.seconds_per_image` says which are timed and when).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

HOURS_FOR_QUICK = 1.0
"""On a CPU, a plan estimated above this many hours suggests configs/quick.yaml."""


@dataclass(frozen=True)
class Network:
    """What forward passes run through, as the batch-size measurement keys it (:func:`xai.batching.cache_key`)."""

    name: str
    """How the plan names it: ``resnet50``, ``CLIP ViT-B/16``."""
    model_id: str
    """The measurement's model id: ``resnet50:channels_last``, ``clip:encode_image``."""
    input_shape: tuple[int, ...]
    """One image's shape, e.g. ``(3, 224, 224)``."""


@dataclass(frozen=True)
class StageWork:
    """One stage's image forward passes per network (from scratch)."""

    stage: str
    passes: dict[Network, int] = field(default_factory=dict)

    def add(self, network: Network, passes: int) -> None:
        self.passes[network] = self.passes.get(network, 0) + int(passes)


@dataclass(frozen=True)
class StageEstimate:
    stage: str
    seconds: float | None
    """None when a network with passes has no measurement."""
    parts: tuple[tuple[Network, int, float | None], ...]
    """(network, passes, seconds per image or None) for each network with passes."""

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(network.name for network, _, seconds in self.parts if seconds is None)


def estimate(work: StageWork, per_image_s: Mapping[str, float | None]) -> StageEstimate:
    """``work``'s seconds: passes x seconds per image, summed over its networks (``per_image_s`` is keyed by
    :attr:`Network.model_id`); None if any network with passes lacks a time."""
    parts = tuple(
        (network, passes, per_image_s.get(network.model_id)) for network, passes in work.passes.items() if passes > 0
    )
    known = all(seconds is not None for _, _, seconds in parts)
    total = sum(passes * seconds for _, passes, seconds in parts if seconds is not None) if known else None
    return StageEstimate(work.stage, total, parts)


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``, ``2.5 days``: what a person plans around, not a precise time."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes:02d} min"
    return f"{seconds / 86400:.1f} days"


def _per_image(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def stage_line(result: StageEstimate) -> str:
    """``estimated 2 h 05 min on this machine (resnet50: 88,760 passes x 85 ms/image)``, or why it is unknown."""
    if not result.parts:
        return "estimated: no image forward passes"
    terms = ", ".join(
        f"{network.name}: {passes:,} passes x {_per_image(seconds) if seconds is not None else '?'}/image"
        for network, passes, seconds in result.parts
    )
    if result.seconds is None:
        return f"estimate unknown until measured ({', '.join(result.unknown)} not timed on this machine yet; {terms})"
    return f"estimated {format_duration(result.seconds)} on this machine, from scratch ({terms})"


def summary_lines(results: Sequence[StageEstimate], *, device_type: str, config_name: str) -> list[str]:
    """The total over the stages with an estimate, and the suggestion to start with configs/quick.yaml when a CPU
    would take more than :data:`HOURS_FOR_QUICK` hours on this config."""
    known = [result for result in results if result.seconds is not None]
    if not known:
        return []
    total = sum(result.seconds or 0.0 for result in known)
    missing = [result.stage for result in results if result.seconds is None]
    lines = [
        f"estimated wall time: {format_duration(total)} of forward passes"
        + (f" (plus {', '.join(missing)}: not measured yet)" if missing else "")
        + "; segmentation, gradients, figures and the report come on top"
    ]
    if device_type == "cpu" and total > HOURS_FOR_QUICK * 3600 and config_name != "quick":
        lines.append(
            "note: that is more than an hour on this CPU. For a first report run --config configs/quick.yaml (the "
            "same analyses at smaller budgets), or run this config on a CUDA GPU (--device cuda)."
        )
    return lines
