"""`Deployment`: what every way of serving offers the engine (submit a job, its bill, its figures)."""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

from simulator.ledger import Job


class Cost(TypedDict, total=False):
    """A deployment's bill over a simulated horizon. `usage` (replica time billed within the horizon)
    scales with the horizon's length; `fixed_per_month` does not (a GPU bought for the month)."""

    usage: float                   # $ billed for the horizon
    fixed_per_month: float         # $ per 30 days, whatever the horizon
    replica_hours_billed: float    # the usage in replica-hours (after rounding to the billing increment)
    vertex: float                  # hybrid: its Vertex part (usage)
    local: float                   # hybrid: its local part (fixed)


class Deployment(Protocol):
    """A way of serving: `LocalGPU`, `VertexEndpoint`, `Hybrid`, `RayServeDeployment`.

    `stats` returns at least mean_replicas, max_replicas, replica_hours (over the horizon) and
    utilisation (busy / ready time, None when never ready)."""

    def submit(self, job: Job) -> None: ...

    def cost(self, horizon_s: float) -> Cost: ...

    def stats(self, horizon_s: float) -> dict[str, Any]: ...
