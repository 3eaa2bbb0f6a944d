"""`python -m simulator validate`: pick the service-time profile (a separate calibration, never the run
being validated), replay the measured run with the validator its kind needs (`validate` for closed,
burst, open-loop and trace stages; `validate_autoscaling` for a replicated run) and print the tables.
Apart from both validators, so that they share their scoring (`simulator/validate.py`) without
importing each other."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadlab.schema import Report
from simulator.controller_total import describe as describe_totals
from simulator.controller_total import layer_inputs
from simulator.profiles import ServiceTimeProfile, from_report, from_reports, load_profile
from simulator.service_check import service_checks
from simulator.validate import COLUMNS, validate
from simulator.validate_autoscaling import is_autoscaling_run, validate_autoscaling

# --service -> the validation layers it runs
SERVICE_LAYERS = {"both": ("prediction", "mechanics"), "measured": ("mechanics",), "calibrated": ("prediction",)}


def stage_table(report: Report, measured: Report, layer: str = "prediction") -> tuple[list[str], list[list[str]]]:
    """One layer's per-stage table: measured, simulated and error % of each metric."""
    errors = [e for e in report.errors if e.layer == layer]
    shown = [c for c in COLUMNS if any(e.metric == c[0] for e in errors)]
    headers = ["stage", "jobs"]
    for _, label, _ in shown:
        headers += [f"measured {label}", f"simulated {label}", f"error {label.split()[0]} %"]
    headers.append("scored")
    rows = []
    for stage in (s for s in measured.stages if any(e.stage == s.name for e in errors)):
        by_metric = {e.metric: e for e in errors if e.stage == stage.name}
        row = [stage.name, str(len(stage.jobs))]
        for metric, _, digits in shown:
            e = by_metric.get(metric)
            few = e is not None and e.too_few and not by_metric["mean_s"].too_few
            row += ["-", "-", "-"] if e is None else [_f(e.measured, digits), _f(e.simulated, digits),
                                                      _pct(e.error) + (" few" if few else "")]
        row.append(_scored(by_metric["mean_s"]))
        rows.append(row)
    return headers, rows


def interval_table(report: Report) -> tuple[list[str], list[list[str]]]:
    """The prediction layer's rows with their intervals: the measured 95 % CI, the simulated 95 %
    prediction interval over the replications, and whether the measured figure lies inside it."""
    headers = ["stage", "metric", "jobs", "measured", "95 % CI", "simulated", "95 % PI", "inside", "score"]
    rows = []
    for e in report.errors:
        if e.layer != "prediction" or e.stage is None or e.metric not in ("mean_s", "p95_s", "p99_s", "slo_attainment"):
            continue
        digits = 3 if e.metric == "slo_attainment" else 2
        rows.append([e.stage, e.metric, str(e.jobs or "-"), _f(e.measured, digits), _interval(e.measured_ci, digits),
                     _f(e.simulated, digits), _interval(e.simulated_pi, digits),
                     "-" if e.inside is None else ("yes" if e.inside else "NO"),
                     _scored(e) if not e.scored or e.too_few else f"{_pct(e.error)} %"])
    return headers, rows


def run_table(report: Report, layer: str) -> tuple[list[str], list[list[str]]]:
    """A replicated run's whole-run rows of one layer: figures, decision times, and over the replications
    the distribution of each discrete outcome and where the measured one falls."""
    headers = ["metric", "measured", "simulated", "error %", "simulated - measured", "over replications",
               "measured falls at"]
    rows = [[e.metric, _f(e.measured, 3), _f(e.simulated, 3), _pct(e.error), _f(e.difference, 3),
             e.distribution or _interval(e.simulated_pi, 2), "-" if e.quantile is None else f"{e.quantile:.2f}"]
            for e in report.errors if e.stage is None and e.layer == layer]
    return headers, rows


def _scored(e) -> str:
    if not e.scored:
        return "no (fit)"
    return "too few jobs" if e.too_few else "yes"


def _interval(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v[0]:.{digits}f}-{v[1]:.{digits}f}"


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))


LAYER_TITLES = {"mechanics": "mechanics (each job's measured service time and overhead; Ray: each replica's "
                            "measured start-up and the run's own decision delay)",
                "prediction": "prediction (service times from the calibration; replications give the intervals)"}


