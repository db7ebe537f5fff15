"""The executors a run may use (``executor:`` in the config, ``--executor`` on the command line): ``local`` runs units
in this process (:class:`xai.units.LocalExecutor`), ``ray`` on a Ray cluster (:mod:`xai.executors.ray`, imported
only when chosen, so a local run never imports Ray)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xai.context import RunContext
    from xai.executor import Executor


def make_executor(context: RunContext) -> Executor:
    """The executor the run's config chooses, connected (a cluster's address is checked here, before any work)."""
    from xai.units import LocalExecutor

    config = context.plan.config
    if config.executor == "local":
        return LocalExecutor(context)
    from xai.executors.ray import RayExecutor

    return RayExecutor(context.plan, config.ray, cache_root=context.cache.root)
