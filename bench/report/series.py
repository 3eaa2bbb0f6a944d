"""Figures computed from a report rather than stored in it: the jobs in the system over time, the
replicas up over time and the scale counts, a simulated replay moved onto the measured clock, the
per-concurrency means and the FIFO ideal of a burst stage, and the consecutive parts of a cold start."""

from __future__ import annotations

from collections.abc import Iterable

from loadlab.blocks import ColdStart, FifoIdeal
from loadlab.schema import DROPPED, JobRecord, ReplicaRun, Report, Stage, StageSummary
from loadlab.stats import fifo_ideal_mean


def all_jobs(report: Report) -> list[JobRecord]:
    return [j for s in report.stages for j in s.jobs]


def jobs_in_system(jobs: Iterable[JobRecord], end: float | None = None) -> tuple[list[float], list[int]]:
    """Step function of the jobs in the system (arrived, not yet answered): a job counts from its origin
    (scheduled, else submitted) to `finished`; one never finished counts until `end`; dropped arrivals
    never entered. Returns (times, count from that time on)."""
    events: list[tuple[float, int]] = []
    for j in jobs:
        if j.status == DROPPED:
            continue
        events.append((j.origin, +1))
        stop = j.finished if j.finished is not None else end
        if stop is not None:
            events.append((stop, -1))
    events.sort()  # at equal times a departure (-1) sorts first: no spike for back-to-back jobs
    times, counts, n = [], [], 0
    for t, delta in events:
        n += delta
        if times and times[-1] == t:
            counts[-1] = n
        else:
            times.append(t)
            counts.append(n)
    return times, counts


def replica_steps(run: ReplicaRun) -> tuple[list[float], list[int]]:
    """Replicas up (starting + running + stopping: billed) over the run, seconds from the window's start;
    from the sampled timeline, else from the replicas' up intervals."""
    t0 = run.window[0]
    if run.timeline:
        return ([s.t - t0 for s in run.timeline],
                [s.starting + s.running + s.stopping for s in run.timeline])
    events = [(i.start - t0, +1) for i in run.intervals]
    events += [(i.end - t0, -1) for i in run.intervals if i.end is not None]
    times, counts, n = [0.0], [0], 0
    for t, delta in sorted(events):
        n += delta
        times.append(t)
        counts.append(n)
    return times, counts


def on_measured_clock(twin: Report, measured: Report) -> list[JobRecord]:
    """The simulated replay's jobs moved onto the measured run's clock: each simulated stage starts
    where the measured stage of the same name started (a replay runs every stage from its own t=0)."""
    starts = {s.name: s.started_at if s.started_at is not None else min(j.origin for j in s.jobs)
              for s in measured.stages if s.jobs}
    moved = []
    for stage in twin.stages:
        if stage.name not in starts or not stage.jobs:
            continue
        shift = starts[stage.name] - (stage.started_at or 0.0)
        for j in stage.jobs:
            moved.append(j.model_copy(update={k: None if getattr(j, k) is None else getattr(j, k) + shift
                                              for k in ("scheduled", "submitted", "started", "finished")}))
    return moved


def concurrency_points(report: Report) -> dict[int, StageSummary]:
    """Concurrency -> the stage's summary, for the stages run at a concurrency."""
    return {s.concurrency: s.summary for s in report.stages if s.concurrency}


def fifo_of(report: Report, stage: Stage) -> tuple[float | None, float | None]:
    """(FIFO-ideal mean, measured mean / ideal) of a burst stage on one worker: what `bench concurrency`
    stored, else (N+1)/2 x S with S the mean of the run's u=1 stage."""
    fifo = FifoIdeal.of(report)
    stored = fifo.stages.get(stage.name) if fifo else None
    if stored:
        return stored.ideal_mean_s, stored.ratio
    workers = report.config.server.workers if report.config.server else None
    if stage.jobs_per_user != 1 or not stage.concurrency or (workers or 1) != 1:
        return None, None
    base = next((s.summary.mean for s in report.stages if s.concurrency == 1 and s.summary.mean), None)
    if base is None:
        return None, None
    ideal = fifo_ideal_mean(stage.concurrency, base)
    mean = stage.summary.mean
    return ideal, (mean / ideal if mean is not None else None)


def coldstart_parts(coldstart: ColdStart | None) -> dict[str, float]:
    """Consecutive parts of a measured cold start. `bench coldstart` records `ready` as spawn -> ready,
    which contains process start and model load; the rest of it is imports and app start-up."""
    stages = dict(coldstart.stages_s if coldstart else {})
    ready = stages.pop("ready", None)
    if ready is not None:
        start = stages.pop("process_start", 0.0) or 0.0
        load = stages.pop("model_load", 0.0) or 0.0
        stages = {"process_start": start, "imports_and_app_start": max(0.0, ready - start - load),
                  "model_load": load, **stages}
    return {k: float(v) for k, v in stages.items() if isinstance(v, (int, float))}
