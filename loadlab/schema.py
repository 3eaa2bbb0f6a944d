"""The one report schema for measured and simulated results (shared/DESIGN.md, "One report schema").

Pydantic models: a report that does not follow the schema fails to load with the path of the bad
field, and `python -m loadlab.schema` prints the JSON Schema. Times in a `JobRecord` are seconds on
one clock per report (epoch seconds when measured, simulation seconds when simulated). `kind` says
whether the figures were measured or simulated; model inputs go in `model` and `config`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, model_validator

from loadlab.blocks import ColdStart
from loadlab.run_config import LoadConfig, RunConfig, ServerConfig, SimulationConfig  # noqa: F401 - the schema is one import
from loadlab.stats import pct_key, summarize

SCHEMA = "decomposer-loadlab/report/v2"
COMPLETED, FAILED, REJECTED, DROPPED = "completed", "failed", "rejected", "dropped"
# in_flight: still running when a simulation's horizon (or a measured run's stop) came
JobStatus = Literal["completed", "failed", "rejected", "dropped", "in_flight"]

# What a report is, read by the HTML report and the validations (never guessed from its contents).
# "calibration": a run measured only to calibrate the simulator (e.g. the autoscale calibration), never scored.
Role = Literal["single", "coldstart", "load", "capacity", "monthly", "validation", "sweep", "article", "calibration"]
Kind = Literal["measured", "simulated"]


class _Model(BaseModel):
    # Unknown fields are errors: a typo in a producer must not silently drop a figure.
    model_config = ConfigDict(extra="forbid")


class Case(_Model):
    """A workload case. `resolution` is the pipeline bucket (640 or 1024); `image_px` the side of the
    uploaded image (the article's 512/1024/2048 px test images)."""

    name: str
    layers: int
    resolution: int
    image_px: int


class JobRecord(_Model):
    case: str
    status: JobStatus
    submitted: float                 # when the request left the client (or entered the simulated system)
    scheduled: float | None = None   # open loop: when the arrival was due (same clock as `submitted`)
    finished: float | None = None
    started: float | None = None     # when the model began the job (None if unknown or rejected)
    queue_s: float | None = None     # waiting for the worker / a replica
    service_s: float | None = None   # model time (pipeline call, or batch share)
    e2e_s: float | None = None       # scheduled (else submitted) -> result in the client's hands
    error: str | None = None
    served_by: str | None = None     # client or replica that answered (fallback, replicas)
    cold_start: bool = False         # the first job its replica (or server process) served: a cold start
    waited_for_start_s: float | None = None   # replicated: how long it waited for a starting replica (None: none)
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def lateness_s(self) -> float | None:
        """How late the load generator sent an open-loop arrival (submitted - scheduled)."""
        return None if self.scheduled is None else self.submitted - self.scheduled

    @property
    def origin(self) -> float:
        """Where latency counts from: the scheduled time when there is one (open loop)."""
        return self.scheduled if self.scheduled is not None else self.submitted


class Summary(_Model):
    """`loadlab.stats.summarize` of a set of seconds: count, mean, std, min, p50, p95, p99, p99.9, max."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    p99_9: float | None = Field(None, alias="p99.9")
    max: float | None = None

    def pct(self, p: float) -> float | None:
        """The percentile `p` (one of `loadlab.stats.PERCENTILES`): `pct(99.9)` is `p99_9`."""
        return getattr(self, pct_key(p).replace(".", "_"))


class StageSummary(Summary):
    """A stage's summary (`Stage.summary`): the e2e `Summary` of its completed jobs plus outcomes,
    the queue/service/lateness summaries, wall time, throughput, and SLO attainment and goodput."""

    jobs: int
    completed: int
    failed: int
    rejected: int
    dropped: int
    success_rate: float | None
    queue_s: Summary
    service_s: Summary
    lateness_s: Summary
    wall_s: float | None
    throughput_per_s: float | None
    slo_e2e_s: float | None
    slo_attainment: float | None
    goodput_per_s: float | None


class Stage(_Model):
    """A stage of a run: a concurrency (closed loop, burst) or an arrival rate (open loop, trace window)."""

    name: str
    concurrency: int | None = None
    arrival_rate_per_s: float | None = None
    duration_s: float | None = None
    jobs_per_user: int | None = None
    started_at: float | None = None      # same clock as the jobs
    slo_e2e_s: float | None = None       # end-to-end SLO the summary scores attainment and goodput against
    jobs: list[JobRecord] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # `summary` is derived from the jobs: written for readers of the JSON, recomputed on load.
        if isinstance(data, dict) and "summary" in data:
            data = {k: v for k, v in data.items() if k != "summary"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> StageSummary:
        """e2e statistics of completed jobs, outcome counts, success rate, throughput (completed jobs
        per second of the stage's wall time), dispatch lateness, and SLO attainment and goodput."""
        done = [j for j in self.jobs if j.status == COMPLETED and j.e2e_s is not None]
        # A stage held for a duration: throughput counts only jobs that finished inside it, or the
        # jobs a closed loop lets run on past the end would inflate it.
        in_window = done
        if self.duration_s and self.jobs:
            end = self._start() + self.duration_s
            in_window = [j for j in done if j.finished is not None and j.finished <= end]
        wall = self.wall_s()
        slo: dict[str, float | None] = {"slo_attainment": None, "goodput_per_s": None}
        if self.slo_e2e_s is not None and self.jobs:
            # every arrival counts against the SLO: a failed, rejected or dropped request missed it
            good = [j for j in in_window if j.e2e_s <= self.slo_e2e_s]
            slo["slo_attainment"] = sum(j.e2e_s <= self.slo_e2e_s for j in done) / len(self.jobs)
            slo["goodput_per_s"] = len(good) / wall if wall else None
        return StageSummary(
            **summarize(j.e2e_s for j in done),
            jobs=len(self.jobs), completed=len(done),
            failed=sum(j.status == FAILED for j in self.jobs),
            rejected=sum(j.status == REJECTED for j in self.jobs),
            dropped=sum(j.status == DROPPED for j in self.jobs),
            success_rate=len(done) / len(self.jobs) if self.jobs else None,
            queue_s=summarize(j.queue_s for j in done if j.queue_s is not None),
            service_s=summarize(j.service_s for j in done if j.service_s is not None),
            lateness_s=summarize(j.lateness_s for j in self.jobs if j.lateness_s is not None),
            wall_s=wall,
            throughput_per_s=(len(in_window) / wall) if wall else None,
            slo_e2e_s=self.slo_e2e_s, **slo,
        )

    def _start(self) -> float:
        if self.started_at is not None:
            return self.started_at
        return min(j.origin for j in self.jobs)

    def wall_s(self) -> float | None:
        """The stage's duration when it was held for one, else first arrival -> last finish."""
        if self.duration_s:
            return self.duration_s
        ends = [j.finished for j in self.jobs if j.finished is not None]
        if not self.jobs or not ends:
            return None
        return max(ends) - self._start()


class ReplicaSample(_Model):
    t: float
    target: int | None = None
    starting: int = 0
    running: int = 0
    stopping: int = 0
    # the autoscaler's input at t: the controller's total (queued + ongoing) over its look-back window, as
    # Ray's controller answers it (None: not recorded)
    total_requests: float | None = None


class ReplicaInterval(_Model):
    replica: str
    start: float                     # the replica was asked for (billing starts)
    ready: float | None = None       # it could take requests
    end: float | None = None         # it stopped (None: still up at the end of the run)
    startup_phases: dict[str, float] | None = None  # start -> ready in parts, where the replica logged them


class ScaleEvent(_Model):
    t: float
    from_replicas: int
    to_replicas: int

    @property
    def direction(self) -> str:
        return "up" if self.to_replicas > self.from_replicas else "down"


class RunFigures(_Model):
    """The figures of a replicated run, computed once from its `ReplicaRun` and jobs (`ReplicaRun.figures`).
    `cold_starts`: jobs that were the first of a new replica (JobRecord.cold_start); `waited_for_start`:
    jobs that waited for a starting replica (a second, separate figure)."""

    replica_seconds: float
    scale_ups: int
    scale_downs: int
    max_replicas: int
    cold_starts: int
    waited_for_start: int
    first_request_at_zero_e2e_s: list[float] = Field(default_factory=list)

    @property
    def first_request_at_zero_mean_s(self) -> float | None:
        values = self.first_request_at_zero_e2e_s
        return sum(values) / len(values) if values else None


class ReplicaRun(_Model):
    """A replicated deployment over a run: what the bill comes from. Its figures (replicas running at t,
    scale counts, first requests at zero, replica-seconds, cold starts) are its methods: every reader
    (bench, simulator, report) takes them from here."""

    window: tuple[float, float]
    timeline: list[ReplicaSample] = Field(default_factory=list)
    intervals: list[ReplicaInterval] = Field(default_factory=list)
    events: list[ScaleEvent] = Field(default_factory=list)
    replica_seconds: float = 0.0

    def then(self, later: ReplicaRun) -> ReplicaRun:
        """This recording followed by a later one of the same deployment (e.g. a calibration's cycles from
        zero, then its loaded loops): one run over both windows. Between them the deployment was at rest,
        so the gap bills what ran at this one's end; a replica up in both is one interval."""
        gap = max(0.0, later.window[0] - self.window[1])
        last = self.timeline[-1].running if self.timeline else self.running_at(self.window[1])
        intervals = [i.model_copy() for i in self.intervals]
        mine = {i.replica: i for i in intervals}
        for i in later.intervals:
            if i.replica in mine:
                mine[i.replica].end = i.end
            else:
                intervals.append(i)
        return ReplicaRun(window=(self.window[0], later.window[1]), timeline=self.timeline + later.timeline,
                          intervals=intervals, events=self.events + later.events,
                          replica_seconds=self.replica_seconds + gap * last + later.replica_seconds)

    def running_at(self, t: float) -> int:
        """Replicas able to serve at t (ready <= t < end)."""
        return sum(1 for i in self.intervals if i.ready is not None and i.ready <= t and (i.end is None or t < i.end))

    def scale_count(self, direction: str) -> int:
        """Scale decisions of one direction ("up" or "down")."""
        return sum(e.direction == direction for e in self.events)

    def decisions(self, direction: str) -> list[ScaleEvent]:
        """The scale decisions of one direction, in order."""
        return sorted((e for e in self.events if e.direction == direction), key=lambda e: e.t)

    def max_replicas(self) -> int:
        """Most replicas up at once (any state), from the sampled timeline, else from the intervals."""
        if self.timeline:
            return max(s.starting + s.running + s.stopping for s in self.timeline)
        starts = sorted(i.start for i in self.intervals)
        return max((sum(1 for i in self.intervals if i.start <= b and (i.end is None or b < i.end)) for b in starts),
                   default=0)

    def first_requests_at_zero(self, jobs: list[JobRecord]) -> list[JobRecord]:
        """The first request of each period with no replica running (jobs and replicas on one clock): what
        a user arriving at an idle, scaled-to-zero deployment waits."""
        firsts, previous = [], None
        for job in sorted(jobs, key=lambda j: j.origin):
            t = job.origin
            if self.running_at(t) == 0 and (previous is None or self.running_at(previous) > 0 or any(
                    i.ready is not None and previous < i.ready <= t for i in self.intervals)):
                firsts.append(job)
            previous = t
        return firsts

    def figures(self, jobs: list[JobRecord]) -> RunFigures:
        firsts = [j.e2e_s for j in self.first_requests_at_zero(jobs) if j.status == COMPLETED and j.e2e_s is not None]
        return RunFigures(replica_seconds=self.replica_seconds, scale_ups=self.scale_count("up"),
                          scale_downs=self.scale_count("down"), max_replicas=self.max_replicas(),
                          cold_starts=sum(j.cold_start for j in jobs),
                          waited_for_start=sum(bool(j.waited_for_start_s) for j in jobs),
                          first_request_at_zero_e2e_s=firsts)


class ErrorRow(_Model):
    """One figure of a validation: measured vs simulated. `stage` None = the whole run (replica-seconds,
    scale events). `scored` False marks a figure the simulator was fitted on (never a score)."""

    stage: str | None
    metric: str                      # mean_s, p95_s, p99_s, slo_attainment, throughput_per_s, replica_seconds, ...
    measured: float | None
    simulated: float | None
    error: float | None              # (simulated - measured) / measured
    scored: bool = True
    difference: float | None = None  # simulated - measured, in the metric's unit (decision times: seconds)
    layer: Literal["prediction", "mechanics"] = "prediction"   # mechanics: measured service times replayed
    jobs: int | None = None          # the measured jobs behind the figure
    measured_ci: tuple[float, float] | None = None    # 95 % confidence interval of the measured figure
    simulated_pi: tuple[float, float] | None = None   # 95 % prediction interval over the replications
    inside: bool | None = None       # the measured figure lies inside `simulated_pi`
    too_few: bool = False            # too few jobs for a +-10 % statement: shown, not scored
    distribution: str | None = None  # discrete outcomes: the values over the replications ("52-53 s in 3 of 10")
    quantile: float | None = None    # discrete outcomes: share of replications below the measured value


class Report(_Model):
    role: Role
    kind: Kind
    name: str
    target: str
    config: RunConfig
    cases: list[Case] = Field(default_factory=list)
    stages: list[Stage] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    coldstart: ColdStart | None = None
    replicas: ReplicaRun | None = None
    errors: list[ErrorRow] = Field(default_factory=list)   # role "validation": measured vs this report
    extra: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    schema_: str = Field(SCHEMA, alias="schema")
    path: str | None = Field(None, exclude=True)   # where it was loaded from; never written

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check_schema(self) -> Report:
        if self.schema_ != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={self.schema_!r})")
        return self

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"report {self.name!r} has no stage {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Report:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"report {path} does not exist") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"report {path} is not JSON: {err}") from None
        try:
            report = cls.model_validate(data)
        except ValidationError as err:
            raise ValueError(f"report {path} does not follow {SCHEMA}: {err}") from None
        report.path = str(path)
        return report


def environment() -> dict[str, Any]:
    """What a measured report records about the machine it ran on."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "diffusers", "transformers", "locust", "google-cloud-aiplatform", "simpy", "ray"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "versions": versions}


if __name__ == "__main__":
    json.dump(Report.model_json_schema(by_alias=True), sys.stdout, indent=1)
    print()
