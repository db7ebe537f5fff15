"""The ``ray:`` section of the config: which cluster ``executor: ray`` uses and how its workers are sized.

Validated with the rest of the config (:mod:`xai.config`), so a bad value is one line naming ``ray.<key>``. Reading
it imports nothing of Ray: ``executor: local`` never does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

ADDRESS = re.compile(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")
"""``host:port`` of a cluster's head (what ``ray start --head`` prints), optionally as a Ray Client ``ray://``."""


def _workers(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000):
        return value
    raise ValueError(f"got {value!r}; use 'auto' (one per GPU, else one per num_cpus_per_worker CPUs) or 1 to 10000")


def _gpus(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 16):
        return value
    raise ValueError(f"got {value!r}; use 'auto' (1 when the cluster has GPUs, else 0) or a number from 0 to 16")


class RaySettings(BaseModel):
    """Where ``executor: ray`` sends units (README, "On a cluster")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = "auto"
    """``auto``: ``$RAY_ADDRESS``, else the cluster ``ray start --head`` started on this machine, else a new local
    cluster for this run; ``local``: always a new local cluster; ``host:port``: the head of a running cluster."""
    workers: Annotated[Literal["auto"] | int, BeforeValidator(_workers)] = "auto"
    """Ray actors running units; ``auto``: one per GPU when the cluster has GPUs, else one per
    ``num_cpus_per_worker`` CPUs. Capped at what the cluster's resources fit."""
    num_cpus_per_worker: int = Field(1, ge=1, le=1024)
    """CPUs each worker reserves; it runs that many torch threads."""
    num_gpus_per_worker: Annotated[Literal["auto"] | float, BeforeValidator(_gpus)] = "auto"
    """GPUs each worker reserves (a fraction shares a GPU); ``auto``: 1 when the cluster has GPUs and the device is
    not ``cpu``, else 0."""
    local_cpus: int | None = Field(None, ge=1, le=4096)
    """CPUs of a local cluster started for the run (default: every CPU of this machine)."""
    max_retries: int = Field(3, ge=0, le=100)
    """Times a unit is sent again after its worker process died (killed, out of memory); an error raised by the
    unit itself (a bad input) is never retried."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value in ("auto", "local") or ADDRESS.fullmatch(value):
            return value
        raise ValueError(
            f"got {value!r}; use 'auto', 'local' or the head's host:port as `ray start --head` prints it "
            "(e.g. 10.0.0.5:6379)"
        )
