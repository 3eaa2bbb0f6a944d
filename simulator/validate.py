"""`python -m simulator validate --measured REPORT`: replay every stage of a measured run and compare.

Service times (and the client overhead e2e - queue - service) come from the N=1 stage of the run (the
single-request part), else from all its stages, or from `--profile`. Each stage is replayed with its
concurrency, duration or jobs per user, its case mix (the cases of its jobs) and the server's
workers / max batch (report.config.server; default 1). Errors are (simulated - measured) / measured of
the mean, p95 and throughput of completed jobs; simulated figures are the average of `replications`.

Output: a `loadlab.schema.Report` with role "validation": the simulated stages (first replication),
`errors` (one `ErrorRow` per stage and metric; `scored=False` for a stage the service times were
fitted on, which is never a score), `extra["title"]` and `extra["max_abs_error_pct"]` (largest |error|
of the scored rows, in %).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

from loadlab.schema import ErrorRow, Report, RunConfig, ServerConfig, SimulationConfig, Stage
from loadlab.stats import mean, relative_error
from simulator.closedloop import run_stage
from simulator.profiles import ServiceTimeProfile, from_report
from simulator.scenarios import Scenario, scenario

# metric of an ErrorRow -> key of Stage.summary; the --max-error gate reads these
METRICS = {"mean_s": "mean", "p95_s": "p95", "throughput_per_s": "throughput_per_s"}
HEADERS = ["stage", "jobs", "measured mean s", "simulated mean s", "error mean %", "measured p95 s",
           "simulated p95 s", "error p95 %", "measured thr /s", "simulated thr /s", "error thr %", "scored"]


def fitted_stages(measured: Report, profile: ServiceTimeProfile) -> set[str]:
    """The measured stages the profile's values came from (none when it came from another run)."""
    if profile.fitted_on is None or profile.fitted_on[0] != measured.name:
        return set()
    return set(profile.fitted_on[1])


def validate(measured: Report, profile: ServiceTimeProfile | None = None, seed: int = 1,
             replications: int = 5) -> Report:
    """The simulated report of `measured`'s stages with measured-vs-simulated `errors`."""
    profile = profile or from_report(measured)
    server = measured.config.server or ServerConfig()
    workers, max_batch = server.workers or 1, server.max_batch or 1
    replay = scenario("local", Scenario(local_profile=profile, gpus=workers, max_batch=max_batch))
    rng = random.Random(seed)
    fitted = fitted_stages(measured, profile)
    report = Report(role="validation", kind="simulated", name=f"validate-{measured.name}", target=measured.target,
                    cases=list(measured.cases), environment={"simulator": "simpy", "seed": seed},
                    model=profile.describe(),
                    config=RunConfig(driver="simulator validate", cases=measured.config.cases,
                                     server=ServerConfig(workers=workers, max_batch=max_batch),
                                     load=measured.config.load,
                                     simulation=SimulationConfig(seed=seed, replications=replications,
                                                                 measured=measured.path or measured.name)),
                    extra={"title": f"{measured.name}: measured vs simulated ({workers} worker(s), "
                                    f"max batch {max_batch})"})
    for mstage in measured.stages:
        if not mstage.jobs:
            continue
        sims = replay_closed_stage(mstage, replay, profile, rng, replications)
        report.stages.append(sims[0])
        ms = mstage.summary
        for metric, key in METRICS.items():
            sim = mean(v for s in sims if (v := s.summary.get(key)) is not None)
            report.errors.append(ErrorRow(stage=mstage.name, metric=metric, measured=ms.get(key), simulated=sim,
                                          error=relative_error(sim, ms.get(key)),
                                          scored=mstage.name not in fitted))
    report.extra["max_abs_error_pct"] = max_abs_error_pct(report.errors)
    return report


def replay_closed_stage(mstage: Stage, replay: Scenario, profile: ServiceTimeProfile, rng: random.Random,
                        replications: int) -> list[Stage]:
    """A closed-loop or burst stage replayed: same users, duration or jobs per user, and case mix."""
    mix = Counter(j.case for j in mstage.jobs)
    users = mstage.concurrency or 1
    per_user = mstage.jobs_per_user
    duration = mstage.duration_s if not per_user else None
    if not per_user and not duration:
        per_user = max(1, round(len(mstage.jobs) / users))
    return [run_stage(replay.build, users, dict(mix), profile.overhead_sampler(rng), rng, duration_s=duration,
                      jobs_per_user=per_user, name=mstage.name)
            for _ in range(max(1, replications))]


def max_abs_error_pct(errors: list[ErrorRow], metrics=tuple(METRICS)) -> float | None:
    values = [abs(e.error) for e in errors if e.scored and e.metric in metrics and e.error is not None]
    return 100 * max(values) if values else None


def table_rows(report: Report, measured: Report) -> list[list[str]]:
    rows = []
    for stage in report.stages:
        by_metric = {e.metric: e for e in report.errors if e.stage == stage.name}
        row = [stage.name, str(len(measured.stage(stage.name).jobs))]
        for metric, digits in (("mean_s", 2), ("p95_s", 2), ("throughput_per_s", 4)):
            e = by_metric[metric]
            row += [_f(e.measured, digits), _f(e.simulated, digits), _pct(e.error)]
        row.append("yes" if by_metric["mean_s"].scored else "no (fit)")
        rows.append(row)
    return rows


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))


def cmd_validate(args: argparse.Namespace) -> int:
    measured = Report.load(args.measured)
    if args.profile:
        from simulator.profiles import load_profile
        profile = load_profile(args.profile, args.fit)
    else:
        profile = from_report(measured, fit=args.fit, stage=args.service_from)
    report = validate(measured, profile, seed=args.seed, replications=args.replications)
    print_table(HEADERS, table_rows(report, measured))
    out = args.out or Path("reports/simulated") / f"validate-{Path(args.measured).stem}.json"
    report.save(out)
    print(f"validation report: {out}")
    worst = report.extra["max_abs_error_pct"]
    print(f"largest |error| of the scored stages: {_f(worst, 1)} %")
    if args.max_error is not None and (worst is None or worst > args.max_error):
        print(f"FAIL: a stage is over --max-error {args.max_error:g} %" if worst is not None
              else "FAIL: no scored stage (every stage was fitted on)")
        return 1
    return 0
