"""Explanations of small images by the code the pipeline runs (:func:`xai.stages.explain.explain_one`), for tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from xai.cache import ArtifactCache
from xai.config import validate
from xai.context import InputImage, RunContext
from xai.explain.artifacts import ImageExplanation
from xai.plan import make_plan
from xai.stages import explain as explain_stage


def explain_context(
    cache_dir: Path,
    model: nn.Module,
    *,
    methods: list[str],
    num_samples: int,
    stability_seeds: int,
    seed: int = 0,
    batch_size: int = 16,
) -> RunContext:
    """A RunContext whose explain config is the given one and whose ``resnet50`` is ``model`` (a tiny net)."""
    config = validate(
        {
            "weights": "random",
            "seed": seed,
            "stages": ["explain"],
            "cache_dir": str(cache_dir),
            "explain": {
                "methods": methods,
                "batch_size": batch_size,
                "lime": {"num_samples": num_samples, "stability_seeds": stability_seeds},
            },
        }
    )
    context = RunContext(make_plan(config), ArtifactCache(config.cache_dir), torch.device("cpu"), quiet=True)
    context.classifier = lambda _model: SimpleNamespace(module=model)  # type: ignore[method-assign]
    return context


def input_image(pixels: np.ndarray, name: str = "planted") -> InputImage:
    """``pixels`` as a pipeline input; its cache identity is a hash of the pixels."""
    return InputImage(name, Path(f"{name}.png"), hashlib.sha256(pixels.tobytes()).hexdigest(), pixels)


def explain_one(context: RunContext, pixels: np.ndarray, *, load_only: bool = False) -> ImageExplanation:
    return explain_stage.explain_one(context, input_image(pixels), load_only=load_only)