def print_layers(report: Report, measured: Report) -> None:
    for layer in ("mechanics", "prediction"):
        if not any(e.layer == layer for e in report.errors):
            continue
        print(f"\n{LAYER_TITLES[layer]}:")
        headers, rows = stage_table(report, measured, layer)
        print_table(headers, rows)
        if any(str(c).endswith(" few") for r in rows for c in r):
            print("  ('few': a throughput of fewer than 10 jobs finished in the stage, where one job moves it by "
                  "more than 10 %: shown, not scored)")
        if layer == "prediction":
            print("intervals (a measured figure whose 95 % CI is wider than +-10 % is 'too few jobs', not scored):")
            print_table(*interval_table(report))
        if any(e.stage is None and e.layer == layer for e in report.errors):
            print("whole run:")
            print_table(*run_table(report, layer))
        print_controller_total(report, layer)


def print_controller_total(report: Report, layer: str) -> None:
    """The autoscaler's input, replayed against Ray's (simulator/controller_total.py), when recorded."""
    line = describe_totals(layer_inputs(report.extra, layer))
    if line:
        print(line)


def print_service_check(rows: list[dict]) -> None:
    """The run's own service times against the calibration's at the same loads (simulator/service_check.py)."""
    print("\nservice check (a diagnostic, not an input: the run's own model time / the calibration's at the loads "
          "its jobs met):")
    table = [[r["stage"] or "whole run", str(r["n"]), _f(r["measured_s"]), _f(r["predicted_s"]), _f(r["ratio"], 3),
              _interval(r["ci95"], 3), r["verdict"]] for r in rows]
    print_table(["stage", "jobs", "measured s", "calibrated s", "ratio", "95 % CI", "verdict"], table)
    whole = rows[-1]
    if whole["verdict"].endswith("than calibrated"):
        print(f"  this run's jobs were {whole['verdict']} (x{whole['ratio']:.2f}): the machine or the server "
              "process is not the calibrated one, and the prediction's errors carry it; calibrate again on "
              "this server, before and after the run (--calibration BEFORE --calibration AFTER)")


def print_drift(drift: dict) -> None:
    if drift["calibrations"] < 2:
        print(f"drift: {drift['note']}")
        return
    for case, d in drift["cases"].items():
        runs = ", ".join(f"{r['mean']:.3f} s (n {r['n']})" for r in d["alone_s"])
        print(f"drift between the {drift['calibrations']} calibrations, {case}: time alone (each job over its load factor) {runs}; last / first "
              f"x{d['last_over_first']:.3f} (each replication draws a speed within their span)")
    wander = drift.get("wander")
    if wander:
        print(f"speed wander between their blocks (stages): SD {100 * wander['sd']:.2f} % ({wander['blocks']} blocks, "
              f"{wander['dof']} dof; each replication's speed ~ N(1, it) on top)")


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
    layers = SERVICE_LAYERS[getattr(args, "service", "both")]
    run = validate_autoscaling if is_autoscaling_run(measured) else validate
    report = run(measured, profile, seed=args.seed, replications=args.replications, slo_e2e_s=args.slo_e2e,
                 calibration=calibration, layers=layers)
    print(report.extra["title"])
    print_layers(report, measured)
    if "prediction" in layers:
        report.extra["service_check"] = [c.to_dict() for c in service_checks(measured, profile)]
        print_service_check(report.extra["service_check"])
        print_drift(report.model["drift"])     # the profile's describe() holds it, once
    out = args.out or Path("reports/simulated") / f"validate-{Path(args.measured).stem}.json"
    report.save(out)
    print(f"validation report: {out}")
    worst = report.extra["max_abs_error_pct"]
    for layer, value in report.extra.get("max_abs_error_pct_by_layer", {}).items():
        print(f"{layer}: largest |error| of the scored rows (stages' mean, p95, throughput; replica-seconds): "
              f"{_f(value, 1)} %")
    if args.max_error is not None and (worst is None or worst > args.max_error):
        print(f"FAIL: a stage is over --max-error {args.max_error:g} %" if worst is not None
              else "FAIL: no scored stage (every stage was fitted on)")
        return 1
    return 0
