"""The mechanics layer of a validation: a stage replayed with its measured arrivals and each job's measured
service time (and, on Ray Serve, each replica's measured start-up and the run's own decision delay), so
that what remains to differ is the model of the queue, the router, the metrics pushes, the policy and the
replica life cycle. Deterministic where the deployment is: no service time is drawn."""

from __future__ import annotations

from loadlab.schema import COMPLETED, JobRecord, ReplicaRun
from loadlab.stats import mean


def mechanics_sampler(fallback):
    """The service sampler of a mechanics replay: a job's measured service time, else `fallback`'s draw
    (a job the run never completed has none)."""

    def sample(case: str, *, in_system: int = 1, busy: int = 1, first: bool = False, job=None) -> float:
        measured = getattr(job, "measured_service_s", None)
        if measured is not None:
            return measured
        return fallback(case, in_system=in_system, busy=busy, first=first, job=job)
    return sample


def measured_times(job: JobRecord) -> tuple[float | None, float | None]:
    """A measured job's (service s, client overhead s = e2e - queue - service); None where it has none."""
    if job.status != COMPLETED or job.service_s is None:
        return None, None
    overhead = None
    if job.e2e_s is not None and job.queue_s is not None:
        overhead = max(0.0, job.e2e_s - job.queue_s - job.service_s)
    return job.service_s, overhead


def replica_startups(run: ReplicaRun, t0: float) -> list[float]:
    """Each replica's measured start -> ready time, by start order, for the replicas started in the window
    (the replay starts the k-th of them where the run started its k-th)."""
    started = sorted((i for i in run.intervals if i.start >= t0), key=lambda i: i.start)
    return [i.ready - i.start for i in started if i.ready is not None]


def decision_delay_s(jobs: list[JobRecord], run: ReplicaRun, half_period_s: float) -> float | None:
    """The run's own request-at-zero -> scale-up decision time (mean over the periods at zero), less the
    mean wait for the deciding control tick (`half_period_s`): the fresh router's lag the replay gives."""
    ups = [e.t for e in run.decisions("up")]
    delays = []
    for job in run.first_requests_at_zero(jobs):
        later = [t for t in ups if t >= job.origin]
        if later:
            delays.append(later[0] - job.origin)
    value = mean(delays)
    return None if value is None else max(0.0, value - half_period_s)
