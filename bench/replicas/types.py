"""The replica timeline as recorded: a `Sample` of the Serve controller, each replica's up interval
(`RecordedInterval`), the scale decisions (`RecordedScaleEvent`), and the `ReplicaTimeline` that holds
them over a window with its replica-seconds (the bill). What the recorder sees beyond the report's
vocabulary (pids, stop requests, where a decision time came from) stays here; `ReplicaTimeline.to_run()`
gives the report's `loadlab.schema.ReplicaRun`, whose methods compute the run's figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loadlab.schema import ReplicaInterval, ReplicaRun, ReplicaSample, ScaleEvent

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
    total_requests: float | None = None  # the controller's aggregate behind its decisions (None: not read)


@dataclass
class RecordedInterval:
    replica_id: str
    pid: int | None
    start: float                  # the controller started the replica actor (billing starts)
    running_at: float | None      # constructor done, health check passed: can serve
    stopping_at: float | None
    end: float | None             # stopped; None = still up when the recording ended
    startup_phases: dict[str, float] | None = None  # start -> RUNNING in parts (replica_log.PHASES)

    @property
    def startup_s(self) -> float | None:
        return None if self.running_at is None else self.running_at - self.start


@dataclass
class RecordedScaleEvent:
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
    replicas: list[RecordedInterval]
    scale_events: list[RecordedScaleEvent]
    replica_seconds: float        # sum of up intervals clipped to [start, end]
    max_replicas: int             # most replicas up at once (any state)
    log_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for r, d in zip(self.replicas, out["replicas"], strict=True):
            d["startup_s"] = r.startup_s
        return out

    def to_run(self) -> ReplicaRun:
        """The report's `ReplicaRun`: the samples inside the window, every replica up at some time of the
        window (start / ready = RUNNING / end = stopped, as recorded), the scale decisions and the
        replica-seconds clipped to the window."""
        start, end = self.start, self.end
        samples = [ReplicaSample(t=s.t, target=s.target, starting=s.starting, running=s.running, stopping=s.stopping,
                                 total_requests=s.total_requests) for s in self.samples if start <= s.t <= end]
        intervals = [ReplicaInterval(replica=r.replica_id, start=r.start, ready=r.running_at, end=r.end,
                                     startup_phases=r.startup_phases)
                     for r in self.replicas if r.start <= end and (r.end is None or r.end >= start)]
        events = [ScaleEvent(t=e.t, from_replicas=e.from_replicas, to_replicas=e.to_replicas)
                  for e in self.scale_events if start <= e.t <= end]
        return ReplicaRun(window=(start, end), timeline=samples, intervals=intervals, events=events,
                          replica_seconds=self.replica_seconds)

    def running_at(self, t: float) -> int:
        """Replicas RUNNING at time t (from the intervals, so log-precise when the log was read)."""
        return sum(1 for r in self.replicas if r.running_at is not None and r.running_at <= t
                   and (r.stopping_at is None or t < r.stopping_at) and (r.end is None or t < r.end))

    def replica(self, replica_id: str) -> RecordedInterval | None:
        return next((r for r in self.replicas if r.replica_id == replica_id), None)
