"""Jobs and the ledger that counts them: arrivals = served + failed + rejected + in flight."""

from __future__ import annotations

from loadlab.schema import COMPLETED, FAILED, REJECTED, JobRecord
from simulator.streamstats import StreamingSummary


class Job:
    __slots__ = ("case", "submitted", "started", "finished", "status", "service_s", "cold_start",
                 "served_by", "retries", "error", "done", "user", "scheduled", "measured_service_s",
                 "measured_overhead_s", "measured_replica", "waited_for_start_s")

    def __init__(self, case: str, submitted: float, done=None, user: int | None = None):
        self.case = case
        self.submitted = submitted
        self.started = None
        self.finished = None
        self.status = "queued"
        self.service_s = None
        self.cold_start = False
        self.served_by = None
        self.retries = 0
        self.error = None
        self.done = done      # a SimPy event for closed-loop users, else None
        self.user = user
        self.scheduled = None  # open-loop replay: the arrival's due time (= submitted in the simulator)
        self.measured_service_s = None  # mechanics replay: the measured job's service time (its sampler returns it)
        self.measured_overhead_s = None  # mechanics replay: its measured client overhead (e2e - queue - service)
        self.measured_replica = None  # mechanics replay on replicas: the one that served it (by start order)
        self.waited_for_start_s = None  # replicated: how long it waited for its starting replica

    def take_measured(self, measured) -> None:
        """A mechanics replay's (service s, overhead s[, replica]) of the measured job in this one's place."""
        self.measured_service_s, self.measured_overhead_s, *replica = measured
        self.measured_replica = replica[0] if replica else None

    def overhead_s(self, overhead) -> float:
        """The client's time after the server's answer: the measured one in a mechanics replay, else a draw."""
        return self.measured_overhead_s if self.measured_overhead_s is not None else overhead(self.case)

    def record(self, overhead_s: float = 0.0) -> JobRecord:
        e2e = (self.finished - self.submitted + overhead_s) if self.finished is not None and self.status == COMPLETED else None
        queue = (self.started - self.submitted) if self.started is not None else None
        return JobRecord(case=self.case, status=self.status if self.status in (COMPLETED, FAILED, REJECTED) else "in_flight",
                         submitted=self.submitted, scheduled=self.scheduled, started=self.started,
                         finished=(self.finished + overhead_s) if self.finished is not None else None,
                         queue_s=queue, service_s=self.service_s, e2e_s=e2e, error=self.error,
                         served_by=self.served_by, cold_start=self.cold_start,
                         waited_for_start_s=self.waited_for_start_s,
                         extra={"retries": self.retries} if self.retries else {})


class Ledger:
    """Every job that arrived, and how it ended. `on_end(job)`, when set, hears of every job that ended.

    `jobs` holds the first `keep` jobs to arrive (None: all; a month keeps only what its report records,
    so that memory does not grow with the month). The figures of *every* job are streamed as they end:
    the counts, `latency` (end-to-end s of completed jobs, loadlab.stats.summarize's figures), the
    completed jobs that met a cold start and, with `slo_e2e_s`, those answered within it."""

    def __init__(self, on_end=None, keep: int | None = None, slo_e2e_s: float | None = None):
        self.on_end = on_end
        self.keep = keep
        self.slo_e2e_s = slo_e2e_s
        self.jobs: list[Job] = []
        self.latency = StreamingSummary()
        self.cold_starts = 0
        self.within_slo = 0
        self._arrivals = 0
        self.served = 0
        self.failed = 0
        self.rejected = 0
        self.retried = 0
        self.cache_hits = 0
        self.served_by_case: dict[tuple[str, str], int] = {}   # (case, who served it) -> completed: the bill's egress

    def arrive(self, job: Job) -> None:
        self._arrivals += 1
        if self.keep is None or len(self.jobs) < self.keep:
            self.jobs.append(job)

    def complete(self, job: Job, now: float, served_by: str) -> None:
        job.finished = now
        job.status = COMPLETED
        job.served_by = served_by
        self.served += 1
        key = (job.case, served_by)
        self.served_by_case[key] = self.served_by_case.get(key, 0) + 1
        e2e = now - job.submitted
        self.latency.add(e2e)
        self.cold_starts += job.cold_start
        if self.slo_e2e_s is not None and e2e <= self.slo_e2e_s:
            self.within_slo += 1
        if job.done is not None:
            job.done.succeed(job)
        if self.on_end is not None:
            self.on_end(job)

    def fail(self, job: Job, now: float, error: str, status: str = FAILED) -> None:
        job.finished = now
        job.status = status
        job.error = error
        if status == REJECTED:
            self.rejected += 1
        else:
            self.failed += 1
        if job.done is not None:
            job.done.succeed(job)
        if self.on_end is not None:
            self.on_end(job)

    @property
    def arrivals(self) -> int:
        return self._arrivals

    @property
    def in_flight(self) -> int:
        return self.arrivals - self.served - self.failed - self.rejected
