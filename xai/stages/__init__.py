"""Stage glue: each module turns the config and inputs into cached artifacts by calling the pure functions of
``xai.explain``, ``xai.dissect`` and ``xai.compare``. Every stage module offers ``describe(context)`` (the plan
line), ``run(context)`` (compute or fetch from the cache) and ``load_cached(context)`` (fetch only, or None).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xai.cache import A
from xai.models import clip_weights_id

if TYPE_CHECKING:
    from xai.classifiers import ClassifierSpec
    from xai.config import Config
    from xai.pipeline import RunContext


class NotCachedError(LookupError):
    """Raised in load-only mode when an artifact is not in the cache."""


@dataclass(frozen=True)
class StageCache:
    """One stage's view of the run's artifact cache: ``get`` returns the artifact for a key, computing it on a
    miss, or, in ``load_only`` mode (rendering a report from whatever exists), raising :class:`NotCachedError`."""

    context: RunContext
    stage: str
    load_only: bool = False

    def contains(self, parts: dict[str, Any]) -> bool:
        return self.context.cache.contains(self.stage, parts)

    def get(self, kind: type[A], parts: dict[str, Any], compute: Callable[[], A]) -> A:
        """The ``kind`` artifact keyed by ``parts``; ``compute()`` runs only on a miss outside load-only mode."""
        if self.load_only and not self.contains(parts):
            raise NotCachedError(parts.get("piece", self.stage))
        return self.context.cache.get_or_compute(self.stage, parts, compute, kind)


def weights_key(config: Config, model: ClassifierSpec | str) -> str:
    """What identifies a model's weights in cache keys, known without loading the model: ``random(seed=N)``
    in random mode, a user checkpoint's ``sha256:<hex>``, a published file's ``filename:known_hash`` (torchvision's
    from the weights enum member, e.g. ``resnet50-11ad3fa6.pth:sha256-prefix:11ad3fa6``), CLIP's local file hash.

    ``model`` is a spec or ``"clip"`` (a preset name such as ``resnet18_imagenet`` is accepted too)."""
    from xai.classifiers import resolve_weights, weight_file

    if config.weights == "random":
        return f"random(seed={config.seed})"
    if model == "clip":  # no published checksum: the local file's own hash
        return clip_weights_id(config.weights_dir)
    spec = spec_named(config, model) if isinstance(model, str) else model
    if spec.checkpoint is not None:
        from xai.models import file_sha256

        return f"{spec.checkpoint.name}:sha256:{file_sha256(spec.checkpoint)}"
    weight = spec.published or weight_file(spec.name, resolve_weights(spec.name, spec.weights))
    return f"{weight.filename}:{weight.known_hash}"


def spec_named(config: Config, name: str) -> ClassifierSpec:
    """The spec whose ``display_name`` is ``name``: the explained model, a ``dissect.models`` entry or a preset
    (for callers that still hold a name; new code passes specs)."""
    from xai.classifiers import PRESETS, ClassifierSpec

    for spec in (config.explain.spec(), *config.dissect.specs()):
        if spec.display_name == name:
            return spec
    return PRESETS.get(name) or ClassifierSpec(name, label=name)
