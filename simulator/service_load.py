"""Service time under load: how much slower a job runs when the deployment holds other requests, fitted
from a separate calibration run, never from the run being predicted.

Why: the model's work shares the host's cores with the server's own per-request work (uploads, status
answers, result encoding of the jobs around it) and, on a host with several replicas, with the other
busy replicas and the control plane. A job alone is the fastest; under load it is slower by an amount
that depends on the machine (3-30 % measured), so it is measured, not assumed.

The model: service = (a time drawn from the jobs alone) x F_sys(in_system) x F_busy(busy), where
- `in_system` is the requests in the deployment (queued + in service, this one included) when the job's
  service starts, and F_sys is the mean service at that load over the mean alone, measured at the
  calibration's loads (jobs with no other replica busy), linear between them and held flat beyond the
  highest one measured: the server's work per job comes from its neighbours (the previous result, the
  next upload), which does not grow without bound with the queue's length;
- `busy` is the replicas (workers) busy on the same host, this one included, and F_busy the mean of
  service / (alone x F_sys) of the jobs that started with that many busy, same interpolation.
Both are exactly 1 at in_system = busy = 1: with nothing contending the model is the time alone. On a
GPU host the calibration measures the factors there (the server's CPU work then barely touches the
model's time, and F ~ 1); a profile with no calibration at two loads has no load model (factor 1).

Each job's covariates come from the report's own timestamps (one clock per report): a job is in the
system from `submitted` until its service ends (`started + service_s`), in service from `started`.
The fit's error is a leave-one-level-out prediction: each load level measured is predicted from the
others, which is what the model does for a load it was not fitted on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadlab.schema import COMPLETED, JobRecord, Report
from loadlab.stats import mean, mean_ci95

# jobs a pooled load level needs; adjacent levels are pooled (weighted by jobs) until they have it
MIN_LEVEL_JOBS = 3


@dataclass(frozen=True)
class LoadLevel:
    level: float          # in_system (or busy) of the level's jobs, their mean when levels were pooled
    factor: float         # mean service at this level / the same jobs' time alone
    ci95: float | None    # half-width of the factor's 95 % interval (per-job ratios, Student t)
    n: int


@dataclass(frozen=True)
class LoadCurve:
    """A factor by load level: 1 at level 1, linear between measured levels, flat beyond the last."""

    levels: tuple[LoadLevel, ...] = ()

    def factor(self, x: float) -> float:
        points = [(1.0, 1.0)] + [(p.level, p.factor) for p in self.levels if p.level > 1.0]
        if x <= points[0][0]:
            return 1.0
        for (x0, f0), (x1, f1) in zip(points, points[1:], strict=False):
            if x <= x1:
                return f0 + (f1 - f0) * (x - x0) / (x1 - x0)
        return points[-1][1]

    def drawn(self, rng) -> LoadCurve:
        """The curve with each level's factor drawn from its sampling distribution (normal, sd = the 95 %
        half-width / 1.96: a little wide for a level of few jobs, whose half-width holds Student's t): one
        replication's view of what the calibration's finite loaded stages could have measured."""
        return LoadCurve(tuple(p if not p.ci95 else dataclasses.replace(p, factor=max(0.1, rng.gauss(p.factor, p.ci95 / 1.96)))
                               for p in self.levels))

    def without(self, level: LoadLevel) -> LoadCurve:
        return LoadCurve(tuple(p for p in self.levels if p is not level))

    def describe(self) -> list[dict[str, Any]]:
        return [{"level": round(p.level, 3), "factor": round(p.factor, 4),
                 "ci95": None if p.ci95 is None else round(p.ci95, 4), "n": p.n} for p in self.levels]


@dataclass
class LoadModel:
    in_system: LoadCurve
    busy: LoadCurve
    alone_s: dict[str, float]                 # per case: mean service of the jobs alone
    alone_n: dict[str, int]
    source: str = ""
    n: int = 0                                # jobs the fit used (alone included)
    loo_error: list[dict[str, Any]] = field(default_factory=list)
    left_out: dict[str, Any] = field(default_factory=dict)

    def factor(self, in_system: int = 1, busy: int = 1) -> float:
        return self.in_system.factor(in_system) * self.busy.factor(busy)

    def drawn(self, rng) -> LoadModel:
        """The model with its factors drawn (`LoadCurve.drawn`), for one prediction replication."""
        return dataclasses.replace(self, in_system=self.in_system.drawn(rng), busy=self.busy.drawn(rng))

    def describe(self) -> dict[str, Any]:
        worst = max((abs(e["error"]) for e in self.loo_error if e["error"] is not None), default=None)
        return {"kind": "fitted model input: service = alone x F_sys(in_system) x F_busy(busy)",
                "calibration": self.source, "n": self.n,
                "alone_s": {c: round(v, 4) for c, v in self.alone_s.items()}, "alone_n": dict(self.alone_n),
                "in_system": self.in_system.describe(), "busy": self.busy.describe(),
                "beyond_last_level": "held flat", "left_out": self.left_out, "fit_error": {
                    "method": "leave one level out: each level's mean service predicted from the other levels",
                    "levels": self.loo_error, "max_abs_error": None if worst is None else round(worst, 4)}}


@dataclass(frozen=True)
class JobLoad:
    job: JobRecord
    in_system: int
    busy: int
    alone: bool           # no other request in the system at any time of its service
    group: int = 0        # which calibration run: a job's load is a ratio to its own run's time alone


def job_loads(jobs: Sequence[JobRecord], group: int = 0) -> list[JobLoad]:
    """Each completed job with a start and a service time, with the requests in the system and the jobs
    in service (itself included) when its service started, from the jobs' own timestamps, and whether it
    stayed alone through its service."""
    timed = [j for j in jobs if j.status == COMPLETED and j.started is not None and j.service_s is not None]
    spans = [(j.submitted, j.started, j.started + j.service_s, id(j)) for j in jobs
             if j.started is not None and j.service_s is not None]
    out = []
    for job in timed:
        t, t_end = job.started, job.started + job.service_s
        in_system = sum(1 for sub, _, end, _ in spans if sub <= t < end)
        busy = sum(1 for _, st, end, _ in spans if st <= t < end)
        alone = not any(sub < t_end and end > t for sub, _, end, other in spans if other != id(job))
        out.append(JobLoad(job, max(1, in_system), max(1, busy), alone, group))
    return out


def report_loads(report: Report, group: int = 0) -> list[JobLoad]:
    """The covariates of every job of a report (its stages share one clock, and a stage's last jobs may
    still run when the next begins)."""
    return job_loads([j for s in report.stages for j in s.jobs], group)


def _pooled(groups: dict[int, list[float]]) -> list[tuple[float, list[float], int]]:
    """(level, ratios) of the levels above 1, adjacent ones pooled until each has MIN_LEVEL_JOBS (a
    client's timestamps can make two services of one worker overlap by a hair: a lone such job makes no
    level)."""
    out, level_sum, bucket = [], 0.0, []
    for level in sorted(k for k in groups if k > 1):
        values = groups[level]
        level_sum += level * len(values)
        bucket += values
        if len(bucket) >= MIN_LEVEL_JOBS:
            out.append((level_sum / len(bucket), bucket, len(bucket)))
            level_sum, bucket = 0.0, []
    if bucket and out:        # a short tail joins the last level
        lvl, vals, n = out.pop()
        total = lvl * n + level_sum
        out.append((total / (n + len(bucket)), vals + bucket, n + len(bucket)))
    return out          # fewer than MIN_LEVEL_JOBS in all: no level (a stray overlap is not a load)


def _curve(groups: dict[int, list[float]]) -> LoadCurve:
    levels = []
    for level, ratios, n in _pooled(groups):
        m, half = mean_ci95(ratios)
        levels.append(LoadLevel(level=level, factor=m, ci95=half, n=n))
    return LoadCurve(tuple(levels))


def fit(loads: Iterable[JobLoad], source: str = "") -> LoadModel | None:
    """The load model of calibration jobs; None unless they hold jobs alone and at one other load at least
    (with fewer, nothing tells the model how the time grows). First jobs of a new replica (cold starts) are
    left out: they have their own calibrated time."""
    loads = [x for x in loads if not x.job.cold_start]
    # the time alone per calibration run and case: repeated calibrations that the machine's drift set
    # apart each give the load's ratio to their own time alone, not to a mix of both
    alone: dict[tuple[int, str], list[float]] = {}
    for x in loads:
        if x.alone:
            alone.setdefault((x.group, x.job.case), []).append(x.job.service_s)
    own = {key: mean(v) for key, v in alone.items()}
    # a job that started alone and met an arrival during its service is neither alone nor at a load the
    # simulator can know when the service starts (level 1 is the time alone): left out, and counted
    contended = [x for x in loads if x.in_system == 1 and x.busy == 1 and not x.alone]
    usable = [x for x in loads if own.get((x.group, x.job.case), 0) > 0 and not (x.in_system == 1 and x.busy == 1)]

    def ratio(x: JobLoad) -> float:
        return x.job.service_s / own[(x.group, x.job.case)]

    by_sys: dict[int, list[float]] = {}
    for x in usable:
        if x.busy == 1:
            by_sys.setdefault(x.in_system, []).append(ratio(x))
    in_system = _curve(by_sys)
    by_busy: dict[int, list[float]] = {}
    for x in usable:
        if x.busy > 1:
            by_busy.setdefault(x.busy, []).append(ratio(x) / in_system.factor(x.in_system))
    busy = _curve(by_busy)
    if not in_system.levels and not busy.levels:
        return None
    by_case: dict[str, list[float]] = {}
    for (_, case), values in alone.items():
        by_case.setdefault(case, []).extend(values)
    model = LoadModel(in_system=in_system, busy=busy, alone_s={c: mean(v) for c, v in by_case.items()},
                      alone_n={c: len(v) for c, v in by_case.items()},
                      source=source, n=len(usable) + sum(len(v) for v in alone.values()))
    ratios = [ratio(x) for x in contended if (x.group, x.job.case) in own]
    m, half = mean_ci95(ratios)
    model.left_out = {"started_alone_met_an_arrival": len(contended), "their_factor": m, "ci95": half}
    model.loo_error = leave_one_out(model)
    return model


def leave_one_out(model: LoadModel) -> list[dict[str, Any]]:
    """Each level's factor predicted by the curve without it: (predicted - measured) / measured."""
    rows = []
    for name in ("in_system", "busy"):
        curve: LoadCurve = getattr(model, name)
        for p in curve.levels:
            predicted = curve.without(p).factor(p.level)
            rows.append({"covariate": name, "level": round(p.level, 3), "n": p.n, "measured": round(p.factor, 4),
                         "predicted": round(predicted, 4), "error": round((predicted - p.factor) / p.factor, 4)})
    return rows


def fit_reports(reports: Sequence[Report]) -> LoadModel | None:
    """The load model of calibration reports (role "calibration": never a run being validated)."""
    loads = [x for k, r in enumerate(reports) for x in report_loads(r, k)]
    return fit(loads, source=", ".join(f"{r.name} ({r.path or 'unsaved'})" for r in reports))
