"""From the controller's samples and its log to the `ReplicaTimeline` (each replica's up interval, the
scale events, the replica-seconds), and from the timeline which jobs met a cold start. A time the log has
wins over the sampled one: milliseconds against the sampling interval."""

from __future__ import annotations

from typing import Any

from bench.replicas.types import (
    DEFAULT_INTERVAL_S,
    STATE_GROUP,
    RecordedInterval,
    RecordedScaleEvent,
    ReplicaTimeline,
    Sample,
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


def _replica_intervals(samples: list[Sample], log_events: list[dict], start: float) -> list[RecordedInterval]:
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
    replicas = [RecordedInterval(replica_id=rid, pid=r["pid"], start=r["start"] if r["start"] is not None else start,
                                running_at=r["running_at"], stopping_at=r["stopping_at"], end=r["end"])
                for rid, r in reps.items()]
    replicas.sort(key=lambda r: r.start)
    return replicas


def _scale_events(samples: list[Sample], log_events: list[dict]) -> list[RecordedScaleEvent]:
    """The log's scaling decisions; without a log, the target's changes between samples, stamped at the
    sample that saw them."""
    events = [RecordedScaleEvent(t=e["t"], from_replicas=e["from"], to_replicas=e["to"], direction=e["direction"],
                         source="controller_log", ongoing_requests=e["ongoing_requests"])
              for e in log_events if e["kind"] == "scale"]
    if events:
        return events
    previous = None
    for s in samples:
        if s.target is None:
            continue
        if previous is not None and s.target != previous:
            events.append(RecordedScaleEvent(t=s.t, from_replicas=previous, to_replicas=s.target,
                                     direction="up" if s.target > previous else "down", source="samples"))
        previous = s.target
    return events


def _field(job: Any, name: str) -> Any:
    return job.get(name) if isinstance(job, dict) else getattr(job, name, None)


def mark_cold_starts(jobs: list[Any], timeline: ReplicaTimeline) -> list[bool]:
    """The one definition of a cold start (the simulator's and the report's too): the first job a new
    replica served, its replica known from `extra["replica_id"]` (the X-Replica-Id header) and new when
    the recording saw it start. Sets `cold_start` on each job and, apart from it, `waited_for_start_s`
    (time from its arrival, `scheduled` else `submitted`, until its replica was RUNNING, when positive;
    also `extra["cold_wait_s"]`, 0 included). A job without a replica id (failed) is no cold start."""
    first: dict[str, tuple[float, int]] = {}
    for k, job in enumerate(jobs):
        rid = (_field(job, "extra") or {}).get("replica_id")
        replica = timeline.replica(rid) if rid else None
        if replica is None or replica.start < timeline.start:
            continue
        began = _field(job, "started")
        key = (began if began is not None else _arrival(job), k)
        if rid not in first or key < first[rid]:
            first[rid] = key
    firsts = {k for _, k in first.values()}
    marks = []
    for k, job in enumerate(jobs):
        extra = _field(job, "extra")
        rid = (extra or {}).get("replica_id") if isinstance(extra, dict) else None
        replica = timeline.replica(rid) if rid else None
        wait = None if replica is None or replica.running_at is None else max(0.0, replica.running_at - _arrival(job))
        _set(job, "cold_start", k in firsts)
        _set(job, "waited_for_start_s", wait if wait else None)
        if isinstance(extra, dict) and wait is not None:
            extra["cold_wait_s"] = wait
        marks.append(k in firsts)
    return marks


def _arrival(job: Any) -> float:
    scheduled = _field(job, "scheduled")
    return scheduled if scheduled is not None else _field(job, "submitted")


def _set(job: Any, name: str, value: Any) -> None:
    if isinstance(job, dict):
        job[name] = value
    else:
        setattr(job, name, value)
