"""`python -m simulator validate --measured REPORT [--calibration C ...]`: replay every stage of a measured
run in the simulator and compare.

Service times, the client overhead (e2e - queue - service) and replica start-up come from separate
calibration runs (`--calibration`: a `bench single` report or any measured report), never from the run
being validated. Without one, they come from the run's own N=1 stage (else all its stages), as before,
and the stages they came from are shown but not scored (`scored=False`).

Replays: an open-loop stage (its jobs carry `scheduled` times, or the run's load mode is open/trace) is
replayed with its exact arrival times and cases; a closed-loop or burst stage with its concurrency,
duration or jobs per user and case mix. The server is the run's: workers / max batch
(report.config.server; default 1). Errors are (simulated - measured) / measured of the mean, p95, p99,
SLO attainment (when the stage has an SLO or `--slo-e2e` is given) and throughput of each stage; the
simulated figure is the mean of `replications` runs.

Output: a `loadlab.schema.Report` with role "validation": the simulated stages (first replication),
`errors` (one `ErrorRow` per stage and metric), `extra["title"]` and `extra["max_abs_error_pct"]`
(largest |error| of the scored mean, p95 and throughput rows, in %, what `--max-error` checks).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from loadlab.schema import (
    DROPPED,
    ErrorRow,
    JobRecord,
    Report,
    RunConfig,
    ServerConfig,
    SimulationConfig,
    Stage,
)
from loadlab.stats import mean, relative_error
from simulator.closedloop import run_stage
from simulator.openloop import run_open_stage
from simulator.profiles import ServiceTimeProfile, from_report, from_reports, load_profile
from simulator.scenarios import Scenario, scenario

# metric of an ErrorRow -> key of Stage.summary
METRICS = {"mean_s": "mean", "p95_s": "p95", "p99_s": "p99", "slo_attainment": "slo_attainment",
           "throughput_per_s": "throughput_per_s"}
GATED = ("mean_s", "p95_s", "throughput_per_s")     # what --max-error checks, as it always did
COLUMNS = [("mean_s", "mean s", 2), ("p95_s", "p95 s", 2), ("p99_s", "p99 s", 2), ("slo_attainment", "SLO att.", 3),
           ("throughput_per_s", "thr /s", 4)]


def fitted_stages(measured: Report, profile: ServiceTimeProfile) -> set[str]:
    """The measured stages the profile's values came from (none when they came from other runs)."""
    return {name for report, stages in profile.fitted_on if report == measured.name for name in stages}


def is_open_loop(measured: Report, stage: Stage) -> bool:
    load = measured.config.load
    return any(j.scheduled is not None for j in stage.jobs) or (load is not None and load.mode in ("open", "trace"))


def base_report(measured: Report, profile: ServiceTimeProfile, seed: int, replications: int,
                server: ServerConfig, calibration: list[str]) -> Report:
    return Report(role="validation", kind="simulated", name=f"validate-{measured.name}", target=measured.target,
                  cases=list(measured.cases), environment={"simulator": "simpy", "seed": seed},
                  model=profile.describe(),
                  config=RunConfig(driver="simulator validate", cases=measured.config.cases, server=server,
                                   load=measured.config.load, slo_e2e_s=measured.config.slo_e2e_s,
                                   simulation=SimulationConfig(seed=seed, replications=replications,
                                                               measured=measured.path or measured.name,
                                                               calibration=", ".join(calibration) or None)))


