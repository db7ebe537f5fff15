"""Unit functions with known answers for the executor tests (:mod:`xai.executor`), and a small run config that has
every kind of unit the pipeline sends (explain, compare per image and the sanity check, probe-pass shards).

A worker imports these by name (``tests.helpers.units:square``): a local Ray cluster's workers start in the
driver's working folder, the repository root, as the tests do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xai.config import ConfigError
from xai.dissect.artifacts import ArrayArtifact

SQUARE = "tests.helpers.units:square"
FAILS = "tests.helpers.units:fails"
USER_ERROR = "tests.helpers.units:user_error"
WHO = "tests.helpers.units:who"


def square_parts(number: int) -> dict[str, Any]:
    """The cache key parts of ``number``'s piece."""
    return {"piece": "square", "number": number}


def square(context: Any, number: int, workspace: Any) -> int:
    """One piece: ``number`` squared, as an array; returns the square read back from the workspace."""
    found = workspace.get(
        ArrayArtifact, square_parts(number), lambda: ArrayArtifact({"value": np.array([number * number])})
    )
    return int(found.arrays["value"][0])


def fails(context: Any, counter: str, workspace: Any) -> None:
    """A unit that fails on its input: appends a line to ``counter`` (one per attempt), then raises."""
    with Path(counter).open("a") as stream:
        stream.write(f"{os.getpid()}\n")
    raise ValueError("this input cannot be processed")


def user_error(context: Any, inputs: Any, workspace: Any) -> None:
    raise ConfigError("explain.model: a mistake the user can fix; do this instead")


def who(context: Any, inputs: Any, workspace: Any) -> tuple[int, str]:
    """The worker's process id and the device its context computes on."""
    return os.getpid(), str(context.device)


def every_unit_config(tmp_path: Path, name: str, **extra: Any) -> dict[str, Any]:
    """The cheapest run that still sends every kind of unit: two task images with three methods and small budgets
    (two explain units, two compare units, the sanity unit and two powered-sample units), and a 20-image probe set
    in batches of 8 with a 12-concept list (three probe shards per dissection on two workers, one locally; the
    concepts stage dissects the explained model too). Seeded random weights, explicit batch
    sizes (a measured size could differ between the two runs)."""
    concepts = tmp_path / "concepts.txt"
    concepts.write_text("dog\ncat\ncar\ntree\nwater\nsky\ngrass\nbuilding\nperson\nroad\nstriped\nred\n")
    return {
        "name": "every-unit",
        "weights": "random",
        "seed": 0,
        "images": "task",
        "max_images": 2,
        "output_dir": str(tmp_path / name / "docs"),
        "cache_dir": str(tmp_path / name / "cache"),
        "explain": {
            "methods": ["lime", "gradcam", "eigencam"],
            "batch_size": 16,
            "lime": {"num_samples": 32, "stability_seeds": 2},
        },
        "compare": {
            "faithfulness_steps": 4,
            "random_draws": 1,
            "null_draws": 100,
            "sanity_images": 1,
            "sample": {"images": 2, "lime_samples": 32, "faithfulness_steps": 4, "cross_image_others": 1},
        },
        "dissect": {
            "batch_size": 8,
            "probe": "imagenet-samples",
            "probe_limit": 20,
            "concepts": str(concepts),
            "layers": ["layer4"],
        },
        **extra,
    }
