"""The mechanics layer of a validation: a stage replayed with its measured arrivals and each job's measured
service time (and, on Ray Serve, each replica's measured start-up and the run's own decision delay), so
that what remains to differ is the model of the queue, the router, the metrics pushes, the policy and the
replica life cycle. Deterministic where the deployment is: no service time is drawn."""

from __future__ import annotations

from loadlab.schema import COMPLETED, JobRecord, ReplicaRun


def mechanics_sampler(fallback):
    """The service sampler of a mechanics replay: a job's measured service time, else `fallback`'s draw
    (a job the run never completed has none)."""

    def sample(case: str, *, in_system: int = 1, busy: int = 1, first: bool = False, job=None) -> float:
        measured = getattr(job, "measured_service_s", None)
        if measured is not None:
            return measured
        return fallback(case, in_system=in_system, busy=busy, first=first, job=job)
    return sample


def arrival_order(job: JobRecord) -> tuple[float, float]:
    """Jobs sorted for a replay: by arrival; jobs that arrived together in the order the server began them
    (the router's order), so that each takes the service time the measured run gave it in that place."""
    return job.origin, job.started if job.started is not None else float("inf")


def measured_times(job: JobRecord, ready_at: float | None = None) -> tuple[float | None, float | None]:
    """A measured job's (service s, overhead s): the time from the end of its service to the result in the
    client's hands (finished - started - service; else e2e - queue - service). `started` is the client's
    estimate (submitted + upload + the server's queue_s); on Ray Serve the ingress stamps queue_s from its
    own receipt, so a request that reached the ingress late looks started early: `ready_at`, when its
    replica could first serve, bounds the start from below. None where the job has none (not completed)."""
    if job.status != COMPLETED or job.service_s is None:
        return None, None
    overhead = None
    if job.finished is not None and job.started is not None:
        started = job.started if ready_at is None else max(job.started, ready_at)
        overhead = job.finished - started - job.service_s
    elif job.e2e_s is not None and job.queue_s is not None:
        overhead = job.e2e_s - job.queue_s - job.service_s
    return job.service_s, None if overhead is None else max(0.0, overhead)


def ready_times(run: ReplicaRun) -> dict[str, float]:
    """Each recorded replica's ready time, by its id (a job's `extra["replica_id"]`)."""
    return {i.replica: i.ready for i in run.intervals if i.ready is not None}


def replica_order(run: ReplicaRun) -> dict[str, int]:
    """Each recorded replica's place in start order, by its id: the replay's k-th replica started (its
    id k, the warm ones first) stands for the run's k-th."""
    started = sorted(run.intervals, key=lambda i: i.start)
    return {i.replica: k for k, i in enumerate(started)}


def replica_startups(run: ReplicaRun, t0: float) -> list[float]:
    """Each replica's measured start -> ready time, by start order, for the replicas started in the window
    (the replay starts the k-th of them where the run started its k-th)."""
    started = sorted((i for i in run.intervals if i.start >= t0), key=lambda i: i.start)
    return [i.ready - i.start for i in started if i.ready is not None]


def serving_spans(jobs: list[JobRecord]) -> list[tuple[str, float, float]]:
    """(replica, service start, service end) of every job that names its replica."""
    return [(j.extra.get("replica_id"), j.started, j.started + j.service_s) for j in jobs
            if j.started is not None and j.service_s is not None and j.extra.get("replica_id")]


def busy_beside(spans: list[tuple[str, float, float]], replica: str | None, t: float) -> int:
    """The other replicas serving a job at time t."""
    return len({r for r, a, b in spans if r != replica and a <= t < b})


def startups_by_busy(run: ReplicaRun, jobs: list[JobRecord]) -> dict[int, list[float]]:
    """Each recorded replica's start -> ready, keyed by the replicas busy with a job (its model time) when
    it was asked for: on a shared host a replica starting beside a busy one starts slower (the demo's:
    6.1 s from zero, 7.0-7.5 s beside a busy one), so a prediction draws a start-up of the load it meets."""
    spans = serving_spans(jobs)
    out: dict[int, list[float]] = {}
    for i in run.intervals:
        if i.ready is None:
            continue
        out.setdefault(busy_beside(spans, i.replica, i.start), []).append(float(i.ready - i.start))
    return out


def first_jobs_beside_busy(jobs: list[JobRecord]) -> dict[int, list[JobRecord]]:
    """Each new replica's first job (a cold start) that started beside other busy replicas, keyed by how
    many were busy with a job: on 2 shared cores such a first job ran 3.1 s against 1.9 s on a quiet host
    (warm jobs 1.8 s and x1.1 beside a busy replica; 2026-12-04), so a prediction draws a first job
    measured beside as many busy replicas rather than scaling one measured alone."""
    spans = serving_spans(jobs)
    out: dict[int, list[JobRecord]] = {}
    for j in jobs:
        if not j.cold_start or j.status != COMPLETED or j.service_s is None or j.started is None:
            continue
        busy = busy_beside(spans, j.extra.get("replica_id"), j.started)
        if busy:
            out.setdefault(busy, []).append(j)
    return out


