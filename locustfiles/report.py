"""The measured report of a Locust run, built from the job ledger at test stop, and the summary
lines the locustfile logs at the end."""

from __future__ import annotations

import time
from pathlib import Path

from loadlab.cases import parse_cases
from loadlab.schema import LoadConfig, Report, RunConfig, ServerConfig, Stage, environment
from locustfiles.ledger import JobLedger
from locustfiles.stages import StagePlan


def plan_from_options(options) -> StagePlan:
    return StagePlan(users=options.stages, stage_seconds=options.stage_seconds,
                     jobs_per_user=options.jobs_per_user or None,
                     max_stage_seconds=options.max_stage_seconds or None)


def build_report(options, ledger: JobLedger, stopped_at: float | None = None) -> Report:
    """The measured report of a run: one `Stage` per planned stage that started, with its jobs."""
    plan = plan_from_options(options)
    cases = parse_cases(options.cases)
    stages = []
    for planned in plan.stages:
        if planned.name not in ledger.started_at:
            continue
        duration = None
        if planned.duration_s:
            # a stage cut short by a stop is only as long as it ran
            duration = planned.duration_s
            following = [t for t in ledger.started_at.values() if t > ledger.started_at[planned.name]]
            end = min(following) if following else (stopped_at or time.time())
            duration = min(duration, end - ledger.started_at[planned.name])
        stages.append(Stage(name=planned.name, concurrency=planned.users, duration_s=duration,
                            jobs_per_user=planned.jobs_per_user, started_at=ledger.started_at[planned.name],
                            jobs=list(ledger.jobs.get(planned.name, []))))
    name = options.report_name or f"locust-{options.target}-{plan.mode}"
    config = RunConfig(
        driver="locust", cases=options.cases,
        server=ServerConfig(url=options.host),
        load=LoadConfig(mode=plan.mode, users=list(plan.users),
                        stage_seconds=None if plan.jobs_per_user else plan.stage_seconds,
                        jobs_per_user=plan.jobs_per_user))
    return Report(role="load", kind="measured", name=name, target=options.target, cases=cases, stages=stages,
                  environment=environment(), config=config)


def default_report_path(options) -> Path:
    mode = "burst" if options.jobs_per_user else "closed"
    return Path("reports/measured") / f"locust-{options.target}-{mode}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


def summary_lines(report: Report) -> list[str]:
    """One line per stage for the end-of-run log."""
    lines = []
    for stage in report.stages:
        s = stage.summary
        mean = f"{s['mean']:.2f} s" if s["mean"] is not None else "-"
        lines.append(f"{stage.name}: {s['completed']}/{s['jobs']} completed, mean {mean}")
    return lines
