"""The pipeline's stages: one registry, :data:`STAGES`, that the command line, config validation, the plan and the
runner read.

A stage is glue: a module under ``xai.stages`` with the three functions of :class:`xai.context.Stage`, turning the
run plan and inputs into cached artifacts by calling the pure functions of ``xai.explain``, ``xai.dissect`` and
``xai.compare``.
An entry names its module (imported on use, so reading the registry pulls in no torch) and the stages whose artifacts
it reads (``needs``): the runner runs or loads those first, so no stage calls another.

This module is a leaf: it imports nothing of ``xai``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class StageEntry:
    name: str
    title: str
    """What the stage computes, for ``--help``."""
    module: str
    """The module implementing :class:`xai.context.Stage`."""
    needs: tuple[str, ...] = ()
    """Stages whose artifacts this one reads."""

    def implementation(self) -> ModuleType:
        """The stage's module: it has the three functions of :class:`xai.context.Stage`."""
        return importlib.import_module(self.module)


STAGES: dict[str, StageEntry] = {
    entry.name: entry
    for entry in (
        StageEntry("dissect", "CLIP-Dissect of the dissected models (Task 1)", "xai.stages.dissect"),
        StageEntry("explain", "LIME and the CAMs on each image (Tasks 2-3)", "xai.stages.explain"),
        StageEntry("compare", "LIME vs CAM agreement and faithfulness (Task 4)", "xai.stages.compare", ("explain",)),
        StageEntry(
            "concepts",
            "Why each prediction, in concepts: the target layer's labelled units",
            "xai.stages.concepts",
            ("explain",),
        ),
    )
}
"""Every stage, in run order (a stage comes after the stages it needs)."""


def run_order(stages: Iterable[str]) -> tuple[str, ...]:
    """``stages`` with the stages they need (transitively), in registry order."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for need in STAGES[name].needs:
                add(need)

    for name in stages:
        add(name)
    return tuple(name for name in STAGES if name in wanted)
