"""The ``compare:`` section of a config (Task 4 and its powered sample ``compare.sample``), validated on load; and
the method-name check every section uses (:func:`known_methods`).

Its own module so that :mod:`xai.config` stays small; like it, glue (no key holds this module's code: every value
it passes on is in the keys).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from xai.explain.registry import METHODS


class Section(BaseModel):
    """A config section: unknown keys are errors, values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def known_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """``methods`` if every one is in the method registry, else a ValueError listing the registered names."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; allowed: {', '.join(METHODS)}")
    return methods


def _required_cams() -> tuple[str, ...]:
    return tuple(name for name, info in METHODS.items() if info.required and info.family == "cam")


class SampleConfig(Section):
    """``compare.sample``: N more images for Task 4, on which only LIME, the chosen CAMs and faithfulness run."""

    images: int = Field(0, ge=0, le=100_000)
    """How many (0: no sample). Hundreds suit a GPU; see configs/ for a CPU-sized one."""
    source: str = "imagenet-samples"
    """``imagenet-samples`` (the 1000 ImageNet sample images, one per class, without the ten task images) or a
    folder of images."""
    seed: int = 0
    """Which images are drawn."""
    methods: tuple[str, ...] = Field(default_factory=_required_cams)
    """The CAMs computed on the sample (default: the assignment's)."""
    lime_samples: int | None = Field(None, ge=10, le=100_000)
    """LIME's perturbation samples per seed (None: ``explain.lime.num_samples``)."""
    lime_seeds: int = Field(1, ge=1, le=20)
    """LIME seeds per image: more images beat more seeds for the comparison's tests."""
    faithfulness_steps: int | None = Field(None, ge=2, le=1024)
    """Deletion/insertion steps (None: ``compare.faithfulness_steps``)."""
    cross_image_others: int = Field(30, ge=1, le=100_000)
    """Other images each image's cross-image null uses (its cost grows with images x this)."""

    @field_validator("methods")
    @classmethod
    def _cams_only(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        known_methods(methods)
        if not methods or any(METHODS[m].family != "cam" for m in methods):
            raise ValueError("give one or more CAM methods (LIME always runs on the sample)")
        return methods


class CompareConfig(Section):
    top_k: tuple[int, ...] = (5, 10)
    thresholds: tuple[float, ...] = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    faithfulness_steps: int = Field(112, ge=2, le=1024)
    """Deletion/insertion steps per curve; 112 is the coarsest such that it and every finer candidate keep the
    measured AUC error against the reference's 224 within 0.005, worst case over a synthetic planted model at
    softmax temperatures 300, 30, 10 and 3 (xai/compare/step_error.json, written by bench/bench_step_error.py;
    56 steps reach 0.0054 at temperature 3)."""
    random_draws: int = Field(3, ge=1, le=100)
    """Smooth random maps per image in the faithfulness baseline."""
    null_draws: int = Field(2000, ge=100, le=100_000)
    """Draws of the superpixel null per image x method x k."""
    sanity_check: bool = True
    sanity_methods: tuple[str, ...] = Field(default_factory=lambda: tuple(METHODS))
    """Every registered method by default (those not in ``explain.methods`` are left out), in registry order."""
    sanity_images: int = Field(3, ge=1, le=100)
    sanity_lime_samples: int = Field(300, ge=10, le=100_000)
    """LIME's cheaper budget under randomisation (seven model states per image)."""
    sample: SampleConfig = SampleConfig()
    """The powered sample (:class:`SampleConfig`)."""

    @field_validator("sanity_methods")
    @classmethod
    def _known_sanity_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        return known_methods(methods)
