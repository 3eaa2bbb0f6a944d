"""A report's `config`: how a run was made — the server it ran against, its traffic, a simulation's inputs
(part of the report schema, `loadlab/schema.py`, which re-exports these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loadlab.arrival_modes import ARRIVAL_MODES


class _Model(BaseModel):
    # as in the schema: a typo in a producer is an error, not a dropped figure
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Model):
    """The server a measurement ran against (as started by the tool, or as the user described it)."""

    url: str | None = None
    workers: int | None = None
    max_batch: int | None = None
    cache_ttl_s: float | None = None
    model_source: str | None = None
    cpus: list[int] | None = None        # CPUs the model worker was pinned to (None = not pinned)
    threads: int | None = None           # its torch (OpenMP) thread pool, read from the process
    autoscaling: dict[str, Any] | None = None   # replicated targets: the autoscaler's settings


class LoadConfig(_Model):
    """The traffic of a measured run or of a replayed one."""

    mode: Literal["closed", "burst", "open", "trace", "single", "coldstart"]
    users: list[int] | None = None           # closed loop / burst: users per stage
    rates_per_s: list[float] | None = None   # open loop: arrival rate per stage
    arrival: Literal[ARRIVAL_MODES] = "closed"      # loadlab.arrival_modes
    burstiness: float | None = None
    seed: int | None = None
    trace: str | None = None
    time_scale: float | None = None
    max_in_flight: int | None = None
    stage_seconds: float | None = None
    jobs_per_user: int | None = None
    runs: int | None = None
    warmup: int | None = None
    cpus: list[int] | None = None            # CPUs the load generator was pinned to


class SimulationConfig(_Model):
    """The inputs of a simulated report (all model inputs, none measured here)."""

    seed: int = 1
    replications: int | None = None
    monthly: int | None = None
    days: float | None = None
    case_mix: dict[str, float] | None = None
    cache_hit_ratio: float | None = None
    cache_ttl_s: float | None = None
    hour_weights: list[float] | None = None
    day_weights: list[float] | None = None
    prices: dict[str, Any] | None = None
    measured: str | None = None       # validation: the measured report replayed
    calibration: str | None = None    # validation: the separate run the service times came from


class RunConfig(_Model):
    driver: str                          # locust, bench single, simulator run, ...
    cases: str | None = None             # the --cases spec
    slo_e2e_s: float | None = None
    server: ServerConfig | None = None
    load: LoadConfig | None = None
    simulation: SimulationConfig | None = None
    outputs: dict[str, str] = Field(default_factory=dict)   # other files of the run (Locust CSV/HTML)