def validate(measured: Report, profile: ServiceTimeProfile | None = None, seed: int = 1, replications: int = 5,
             slo_e2e_s: float | None = None, calibration: list[str] | None = None) -> Report:
    """The simulated report of `measured`'s stages with measured-vs-simulated `errors`."""
    profile = profile or from_report(measured)
    server = measured.config.server or ServerConfig()
    workers, max_batch = server.workers or 1, server.max_batch or 1
    replay = scenario("local", Scenario(local_profile=profile, gpus=workers, max_batch=max_batch))
    rng = random.Random(seed)
    fitted = fitted_stages(measured, profile)
    report = base_report(measured, profile, seed, replications, ServerConfig(workers=workers, max_batch=max_batch),
                         calibration or [])
    report.extra["title"] = f"{measured.name}: measured vs simulated ({workers} worker(s), max batch {max_batch})"
    for mstage in measured.stages:
        if not mstage.jobs:
            continue
        slo = slo_e2e_s if slo_e2e_s is not None else (mstage.slo_e2e_s or measured.config.slo_e2e_s)
        mstage = mstage.model_copy(update={"slo_e2e_s": slo})
        if is_open_loop(measured, mstage):
            sims = [replay_open_stage(mstage, replay.build, profile, rng)[0] for _ in range(max(1, replications))]
        else:
            sims = replay_closed_stage(mstage, replay, profile, rng, replications)
        report.stages.append(sims[0])
        report.errors += stage_errors(mstage, sims, scored=mstage.name not in fitted)
    report.extra["max_abs_error_pct"] = max_abs_error_pct(report.errors)
    return report


def stage_errors(mstage: Stage, sims: list[Stage], scored: bool) -> list[ErrorRow]:
    """One row per metric: the measured stage's figure against the mean of the simulated ones."""
    ms = mstage.summary
    rows = []
    for metric, key in METRICS.items():
        if key == "slo_attainment" and mstage.slo_e2e_s is None:
            continue
        sim = mean(v for s in sims if (v := s.summary.get(key)) is not None)
        rows.append(ErrorRow(stage=mstage.name, metric=metric, measured=ms.get(key), simulated=sim,
                             error=relative_error(sim, ms.get(key)), scored=scored))
    return rows


def arrivals_of(mstage: Stage) -> tuple[list[tuple[float, str]], list[JobRecord]]:
    """(sorted (t from the stage's start, case) of every request sent, the dropped ones never sent)."""
    sent = [j for j in mstage.jobs if j.status != DROPPED]
    t0 = mstage.started_at if mstage.started_at is not None else min(j.origin for j in mstage.jobs)
    return sorted((j.origin - t0, j.case) for j in sent), [j for j in mstage.jobs if j.status == DROPPED]


def replay_open_stage(mstage: Stage, make_deployment: Callable, profile: ServiceTimeProfile, rng: random.Random,
                      until_s: float | None = None):
    """An open-loop stage replayed with its exact arrivals; (simulated Stage, deployment). Requests the
    load generator dropped (over its in-flight cap) are copied as dropped: never sent, still counted."""
    arrivals, dropped = arrivals_of(mstage)
    stage, deployment = run_open_stage(make_deployment, arrivals, profile.overhead_sampler(rng), rng, mstage.name,
                                       duration_s=mstage.duration_s, until_s=until_s,
                                       arrival_rate_per_s=mstage.arrival_rate_per_s, slo_e2e_s=mstage.slo_e2e_s)
    t0 = mstage.started_at if mstage.started_at is not None else min(j.origin for j in mstage.jobs)
    stage.jobs += [JobRecord(case=j.case, status=DROPPED, submitted=j.submitted - t0, scheduled=j.origin - t0,
                             error=j.error) for j in dropped]
    return stage, deployment


def replay_closed_stage(mstage: Stage, replay: Scenario, profile: ServiceTimeProfile, rng: random.Random,
                        replications: int) -> list[Stage]:
    """A closed-loop or burst stage replayed: same users, duration or jobs per user, and case mix."""
    mix = Counter(j.case for j in mstage.jobs)
    users = mstage.concurrency or 1
    per_user = mstage.jobs_per_user
    duration = mstage.duration_s if not per_user else None
    if not per_user and not duration:
        per_user = max(1, round(len(mstage.jobs) / users))
    out = []
    for _ in range(max(1, replications)):
        st = run_stage(replay.build, users, dict(mix), profile.overhead_sampler(rng), rng, duration_s=duration,
                       jobs_per_user=per_user, name=mstage.name)
        out.append(st.model_copy(update={"slo_e2e_s": mstage.slo_e2e_s}))
    return out


