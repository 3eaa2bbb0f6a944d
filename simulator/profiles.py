"""Service-time profiles: how long one job of a case takes on one worker/replica, how long a replica
takes to provision and load the model, and the client-side overhead around a job.

Built-in: `seed-3090` and `seed-t4` from the article's benchmark 1 (mean, std per case; sampled from a
normal truncated at 10% of the mean) and benchmark 2 (instance start 127 s + model load 43 s).
From a measured report (loadlab/schema.py): the empirical per-case `service_s` of completed jobs (the
N=1 stage when there is one, else every stage), the per-job overhead e2e - queue - service, and the
measured cold-start stages from `report.coldstart`. Empirical sampling (resampling the measured
values) is the default; `fit="normal"` fits a normal instead. `fitted_on` names the report and
stages the values came from, so a validation never scores them.

Under load (simulator/service_load.py): a report with role "calibration" (`bench calibrate`) that holds
jobs alone and at other loads also gives the profile a `LoadModel`, which scales each sampled time by
the load the job meets; the first job of a new replica is drawn from the measured first jobs (cold
starts) when there are some. Any other report gives neither: its times are used as they are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadlab import article
from loadlab.schema import COMPLETED, JobRecord, Report, Stage
from loadlab.stats import mean, mean_ci95, summarize
from simulator.machine_speed import by_case, calibration_blocks, speed_wander
from simulator.mechanics import first_jobs_beside_busy, measured_holds, startups_by_busy
from simulator.service_load import LoadModel, fit_reports

ARTICLE_STARTUP = "the article, benchmark 2"


@dataclass
class ServiceTimeProfile:
    name: str
    service_samples: dict[str, list[float]] = field(default_factory=dict)   # empirical, per case
    service_normal: dict[str, tuple[float, float]] = field(default_factory=dict)  # (mean, std) per case
    overhead_samples: dict[str, list[float]] = field(default_factory=dict)  # client overhead per case
    provision_s: float = 127.0        # instance start (article benchmark 2)
    load_s: float = 43.0              # model load (article benchmark 2)
    source: str = ""
    fitted_on: list[tuple[str, list[str]]] = field(default_factory=list)   # (report, stages) values came from
    startup_from: str = ARTICLE_STARTUP   # where provision_s + load_s came from
    load: LoadModel | None = None         # service time under load (None: the time alone at any load)
    first_samples: dict[str, list[float]] = field(default_factory=dict)  # first job of a new replica, per case
    # first jobs of new replicas that started beside others busy, by how many (simulator/mechanics.py
    # `first_jobs_beside_busy`), per case
    first_beside_busy: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    # repeated calibrations, in the order given (e.g. one before the run and one after): each one's jobs
    # per case (alone; with a load model and two or more, every warm job over its load factor); two or
    # more make the machine's drift between them part of a prediction (`drift`)
    calibration_groups: list[dict[str, list[float]]] = field(default_factory=list)
    # one worker's measured time after a job's model time before it took the next waiting one (the
    # server's own per-job work), per case: calibrations of a one-worker server (`calibration_holds`)
    hold_samples: dict[str, list[float]] = field(default_factory=dict)
    # the SD of the machine's speed from block to block within repeated calibrations (simulator/machine_speed.py)
    speed_wander: dict[str, Any] | None = None
    # each replica's measured start -> ready in the calibrations that recorded replicas, by the replicas
    # busy when it was asked for (simulator/mechanics.py `startups_by_busy`): a prediction draws every
    # replica's start-up from them (a first request at zero waits for one whole start-up, not a mean)
    startup_samples: dict[int, list[float]] = field(default_factory=dict)

    @property
    def cases(self) -> list[str]:
        return sorted(set(self.service_samples) | set(self.service_normal))

    def mean_service_s(self, case: str) -> float:
        if case in self.service_samples:
            return mean(self.service_samples[case])
        return self.service_normal[case][0]

    def sampler(self, rng: random.Random):
        """A fast function case -> one service time (seconds). The keywords say what the job meets when its
        service starts: `in_system` requests in the deployment (queued + in service, itself included),
        `busy` replicas/workers busy on its host (itself included), `first` the first job of a new replica;
        `job` is the simulator's job (unused here). Without a load model and first-job samples, the time
        alone whatever they say."""
        emp = {c: list(v) for c, v in self.service_samples.items() if v}
        norm = dict(self.service_normal)
        firsts = {c: list(v) for c, v in self.first_samples.items() if v}
        beside = {b: dict(v) for b, v in self.first_beside_busy.items()}
        load = self.load

        def alone(case: str) -> float:
            values = emp.get(case)
            if values is not None:
                return values[int(rng.random() * len(values))]
            try:
                mean, std = norm[case]
            except KeyError:
                raise ValueError(f"profile {self.name!r} has no service time for case {case!r} "
                                 f"(has {self.cases})") from None
            return max(0.1 * mean, rng.gauss(mean, std))

        def first_job(case: str, busy: int) -> float | None:
            """A measured first job beside as many busy replicas (else the most measured below that),
            scaled by the warm jobs' contention for what lies between; else one measured at zero scaled
            by it; None without either."""
            levels = [b for b, by_case in beside.items() if b <= busy - 1 and by_case.get(case)]
            values, level = (beside[max(levels)][case], max(levels) + 1) if levels else (firsts.get(case), 1)
            if not values:
                return None
            seconds = values[int(rng.random() * len(values))]
            return seconds * load.busy.factor(busy) / load.busy.factor(level) if load is not None else seconds

        def sample(case: str, *, in_system: int = 1, busy: int = 1, first: bool = False, job=None) -> float:
            seconds = first_job(case, busy) if first else None
            if seconds is not None:
                return seconds
            seconds = alone(case)
            return seconds * load.factor(in_system, busy) if load is not None else seconds
        return sample

    def startup_sampler(self, rng: random.Random):
        """busy -> one measured start-up: of the replicas started beside as many busy ones, else beside the
        most busy ones measured below that, else the fewest measured; None without samples."""
        levels = {b: list(v) for b, v in self.startup_samples.items() if v}
        if not levels:
            return None

        def sample(busy: int = 0) -> float:
            below = [b for b in levels if b <= busy]
            values = levels[max(below) if below else min(levels)]
            return values[int(rng.random() * len(values))]
        return sample

    def hold_s(self, case: str) -> float:
        """The mean hold after a job of `case` (of every case when it has none measured; 0 without any)."""
        values = self.hold_samples.get(case) or [x for v in self.hold_samples.values() for x in v]
        return mean(values) if values else 0.0

    def without_hold_in_overhead(self) -> ServiceTimeProfile:
        """This profile with each case's hold taken out of the client overhead: the overhead measured
        (e2e - queue - service) holds the server's work after the model call, which a replay that keeps
        the worker busy for it (simulator/validate.py `held`) must not count twice."""
        holds = {c: self.hold_s(c) for c in self.overhead_samples}
        return replace(self, overhead_samples={c: [max(0.0, x - holds[c]) for x in v]
                                               for c, v in self.overhead_samples.items()})

    def overhead_sampler(self, rng: random.Random):
        emp = {c: list(v) for c, v in self.overhead_samples.items() if v}

        def sample(case: str) -> float:
            values = emp.get(case)
            if not values:
                return 0.0
            return values[int(rng.random() * len(values))]
        return sample

    def describe(self) -> dict[str, Any]:
        return {"profile": self.name, "source": self.source,
                "service_mean_s": {c: round(self.mean_service_s(c), 4) for c in self.cases},
                "samples": {c: len(v) for c, v in self.service_samples.items()},
                "overhead_mean_s": {c: (mean(v) if v else 0.0) for c, v in self.overhead_samples.items()},
                "provision_s": self.provision_s, "load_s": self.load_s, "startup_from": self.startup_from,
                "startup_s": {f"{busy} busy": {"mean": round(mean(v), 4), "n": len(v), "min": round(min(v), 4),
                                                "max": round(max(v), 4)} for busy, v in sorted(self.startup_samples.items())},
                "fitted_on": [{"report": r, "stages": st} for r, st in self.fitted_on],
                "first_job_s": {c: {"mean": round(mean(v), 4), "n": len(v)} for c, v in self.first_samples.items()},
                "first_job_beside_busy_s": {f"{b} busy": {c: {"mean": round(mean(v), 4), "n": len(v)} for c, v in cases.items()}
                                            for b, cases in sorted(self.first_beside_busy.items())},
                "hold_after_job_s": {c: {"mean": round(mean(v), 4), "n": len(v)} for c, v in self.hold_samples.items()},
                "service_load": (self.load.describe() if self.load is not None
                                 else "none: the time alone at every load (no calibration at two loads)"),
                "drift": self.drift()}

    def drift(self) -> dict[str, Any]:
        """Per case, the time alone of each repeated calibration (mean, n, 95 % CI) and the last one's over
        the first's: the machine's drift over the span of the calibrations, a measured input."""
        if len(self.calibration_groups) < 2:
            return {"calibrations": len(self.calibration_groups),
                    "note": f"{len(self.calibration_groups)} calibration report(s): the machine's drift is not "
                            "measured, and no prediction interval holds it"}
        out: dict[str, Any] = {"calibrations": len(self.calibration_groups), "cases": {},
                               "wander": self.speed_wander}
        for case in self.cases:
            runs = [g[case] for g in self.calibration_groups if g.get(case)]
            if len(runs) < 2:
                continue
            means = [mean_ci95(v) for v in runs]
            out["cases"][case] = {"alone_s": [{"mean": round(m, 4), "ci95": None if h is None else round(h, 4),
                                               "n": len(v)} for (m, h), v in zip(means, runs, strict=True)],
                                  "last_over_first": round(means[-1][0] / means[0][0], 4)}
        return out


def builtin(name: str) -> ServiceTimeProfile:
    key = {"seed-3090": "local-3090", "seed-t4": "vertex-t4"}.get(name)
    if key is None:
        raise ValueError(f"unknown built-in profile {name!r}; use seed-3090, seed-t4 or a report path")
    return ServiceTimeProfile(name=name, service_normal=dict(article.SINGLE[key]),
                              provision_s=article.COLDSTART_S["instance_start"],
                              load_s=article.COLDSTART_S["model_load"],
                              source=f"quoted from the article ({article.SOURCE}), benchmarks 1-2")


def fit_stages(report: Report, stage: str = "n1") -> list[Stage]:
    """The stages service times are taken from. stage='n1': the concurrency-1 stage(s) when present (the
    single-request part), else all stages; stage='all': every stage."""
    if stage == "n1":
        ones = [s for s in report.stages if (s.concurrency or 1) == 1]
        return ones or list(report.stages)
    return list(report.stages)


def from_report(report: Report, fit: str = "empirical", stage: str = "n1") -> ServiceTimeProfile:
    """Service times from one measured report (see `from_reports`)."""
    return from_reports([report], fit, stage)


def from_reports(reports: list[Report], fit: str = "empirical", stage: str = "n1") -> ServiceTimeProfile:
    """Service times, client overhead and replica start-up from measured reports (calibration runs).

    Per case, the `service_s` of completed jobs of each report's `fit_stages` (a job that met a cold
    start is left out when warm ones exist: the start is modelled on its own). The overhead is
    e2e - queue - service. Calibration reports (role "calibration") also give the load model (every stage
    of theirs), and cold-start jobs the first-job times. The start-up: `set_startup`."""
    beside = first_jobs_beside(reports)
    service, cold, overhead, fitted_on, groups = measured_samples(reports, stage, beside)
    for case, values in cold.items():
        service.setdefault(case, values)          # only cold samples of this case: better than none
    calibrations = [r for r in reports if r.role == "calibration"]
    load = fit_reports(calibrations) if calibrations else None
    if load is not None:        # the load model reads every stage of its calibration runs
        fitted_on = [(r.name, [st.name for st in r.stages]) if r.role == "calibration" else (r.name, used)
                     for r, (_, used) in zip(reports, fitted_on, strict=True)]
    wander = None
    if load is not None and len(calibrations) > 1:
        blocks = [calibration_blocks(r, load) for r in calibrations]
        groups = [by_case(b) for b in blocks]
        wander = speed_wander(blocks)
    names = ", ".join(r.name for r in reports)
    if not service:
        raise ValueError(f"report(s) {names} have no completed job with a service time")
    prof = ServiceTimeProfile(name=f"report:{names}", overhead_samples=overhead,
                              source="measured report(s) " + ", ".join(f"{r.name} ({r.path or ''})" for r in reports),
                              fitted_on=fitted_on, load=load,
                              first_samples={c: v for c, v in cold.items() if c in service and service[c] is not v},
                              calibration_groups=[g for g in groups if g], hold_samples=calibration_holds(calibrations),
                              speed_wander=wander)
    if fit == "normal":
        for case, vals in service.items():
            fitted = summarize(vals, percentiles=())
            prof.service_normal[case] = (fitted["mean"], fitted["std"])
    else:
        prof.service_samples = service
    set_startup(prof, reports)
    for job, busy in beside.values():
        prof.first_beside_busy.setdefault(busy, {}).setdefault(job.case, []).append(float(job.service_s))
    return prof


def first_jobs_beside(reports: list[Report]) -> dict[int, tuple[JobRecord, int]]:
    """First jobs beside busy replicas (with how many), by id, of every stage of a calibration (never of a
    validated run): samples of their own (`first_beside_busy`), apart from the first jobs at zero."""
    return {id(j): (j, busy) for r in reports if r.replicas is not None and r.role == "calibration"
            for busy, jobs in first_jobs_beside_busy([j for st in r.stages for j in st.jobs]).items() for j in jobs}


def measured_samples(reports: list[Report], stage: str, beside: dict[int, tuple[JobRecord, int]]):
    """Per case, the service times of the fit stages' completed jobs (warm; cold ones apart), their
    overheads, which stages each report gave, and each calibration's warm jobs (`from_reports`)."""
    service: dict[str, list[float]] = {}
    cold: dict[str, list[float]] = {}
    overhead: dict[str, list[float]] = {}
    fitted_on: list[tuple[str, list[str]]] = []
    groups: list[dict[str, list[float]]] = []
    for report in reports:
        # a calibration's loaded stages feed its load model, never the times alone
        stages = fit_stages(report, "n1" if report.role == "calibration" else stage)
        fitted_on.append((report.name, [st.name for st in stages]))
        if report.role == "calibration":
            groups.append({})
        for job in (j for st in stages for j in st.jobs if j.status == COMPLETED and id(j) not in beside):
            s = job.service_s if job.service_s is not None else job.e2e_s
            if s is None:
                continue
            (cold if job.cold_start else service).setdefault(job.case, []).append(float(s))
            if report.role == "calibration" and not job.cold_start:
                groups[-1].setdefault(job.case, []).append(float(s))
            if job.e2e_s is not None and job.service_s is not None:
                over = job.e2e_s - job.service_s - (job.queue_s or 0.0)
                overhead.setdefault(job.case, []).append(max(0.0, float(over)))
    return service, cold, overhead, fitted_on, groups


