"""The recorded replica timeline as the report holds it (`loadlab.schema.ReplicaRun`), the run's figures
computed from it (scale counts, most replicas, first requests at zero) and what the recorder saw beyond
it (pids, stop requests, where each decision time came from)."""

from __future__ import annotations

from typing import Any

from bench.replicas.types import ReplicaTimeline
from loadlab.schema import COMPLETED, JobRecord, ReplicaInterval, ReplicaRun, ReplicaSample, ScaleEvent


def replica_run(timeline: dict[str, Any]) -> ReplicaRun:
    """The report's `ReplicaRun` from a recorded timeline (`ReplicaTimeline.to_dict()`): the samples inside
    the window, every replica up at some time of the window (start / ready = RUNNING / end = stopped, as
    recorded), the scale decisions and the replica-seconds clipped to the window."""
    start, end = float(timeline["start"]), float(timeline["end"])
    samples = [ReplicaSample(t=s["t"], target=s["target"], starting=s["starting"], running=s["running"],
                             stopping=s["stopping"]) for s in timeline["samples"] if start <= s["t"] <= end]
    intervals = [ReplicaInterval(replica=r["replica_id"], start=r["start"], ready=r["running_at"], end=r["end"])
                 for r in timeline["replicas"] if r["start"] <= end and (r["end"] is None or r["end"] >= start)]
    events = [ScaleEvent(t=e["t"], from_replicas=e["from_replicas"], to_replicas=e["to_replicas"])
              for e in timeline["scale_events"] if start <= e["t"] <= end]
    return ReplicaRun(window=(start, end), timeline=samples, intervals=intervals, events=events,
                      replica_seconds=float(timeline["replica_seconds"]))


def running_at(run: ReplicaRun, t: float) -> int:
    """Replicas able to serve at t (ready <= t < end)."""
    return sum(1 for i in run.intervals if i.ready is not None and i.ready <= t and (i.end is None or t < i.end))


def first_requests_at_zero(jobs: list[JobRecord], run: ReplicaRun) -> list[JobRecord]:
    """The first request of each period with no replica running: what a user arriving at an idle,
    scaled-to-zero deployment waits (the same definition as the simulator's validation)."""
    firsts, previous = [], None
    for job in sorted(jobs, key=lambda j: j.origin):
        t = job.origin
        if running_at(run, t) == 0 and (previous is None or running_at(run, previous) > 0 or any(
                i.ready is not None and previous < i.ready <= t for i in run.intervals)):
            firsts.append(job)
        previous = t
    return firsts


def run_figures(jobs: list[JobRecord], run: ReplicaRun) -> dict[str, Any]:
    firsts = [j for j in first_requests_at_zero(jobs, run) if j.status == COMPLETED]
    return {"replica_seconds": run.replica_seconds,
            "scale_ups": sum(e.direction == "up" for e in run.events),
            "scale_downs": sum(e.direction == "down" for e in run.events),
            "max_replicas": max((s.starting + s.running + s.stopping for s in run.timeline), default=0),
            "cold_starts": sum(j.cold_start for j in jobs),
            "first_request_at_zero_e2e_s": [j.e2e_s for j in firsts]}


def recorded(timeline: ReplicaTimeline) -> dict[str, Any]:
    """What the recorder saw beyond the ReplicaRun: pids, stop requests, where each decision time came
    from and the load behind it."""
    return {"interval_s": timeline.interval_s, "log_path": timeline.log_path, "samples": len(timeline.samples),
            "replicas": [{"replica_id": r.replica_id, "pid": r.pid, "startup_s": r.startup_s,
                          "stopping_at": r.stopping_at} for r in timeline.replicas],
            "scale_events": [{"t": e.t, "direction": e.direction, "source": e.source,
                              "ongoing_requests": e.ongoing_requests} for e in timeline.scale_events]}
