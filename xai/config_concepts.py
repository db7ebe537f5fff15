"""The ``concepts:`` section of a config: the settings of "why this prediction, in concepts" (issue #21), validated
on load, turned into the domain's :class:`xai.concepts.ConceptSettings` by :meth:`ConceptsConfig.settings`.

Its own module so that :mod:`xai.config` stays small; like it, glue (no key holds this module's code: every value
it passes on is in the keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from xai.concepts import ConceptSettings

RANDOM_SETS = 100
"""The config's number of random unit sets per K and per concept (the domain's default is 200): a row is one
forward of the layers after the target, so the cost follows the head. Measured on this project's CPU (one thread,
random weights, one 224x224 image, the other settings at their defaults, CLIP's crops left out): resnet50 at
``layer4[-1]`` 1.5 s (a global-average-pool + linear head: a row is one linear layer), mobilenet_v3_small at
``features[-1]`` 0.6 s at 100 sets and 1.1 s at 200 (only its classifier runs after the target), vit_b_16 at its
last block 112 s at 100 sets (223 s at 200: every row runs that block on 197 tokens). 100 sets still resolve
p = 1/101 < 0.01; raise it for finer p-values where the head is linear or a GPU is at hand."""


class ConceptsConfig(BaseModel):
    """``concepts:``; every key is a :class:`xai.concepts.ConceptSettings` field (see there for the formulas)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["auto", "linear_head", "integrated_gradients", "gradient_x_activation"] = "auto"
    """How unit contributions are computed: ``auto`` is exact for a global-average-pool + linear head and integrated
    gradients in activation space otherwise."""
    steps: int = Field(32, ge=1, le=512)
    """Integrated-gradients quadrature nodes (other heads only)."""
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    """Unit-set sizes K removed (and kept alone) against random sets of K units."""
    random_sets: int = Field(RANDOM_SETS, ge=10, le=10_000)
    """Random unit sets per K and per concept (:data:`RANDOM_SETS`)."""
    permutations: int = Field(1000, ge=100, le=100_000)
    """Label permutations of the naming test (arithmetic only, no model call)."""
    shown: int = Field(5, ge=1, le=20)
    """Concepts (largest positive bars) given the concept-level, presence and agreement checks."""
    top_fraction: float = Field(0.2, gt=0, lt=1)
    """Share of pixels of a concept's region (presence crop, agreement with the CAMs)."""
    random_crops: int = Field(4, ge=0, le=64)
    """Control crops per concept of the presence check (each one CLIP image forward)."""
    rank_fraction: float = Field(0.05, gt=0, le=1)
    """A label is confirmed present only within CLIP's top ``rank_fraction`` of the concept set on its region."""
    lime_k: int = Field(5, ge=1, le=100)
    """LIME's top-k superpixels for the agreement IoU."""

    @field_validator("ks")
    @classmethod
    def _positive_sizes(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"got {list(ks)}; give one or more unit-set sizes of at least 1, e.g. [1, 4, 16]")
        return tuple(sorted(set(ks)))

    def settings(self) -> ConceptSettings:
        """The domain's settings object (every field belongs in a cache key)."""
        from xai.concepts import ConceptSettings

        return ConceptSettings(**self.model_dump())
