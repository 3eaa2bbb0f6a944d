"""The plans read from the Locust options, the measured report of a run built from the job ledger
at test stop, and the summary lines the locustfile logs at the end."""

from __future__ import annotations

import os
import time
from pathlib import Path

from loadlab.cases import parse_cases
from loadlab.schema import JobRecord, LoadConfig, Report, RunConfig, ServerConfig, Stage, environment
from loadlab.stats import PERCENTILES, format_s, pct_key
from loadlab.trace import read_trace
from locustfiles.arrivals import OpenLoopPlan
from locustfiles.ledger import JobLedger, OpenLoopRun
from locustfiles.stages import StagePlan


def plan_from_options(options) -> StagePlan:
    return StagePlan(users=options.stages, stage_seconds=options.stage_seconds,
                     jobs_per_user=options.jobs_per_user or None,
                     max_stage_seconds=options.max_stage_seconds or None)


def open_plan_from_options(options) -> OpenLoopPlan:
    """The open-loop plan of `--arrival poisson|gamma|constant|trace`; checks every case name (the
    trace's too) against the known cases."""
    if options.arrival == "trace":
        if not options.trace:
            raise ValueError("--arrival trace needs --trace FILE (CSV with header t_s,case)")
        rows = read_trace(options.trace)
        parse_cases(",".join(sorted({case for _, case in rows})) or "-")
        return OpenLoopPlan(arrival="trace", stage_seconds=options.stage_seconds, trace=rows,
                            time_scale=options.time_scale)
    if not options.rates:
        raise ValueError(f"--arrival {options.arrival} needs --rates, e.g. 0.2,0.5,1 (arrivals per second)")
    return OpenLoopPlan(arrival=options.arrival, stage_seconds=options.stage_seconds, rates=options.rates,
                        cases=[c.name for c in parse_cases(options.cases)], burstiness=options.burstiness,
                        seed=options.seed)


def mode_of(options) -> str:
    if options.arrival == "closed":
        return "burst" if options.jobs_per_user else "closed"
    return "trace" if options.arrival == "trace" else "open"


def build_report(options, ledger: JobLedger, stopped_at: float | None = None) -> Report:
    """The measured report of a run: one `Stage` per planned stage that started, with its jobs."""
    stages, cases, load = stages_at(options, ledger, stopped_at or time.time())
    slo = options.slo_e2e or None
    name = options.report_name or f"locust-{options.target}-{load.mode}"
    load.cpus = _pinned_cpus()
    config = RunConfig(driver="locust", cases=options.cases, slo_e2e_s=slo, server=ServerConfig(url=options.host),
                       load=load)
    return Report(role="load", kind="measured", name=name, target=options.target, cases=cases, stages=stages,
                  environment=environment(), config=config)


def stages_at(options, ledger: JobLedger, at: float):
    """(the run's stages as they stand at epoch time `at`, its cases, its LoadConfig): what the report
    at stop holds, and what the web UI's cockpit shows while the run goes on."""
    if ledger.open_loop is not None:
        stages, cases, load = _open_loop_stages(options, ledger, ledger.open_loop, at)
    else:
        stages, cases, load = _closed_loop_stages(options, ledger, at)
    for stage in stages:
        stage.slo_e2e_s = options.slo_e2e or None
    return stages, cases, load