def decision_delay_s(jobs: list[JobRecord], run: ReplicaRun, half_period_s: float) -> float | None:
    """The run's own first request at zero -> first scale-up decision, less the mean wait for the deciding
    control tick (`half_period_s`): the lag of the router that request created (RayServePolicy's
    `config_delay_s`). Later periods at zero are not this lag: their router exists and pushes on its own
    period, which the replay models. None when the run has no such request."""
    firsts = run.first_requests_at_zero(jobs)
    if not firsts:
        return None
    later = [e.t for e in run.decisions("up") if e.t >= firsts[0].origin]
    return max(0.0, later[0] - firsts[0].origin - half_period_s) if later else None


def handoffs(jobs: list, replica_of) -> list[float]:
    """Per back-to-back pair on one replica (the next one arrived before this one's result was back): the
    next one's start - this one's result at the client. Negative where the slot was free first."""
    by_replica: dict[str, list] = {}
    for job in jobs:
        rid = replica_of(job)
        if rid and job.status == COMPLETED and job.started is not None and job.finished is not None:
            by_replica.setdefault(rid, []).append(job)
    gaps = []
    for runs in by_replica.values():
        runs.sort(key=lambda j: j.started)
        gaps += [nxt.started - prev.finished for prev, nxt in zip(runs, runs[1:], strict=False)
                 if nxt.origin < prev.finished]
    return gaps


def after_slot_s(jobs: list[JobRecord]) -> float:
    """A first guess of how long before the client had a result its replica's slot was already free: the
    mean lead (this one's result at the client - the next one's start) over the back-to-back pairs, at least
    0. Ray's router frees the slot when the handle has the result (router.py `_process_finished_request`);
    the ingress then still answers the client. A lead is that part less the router's wait (the router
    sends a waiting request only at its next try, simulator/deployments/ray_router.py), so the guess is a
    lower bound: `fitted_after_slot_s` adds the replay's own wait."""
    gaps = handoffs(jobs, lambda j: j.extra.get("replica_id"))
    return max(0.0, -sum(gaps) / len(gaps)) if gaps else 0.0


def fitted_after_slot_s(jobs: list[JobRecord], handoff_of, rounds: int = 3) -> float:
    """The part of the overhead after the slot at which the replay's hand-offs (`handoff_of(after)`: the
    mean next start - result at the client of its back-to-back pairs) match the run's: the hand-off is the
    router's wait less this part, and the replay has a wait of its own. From `after_slot_s`, moved by the
    difference each round (a shift of the part moves the hand-off by as much; the wait barely moves)."""
    gaps = handoffs(jobs, lambda j: j.extra.get("replica_id"))
    if not gaps:
        return 0.0
    target = sum(gaps) / len(gaps)
    after = max(0.0, -target)          # `after_slot_s`, from the same pairs
    for _ in range(rounds):
        got = handoff_of(after)
        if got is None:
            break
        after = max(0.0, after + got - target)
    return after


def measured_holds(jobs: list[JobRecord], waited_through: bool = False) -> dict[int, tuple[JobRecord, float]]:
    """One FIFO worker's time after a job's model time before it took the next (the server's own per-job
    work: decoding, encoding the result), by `id(job)`: measured only where the next job was already
    waiting (next start - this start - service); a worker that waited for work holds nothing to measure.
    `waited_through`: only where the next job was sent before this one started. A request sent just
    before the end may not have reached the server yet (a new Vertex SDK client's first call came ~0.8 s
    late): its gap is no hold, and in the demo's calibration it doubled a stage's mean hold (0.20 s, 0.09 s
    without it), which a prediction's worker then held after every job."""
    done = sorted(_served(jobs), key=lambda j: j.started)
    holds = {}
    for job, nxt in zip(done, done[1:], strict=False):
        end = job.started + job.service_s
        if (nxt.origin <= job.started if waited_through else nxt.origin < end) and nxt.started >= end:
            holds[id(job)] = (job, nxt.started - end)
    return holds


def worker_holds(jobs: list[JobRecord]) -> dict[int, float]:
    """Each completed job's hold (`measured_holds`), the mean of the measured ones where it has none.
    Empty without a measured pair."""
    holds = {k: hold for k, (_, hold) in measured_holds(jobs).items()}
    if not holds:
        return {}
    # each measured gap replays as it was; a job without one takes the typical hold of a job waited through
    clean = [hold for _, hold in measured_holds(jobs, waited_through=True).values()] or list(holds.values())
    typical = sum(clean) / len(clean)
    return {id(j): holds.get(id(j), typical) for j in _served(jobs)}


def _served(jobs: list[JobRecord]) -> list[JobRecord]:
    """The jobs a worker served that have what a hold is read from: a start and a model time."""
    return [j for j in jobs if j.status == COMPLETED and j.started is not None and j.service_s is not None]


def held_times(job: JobRecord, holds: dict[int, float]) -> tuple[float | None, float | None]:
    """A local job's mechanics (service s, overhead s) with the worker's hold after it: the worker is busy
    for service + hold; the client has the result `overhead` after the service, so the part of the
    overhead after the hold is what remains (never below 0)."""
    service, overhead = measured_times(job)
    hold = holds.get(id(job), 0.0)
    if service is None or overhead is None or not hold:
        return service, overhead
    hold = min(hold, overhead)
    return service + hold, overhead - hold
