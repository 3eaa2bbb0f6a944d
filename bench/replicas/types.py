"""The replica timeline's data: a `Sample` of the Serve controller, each replica's up interval, the scale
decisions, and the `ReplicaTimeline` that holds them over a window with its replica-seconds (the bill)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Ray 2.60's ReplicaState values, in the three groups the timeline counts.
STATE_GROUP = {"STARTING": "starting", "RECOVERING": "starting", "RUNNING": "running", "UPDATING": "running",
               "PENDING_MIGRATION": "running", "STOPPING": "stopping"}
DEFAULT_INTERVAL_S = 0.25


@dataclass
class Sample:
    t: float                      # epoch s (midpoint of the controller call)
    target: int | None            # the autoscaler's target replica count
    starting: int
    running: int
    stopping: int
    replicas: list[dict] = field(default_factory=list)  # {"id", "state", "pid", "start_time_s"}


@dataclass
class ReplicaInterval:
    replica_id: str
    pid: int | None
    start: float                  # the controller started the replica actor (billing starts)
    running_at: float | None      # constructor done, health check passed: can serve
    stopping_at: float | None
    end: float | None             # stopped; None = still up when the recording ended

    @property
    def startup_s(self) -> float | None:
        return None if self.running_at is None else self.running_at - self.start


@dataclass
class ScaleEvent:
    t: float
    from_replicas: int
    to_replicas: int
    direction: str                # "up" | "down"
    source: str                   # "controller_log" (ms stamps) | "samples" (to the sampling interval)
    ongoing_requests: float | None = None  # the autoscaler's aggregate behind the decision (log only)


@dataclass
class ReplicaTimeline:
    app: str
    deployment: str
    start: float                  # the window everything is clipped to (epoch s)
    end: float
    interval_s: float
    samples: list[Sample]
    replicas: list[ReplicaInterval]
    scale_events: list[ScaleEvent]
    replica_seconds: float        # sum of up intervals clipped to [start, end]
    max_replicas: int             # most replicas up at once (any state)
    log_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for r, d in zip(self.replicas, out["replicas"], strict=True):
            d["startup_s"] = r.startup_s
        out["scale_ups"] = sum(e.direction == "up" for e in self.scale_events)
        out["scale_downs"] = sum(e.direction == "down" for e in self.scale_events)
        return out

    def running_at(self, t: float) -> int:
        """Replicas RUNNING at time t (from the intervals, so log-precise when the log was read)."""
        return sum(1 for r in self.replicas if r.running_at is not None and r.running_at <= t
                   and (r.stopping_at is None or t < r.stopping_at) and (r.end is None or t < r.end))

    def replica(self, replica_id: str) -> ReplicaInterval | None:
        return next((r for r in self.replicas if r.replica_id == replica_id), None)
