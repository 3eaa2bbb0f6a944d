"""From the controller's samples and its log to the `ReplicaTimeline` (each replica's up interval, the
scale events, the replica-seconds), and from the timeline which jobs met a cold start. A time the log has
wins over the sampled one: milliseconds against the sampling interval."""

from __future__ import annotations

from typing import Any

from bench.replicas.types import (
    DEFAULT_INTERVAL_S,
    STATE_GROUP,
    ReplicaInterval,
    ReplicaTimeline,
    Sample,
    ScaleEvent,
)

# A log transition -> the replica interval's field it stamps.
_LOG_FIELD = {"starting": "start", "running": "running_at", "stopping": "stopping_at", "stopped": "end"}


def sample_from_details(details: dict, app: str, deployment: str, t: float) -> Sample:
    """One Sample from `get_serve_details()` (the ServeInstanceDetails dict of Ray 2.60)."""
    dep = (details.get("applications", {}).get(app, {}).get("deployments", {}) or {}).get(deployment)
    if not dep:
        return Sample(t=t, target=None, starting=0, running=0, stopping=0)
    replicas = [{"id": r["replica_id"], "state": str(r["state"]).split(".")[-1], "pid": r.get("pid"),
                 "start_time_s": r.get("start_time_s")} for r in dep.get("replicas", [])]
    counts = {"starting": 0, "running": 0, "stopping": 0}
    for r in replicas:
        group = STATE_GROUP.get(r["state"])
        if group:
            counts[group] += 1
    return Sample(t=t, target=dep.get("target_num_replicas"), replicas=replicas, **counts)


def build_timeline(samples: list[Sample], log_events: list[dict], *, app: str, deployment: str,
                   start: float | None = None, end: float | None = None,
                   interval_s: float = DEFAULT_INTERVAL_S, log_path: str | None = None) -> ReplicaTimeline:
    """Replica intervals, replica-seconds and scale events from the samples and the log events, over
    [start, end] (default: the samples')."""
    samples = sorted(samples, key=lambda s: s.t)
    start = start if start is not None else (samples[0].t if samples else 0.0)
    end = end if end is not None else (samples[-1].t if samples else start)
    replicas = _replica_intervals(samples, log_events, start)
    events = [e for e in _scale_events(samples, log_events) if start <= e.t <= end]
    seconds = sum(max(0.0, min(r.end if r.end is not None else end, end) - max(r.start, start)) for r in replicas)
    bounds = sorted({r.start for r in replicas})
    most = max((sum(1 for r in replicas if r.start <= b and (r.end is None or b < r.end)) for b in bounds),
               default=0)
    return ReplicaTimeline(app=app, deployment=deployment, start=start, end=end, interval_s=interval_s,
                           samples=samples, replicas=replicas, scale_events=events, replica_seconds=seconds,
                           max_replicas=most, log_path=log_path)


def _replica_intervals(samples: list[Sample], log_events: list[dict], start: float) -> list[ReplicaInterval]:
    """Each replica's interval from the samples (sorted by time), its times overwritten by the log's."""
    reps: dict[str, dict[str, Any]] = {}
    for s in samples:
        for r in s.replicas:
            rec = reps.setdefault(r["id"], {"pid": r.get("pid"), "start": r.get("start_time_s"), "running_at": None,
                                            "stopping_at": None, "end": None, "last_seen": s.t})
            rec["pid"] = rec["pid"] or r.get("pid")
            rec["start"] = rec["start"] or r.get("start_time_s") or s.t
            rec["last_seen"] = s.t
            group = STATE_GROUP.get(r["state"])
            if group == "running" and rec["running_at"] is None:
                rec["running_at"] = s.t
            if group == "stopping" and rec["stopping_at"] is None:
                rec["stopping_at"] = s.t
    # A replica gone from the samples ended at the first sample without it.
    for rec in reps.values():
        later = [s.t for s in samples if s.t > rec["last_seen"]]
        if later:
            rec["end"] = later[0]
    for e in log_events:
        if e["kind"] == "scale":
            continue
        rec = reps.setdefault(e["replica_id"], {"pid": None, "start": None, "running_at": None,
                                                "stopping_at": None, "end": None, "last_seen": e["t"]})
        rec[_LOG_FIELD[e["kind"]]] = e["t"]
        if e["kind"] == "running":
            rec["pid"] = rec["pid"] or e.get("pid")
    replicas = [ReplicaInterval(replica_id=rid, pid=r["pid"], start=r["start"] if r["start"] is not None else start,
                                running_at=r["running_at"], stopping_at=r["stopping_at"], end=r["end"])
                for rid, r in reps.items()]
    replicas.sort(key=lambda r: r.start)
    return replicas


def _scale_events(samples: list[Sample], log_events: list[dict]) -> list[ScaleEvent]:
    """The log's scaling decisions; without a log, the target's changes between samples, stamped at the
    sample that saw them."""
    events = [ScaleEvent(t=e["t"], from_replicas=e["from"], to_replicas=e["to"], direction=e["direction"],
                         source="controller_log", ongoing_requests=e["ongoing_requests"])
              for e in log_events if e["kind"] == "scale"]
    if events:
        return events
    previous = None
    for s in samples:
        if s.target is None:
            continue
        if previous is not None and s.target != previous:
            events.append(ScaleEvent(t=s.t, from_replicas=previous, to_replicas=s.target,
                                     direction="up" if s.target > previous else "down", source="samples"))
        previous = s.target
    return events


def _field(job: Any, name: str) -> Any:
    return job.get(name) if isinstance(job, dict) else getattr(job, name, None)


def mark_cold_starts(jobs: list[Any], timeline: ReplicaTimeline) -> list[bool]:
    """Which jobs met a cold start: the job arrived (its `scheduled` time, else `submitted`) before the
    replica that served it could serve (`extra["replica_id"]`, from the X-Replica-Id header); for a job
    without a replica id (failed, or no header), when no replica was RUNNING at its arrival. Sets
    `cold_start` on each job and `extra["cold_wait_s"]` (time from arrival until its replica ran)."""
    marks = []
    for job in jobs:
        arrival = _field(job, "scheduled")
        arrival = arrival if arrival is not None else _field(job, "submitted")
        extra = _field(job, "extra")
        extra = extra if isinstance(extra, dict) else None
        rid = (extra or {}).get("replica_id")
        replica = timeline.replica(rid) if rid else None
        if replica is not None and replica.running_at is not None:
            wait = max(0.0, replica.running_at - arrival)
            cold = wait > 0
        else:
            wait = None
            cold = timeline.running_at(arrival) == 0
        if isinstance(job, dict):
            job["cold_start"] = cold
        else:
            job.cold_start = cold
        if extra is not None and wait is not None:
            extra["cold_wait_s"] = wait
        marks.append(cold)
    return marks