def _pinned_cpus() -> list[int] | None:
    """The CPUs this load generator was pinned to (`bench`, `make demo` pin it); None when it may use all."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    mine = os.sched_getaffinity(0)
    return sorted(mine) if len(mine) < (os.cpu_count() or 0) else None


def _closed_loop_stages(options, ledger: JobLedger, stopped_at: float):
    plan = plan_from_options(options)
    stages = []
    for planned in plan.stages:
        if planned.name not in ledger.started_at:
            continue
        duration = None
        if planned.duration_s:
            # a stage cut short by a stop is only as long as it ran
            duration = planned.duration_s
            following = [t for t in ledger.started_at.values() if t > ledger.started_at[planned.name]]
            end = min(following) if following else stopped_at
            duration = min(duration, end - ledger.started_at[planned.name])
        stages.append(Stage(name=planned.name, concurrency=planned.users, duration_s=duration,
                            jobs_per_user=planned.jobs_per_user, started_at=ledger.started_at[planned.name],
                            jobs=list(ledger.jobs.get(planned.name, []))))
    load = LoadConfig(mode=plan.mode, users=list(plan.users),
                      stage_seconds=None if plan.jobs_per_user else plan.stage_seconds,
                      jobs_per_user=plan.jobs_per_user)
    return stages, parse_cases(options.cases), load


def _open_loop_stages(options, ledger: JobLedger, run: OpenLoopRun, stopped_at: float):
    plan = run.plan
    recorded = {j.extra.get("arrival") for jobs in ledger.jobs.values() for j in jobs}
    stages = []
    for planned in plan.stages:
        started = run.origin + planned.start_s
        if started >= stopped_at:
            continue
        jobs = list(ledger.jobs.get(planned.name, []))
        # an arrival due before the stop without a record was still in flight (or lost): never dropped silently
        jobs += [JobRecord(case=a.case, status="in_flight", scheduled=run.origin + a.t_s, submitted=run.origin + a.t_s,
                           error="no record when the run stopped", extra={"arrival": a.index})
                 for a in run.arrivals
                 if a.stage == planned.name and a.index not in recorded and run.origin + a.t_s <= stopped_at]
        stages.append(Stage(name=planned.name, arrival_rate_per_s=planned.rate_per_s, started_at=started,
                            duration_s=min(planned.duration_s, stopped_at - started), jobs=jobs))
    load = LoadConfig(mode=plan.mode, arrival=plan.arrival, rates_per_s=[s.rate_per_s for s in plan.stages],
                      burstiness=plan.burstiness if plan.arrival == "gamma" else None,
                      seed=plan.seed if plan.arrival != "trace" else None,
                      trace=options.trace or None if plan.arrival == "trace" else None,
                      time_scale=plan.time_scale if plan.arrival == "trace" else None,
                      max_in_flight=options.max_in_flight or None, stage_seconds=plan.stage_seconds)
    case_names = sorted({a.case for a in run.arrivals}) if plan.arrival == "trace" else plan.cases
    return stages, parse_cases(",".join(case_names)), load


def default_report_path(options) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path("reports/measured") / f"locust-{options.target}-{mode_of(options)}-{stamp}.json"


def summary_lines(report: Report) -> list[str]:
    """One line per stage for the end-of-run log: outcomes, end-to-end mean and tail percentiles,
    dispatch lateness (open loop), SLO attainment and goodput (with --slo-e2e)."""
    lines = []
    for stage in report.stages:
        s = stage.summary
        outcomes = ", ".join(f"{n} {k}" for k, n in (("failed", s.failed), ("rejected", s.rejected), ("dropped", s.dropped)) if n)
        line = f"{stage.name}: {s.completed}/{s.jobs} completed" + (f" ({outcomes})" if outcomes else "")
        if s.count:
            tail = " ".join(f"{pct_key(p)} {format_s(s.pct(p), 0)}" for p in PERCENTILES)
            line += f"; e2e mean {format_s(s.mean, 0)} {tail} s"
        late = s.lateness_s
        if late.count:
            line += f"; lateness p99 {late.p99 * 1000:.1f} ms max {late.max * 1000:.1f} ms"
        if s.slo_e2e_s is not None:
            attained = f"{s.slo_attainment * 100:.1f} %" if s.slo_attainment is not None else "-"
            goodput = f"{s.goodput_per_s:.3f}/s" if s.goodput_per_s is not None else "-"
            line += f"; SLO {s.slo_e2e_s:g} s: {attained} attained, goodput {goodput}"
        lines.append(line)
    return lines
