"""Stage glue: each module turns the config and inputs into cached artifacts by calling the pure functions of
``xai.explain``, ``xai.dissect`` and ``xai.compare``. Every stage module offers ``describe(context)`` (the plan
line), ``run(context)`` (compute or fetch from the cache) and ``load_cached(context)`` (fetch only, or None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xai.models import WEIGHT_FILES, clip_weights_id


class NotCachedError(LookupError):
    """Raised in load-only mode when an artifact is not in the cache."""


def cached(context: Any, stage: str, parts: dict[str, Any], compute: Callable[[], Any], kind: type, *,
           load_only: bool = False) -> Any:
    """The artifact for ``parts`` from the cache, computed on a miss; in load-only mode a miss raises instead."""
    if load_only and not context.cache.contains(stage, parts):
        raise NotCachedError(parts.get("piece", stage))
    return context.cache.get_or_compute(stage, parts, compute, kind)


def weights_key(config: Any, model: str) -> str:
    """What identifies a model's weights in cache keys, known without loading the model."""
    if config.weights == "random":
        return f"random(seed={config.seed})"
    if model == "clip":  # no published checksum: the local file's own hash
        return clip_weights_id(getattr(config, "weights_dir", None))
    return f"{WEIGHT_FILES[model].filename}:{WEIGHT_FILES[model].known_hash}"