def max_abs_error_pct(errors: list[ErrorRow], metrics=GATED) -> float | None:
    values = [abs(e.error) for e in errors if e.scored and e.metric in metrics and e.error is not None]
    return 100 * max(values) if values else None


def stage_table(report: Report, measured: Report) -> tuple[list[str], list[list[str]]]:
    """The per-stage table printed by the command: measured, simulated and error % of each metric."""
    shown = [c for c in COLUMNS if any(e.metric == c[0] for e in report.errors)]
    headers = ["stage", "jobs"]
    for _, label, _ in shown:
        headers += [f"measured {label}", f"simulated {label}", f"error {label.split()[0]} %"]
    headers.append("scored")
    rows = []
    for stage in report.stages:
        by_metric = {e.metric: e for e in report.errors if e.stage == stage.name}
        row = [stage.name, str(len(measured.stage(stage.name).jobs))]
        for metric, _, digits in shown:
            e = by_metric.get(metric)
            row += ["-", "-", "-"] if e is None else [_f(e.measured, digits), _f(e.simulated, digits), _pct(e.error)]
        row.append("yes" if by_metric["mean_s"].scored else "no (fit)")
        rows.append(row)
    return headers, rows


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))


def profile_for(args: argparse.Namespace, measured: Report) -> tuple[ServiceTimeProfile, list[str]]:
    """--calibration reports (never the measured run), else --profile, else the run's own N=1 stage."""
    if args.calibration:
        if args.profile:
            raise ValueError("give --calibration or --profile, not both")
        reports = [Report.load(path) for path in args.calibration]
        same = [path for path, r in zip(args.calibration, reports, strict=True)
                if Path(path).resolve() == Path(args.measured).resolve()]
        if same:
            raise ValueError(f"--calibration {same[0]} is the run being validated: calibrate on a separate run")
        if any(r.kind != "measured" for r in reports):
            raise ValueError("--calibration takes measured reports")
        return from_reports(reports, fit=args.fit, stage=args.service_from), list(args.calibration)
    if args.profile:
        return load_profile(args.profile, args.fit), []
    return from_report(measured, fit=args.fit, stage=args.service_from), []


def cmd_validate(args: argparse.Namespace) -> int:
    measured = Report.load(args.measured)
    profile, calibration = profile_for(args, measured)
    from simulator.validate_autoscaling import is_autoscaling_run, validate_autoscaling
    if is_autoscaling_run(measured):
        report = validate_autoscaling(measured, profile, seed=args.seed, replications=args.replications,
                                      slo_e2e_s=args.slo_e2e, calibration=calibration)
    else:
        report = validate(measured, profile, seed=args.seed, replications=args.replications,
                          slo_e2e_s=args.slo_e2e, calibration=calibration)
    print(report.extra["title"])
    print_table(*stage_table(report, measured))
    run_rows = [e for e in report.errors if e.stage is None]
    if run_rows:
        print("whole run:")
        print_table(["metric", "measured", "simulated", "error %", "simulated - measured"],
                    [[e.metric, _f(e.measured, 3), _f(e.simulated, 3), _pct(e.error), _f(e.difference, 3)]
                     for e in run_rows])
    out = args.out or Path("reports/simulated") / f"validate-{Path(args.measured).stem}.json"
    report.save(out)
    print(f"validation report: {out}")
    worst = report.extra["max_abs_error_pct"]
    print(f"largest |error| of the scored rows (stages' mean, p95, throughput; replica-seconds): {_f(worst, 1)} %")
    if args.max_error is not None and (worst is None or worst > args.max_error):
        print(f"FAIL: a stage is over --max-error {args.max_error:g} %" if worst is not None
              else "FAIL: no scored stage (every stage was fitted on)")
        return 1
    return 0
