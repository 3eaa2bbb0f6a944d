"""`python -m simulator validate`: pick the service-time profile (a separate calibration, never the run
being validated), replay the measured run with the validator its kind needs (`validate` for closed,
burst, open-loop and trace stages; `validate_autoscaling` for a replicated run) and print the tables.
Apart from both validators, so that they share their scoring (`simulator/validate.py`) without
importing each other."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadlab.schema import Report
from simulator.profiles import ServiceTimeProfile, from_report, from_reports, load_profile
from simulator.validate import COLUMNS, validate
from simulator.validate_autoscaling import is_autoscaling_run, validate_autoscaling


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