def calibration_holds(reports: list[Report]) -> dict[str, list[float]]:
    """Per case, the measured holds of one worker (simulator/mechanics.py `measured_holds`) in every stage
    of these calibrations: where jobs waited back to back. A deployment of several workers or replicas
    has no one queue to read them from: none."""
    out: dict[str, list[float]] = {}
    for report in reports:
        server = report.config.server
        if report.replicas is not None or (server is not None and (server.workers or 1) > 1):
            continue
        for st in report.stages:
            for job, hold in measured_holds(st.jobs, waited_through=True).values():
                out.setdefault(job.case, []).append(hold)
    return out


def set_startup(prof: ServiceTimeProfile, reports: list[Report]) -> None:
    """The replica start-up: every replica start -> ready of the reports that recorded replicas (their
    mean, and the samples), else the first cold-start run's process start + model load."""
    recorded = [(r.name, startups_by_busy(r.replicas, [j for st in r.stages for j in st.jobs]))
                for r in reports if r.replicas is not None]
    recorded = [(name, startups) for name, startups in recorded if startups]
    if recorded:
        for _, startups in recorded:
            for busy, values in startups.items():
                prof.startup_samples.setdefault(busy, []).extend(values)
        prof.provision_s, prof.load_s = mean(x for v in prof.startup_samples.values() for x in v), 0.0
        prof.startup_from = "replica start -> ready in " + ", ".join(
            f"{name} ({sum(map(len, startups.values()))} replicas)" for name, startups in recorded)
        return
    for report in reports:
        cs = report.coldstart.stages_s if report.coldstart else {}
        if cs:
            prof.provision_s = float(cs.get("instance_start") or cs.get("process_start") or 0.0)
            prof.load_s = float(cs.get("model_load") or cs.get("load") or 0.0)
            prof.startup_from = f"cold start of {report.name}"
            break


def load_profile(spec: str, fit: str = "empirical") -> ServiceTimeProfile:
    """'seed-3090', 'seed-t4' or the path of a measured report."""
    if spec in ("seed-3090", "seed-t4"):
        return builtin(spec)
    if not Path(spec).is_file():
        raise ValueError(f"--profile {spec!r}: not a built-in profile (seed-3090, seed-t4) nor a report file")
    report = Report.load(spec)
    return from_report(report, fit=fit)
