"""`python -m simulator recommend`: the answer first. The decided sweep (simulator/decide.py) at one volume:
the recommended setting, $/month with its 95 % interval and its bill, p95 and SLO attainment with intervals,
the runner-up, whether the choice is decided, and beside each figure the simulator's validation error for
that deployment kind, read from the latest validation reports (reports/simulated/validate-*.json, role
"validation", their scored `errors` rows) or "not validated here".

The block (`block()`) is what `reports/index.html` opens with (bench/report/sections/answer.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loadlab.schema import Report
from simulator.bill import format_bill

# which deployment kind a validation's target stands for (the measured server it replayed)
TARGET_KINDS = {"local": "local", "vertex": "vertex", "rayserve": "ray", "ray-serve": "ray", "ray": "ray"}
# what a kind's validation measured here (the demo's "vertex" target is the job server's Vertex-API adapter)
SCOPE = {"vertex": "; the job server's Vertex-API adapter on this machine, not Vertex's autoscaler or bill"}
KIND_OF_SETTING_KIND = {"local": "local", "vertex": "vertex", "ray": "ray", "hybrid": "vertex"}
METRICS = {"p95": ("p95_s",), "cost": ("replica_seconds",), "slo_attainment": ("slo_attainment",)}


def latest_validations(folder: Path) -> list[Report]:
    """The newest validation report per (target, measured run) under `folder` (unreadable files skipped)."""
    newest: dict[str, Report] = {}
    for path in sorted(folder.glob("validate-*.json")):
        try:
            report = Report.load(path)
        except ValueError:
            continue
        if report.role != "validation":
            continue
        if report.name not in newest or report.created > newest[report.name].created:
            newest[report.name] = report
    return list(newest.values())


def validation_errors(reports: list[Report]) -> dict[str, dict[str, dict]]:
    """Per kind and figure (p95, cost, slo_attainment): the largest |error| % (attainment: percentage points)
    over the scored prediction rows of that metric (not the mechanics replay, not "too few jobs"), with n and
    where it comes from. Cost is judged by replica-seconds
    (what the bill is made of)."""
    out: dict[str, dict[str, dict]] = {}
    for report in reports:
        kind = TARGET_KINDS.get(report.target)
        if kind is None:
            continue
        for figure, metrics in METRICS.items():
            # the prediction layer is what a recommendation rests on; a row with too few jobs is not a score
            rows = [e for e in report.errors if e.scored and not e.too_few and e.layer == "prediction"
                    and e.metric in metrics and e.error is not None]
            if not rows:
                continue
            # attainment is a share: its error in percentage points (a relative error of a share near 0 says nothing)
            worst = max(abs(e.simulated - e.measured if figure == "slo_attainment" and e.simulated is not None
                            and e.measured is not None else e.error) for e in rows) * 100
            have = out.setdefault(kind, {}).get(figure)
            if have is None or worst > have["max_abs_error_pct"]:
                out[kind][figure] = {"max_abs_error_pct": worst, "n": len(rows), "source": report.name,
                                     "created": report.created}
    return out


def error_label(errors: dict, kind: str, figure: str) -> str:
    e = errors.get(KIND_OF_SETTING_KIND.get(kind, kind), {}).get(figure)
    if e is None:
        return "not validated here"
    unit = " points" if figure == "slo_attainment" else " %"
    return (f"validated: |error| <= {e['max_abs_error_pct']:.0f}{unit} ({e['n']} scored rows, {e['source']}, "
            f"{e['created']}{SCOPE.get(KIND_OF_SETTING_KIND.get(kind, kind), '')})")


def _row(rows: list[dict], volume: int, setting: str | None) -> dict | None:
    return next((r for r in rows if r["volume"] == volume and r["setting"] == setting
                 and not str(r.get("stage", "")).startswith("screening")), None)


def block(sweep_extra: dict, volume: int, errors: dict) -> dict[str, Any]:
    """The answer at one volume of a sweep report's `extra`: every figure with its interval and error label."""
    rec = next(r for r in sweep_extra["recommendations"] if r["volume"] == volume)
    rows = sweep_extra.get("rows") or []
    best, second = _row(rows, volume, rec.get("recommended")), _row(rows, volume, rec.get("runner_up"))
    if best is None and rec.get("recommended"):     # a sweep report without its rows: the recommendation's figures
        best = {"setting": rec["recommended"], "kind": "", "replications": 1, "monthly_cost": rec.get("cost"),
                "monthly_cost_ci95": rec.get("cost_ci95"), "p95_s": rec.get("p95_s")}
    out: dict[str, Any] = {"volume": volume, "slo_p95_s": sweep_extra["slo_p95_s"],
                           "recommended": rec.get("recommended"), "decided": rec.get("decided"),
                           "decision": rec.get("decision"), "why": rec.get("why"), "runner_up": rec.get("runner_up")}
    for name, row in (("best", best), ("second", second)):
        if row is None:
            continue
        out[name] = {"setting": row["setting"], "kind": row["kind"], "months": row["replications"],
                     "cost": row["monthly_cost"], "cost_ci95": row.get("monthly_cost_ci95"),
                     "p95_s": row["p95_s"], "p95_ci95": row.get("p95_ci95"),
                     "slo_attainment": row.get("slo_attainment"), "slo_attainment_ci95": row.get("slo_attainment_ci95"),
                     "errors": {f: error_label(errors, row.get("kind", ""), f) for f in METRICS}}
        if name == "best":
            out["bill"] = row.get("bill")
    return out


def _pm(value, half, digits=2, scale=1.0, unit="") -> str:
    if value is None:
        return "-"
    text = f"{value * scale:,.{digits}f}"
    return text + (f" +- {half * scale:,.{digits}f}" if half is not None else " (one month: no interval)") + unit


def on_trace(b: dict, traffic) -> dict:
    """The block of a `--trace` recommendation on the trace's basis (its own span, or a month of it): the
    costs and the bill x the basis' factor (simulator/traffic/basis.py); p95 and attainment are the trace's."""
    from simulator.traffic.basis import scaled_bill

    basis = traffic.basis
    for name in ("best", "second"):
        if name in b:
            x = b[name]
            x["cost"] = x["cost"] * basis.factor
            x["cost_ci95"] = None if x["cost_ci95"] is None else x["cost_ci95"] * basis.factor
    b["bill"] = scaled_bill(b.get("bill"), basis.factor)
    b["traffic"] = traffic.extra()
    b["head"] = f"On the trace {traffic.describe()}; p95 SLO {b['slo_p95_s']:g} s:"
    b["cost_label"] = "$/month" if traffic.repeat_to_month else "$ trace"
    b["replications"] = basis.replications
    b["cost_digits"] = basis.digits
    return b


def format_block(b: dict) -> str:
    head = b.get("head") or f"At {b['volume']:,} requests/month, p95 SLO {b['slo_p95_s']:g} s:"
    if "best" not in b:
        return f"{head}\n  no setting meets the SLO: {b.get('why') or b.get('decision')}"
    best = b["best"]
    lines = [head, f"  recommended: {best['setting']}  ({'DECIDED' if b['decided'] else 'NOT DECIDED'}: "
                   f"{b.get('decision') or b.get('why')})"]
    label, unit, digits = b.get("cost_label", "$/month"), b.get("replications", "simulated months"), b.get("cost_digits", 2)
    lines += _figures(best, "  ", label, unit, digits)
    second = b.get("second")
    if second:
        lines.append(f"  runner-up: {second['setting']}")
        lines += _figures(second, "  ", label, unit, digits)
    return "\n".join(lines)


def _figures(x: dict, pad: str, label: str = "$/month", unit: str = "simulated months", digits: int = 2) -> list[str]:
    months = f"95 % interval over {x['months']} {unit}"
    return [f"{pad}  {label:<12} ${_pm(x['cost'], x['cost_ci95'], digits)}  [{months}; {x['errors']['cost']}]",
            f"{pad}  p95          {_pm(x['p95_s'], x['p95_ci95'], 1, unit=' s')}  [{x['errors']['p95']}]",
            f"{pad}  SLO attained {_pm(x['slo_attainment'], x['slo_attainment_ci95'], 1, 100, ' %')}  "
            f"[share answered within the SLO; {x['errors']['slo_attainment']}]"]


def traffic_and_volume(args) -> tuple[dict, Any, Any, int]:
    """What `recommend` and `search` run on: (prices, the workload model, the --trace traffic or None, the
    monthly volume: the trace's rate as a month, else --monthly), the workload checked when it is used."""
    from dataclasses import replace

    from simulator.cli import DEFAULT_MONTHLY
    from simulator.month import workload_from
    from simulator.pricing import load_prices
    from simulator.traffic.basis import traffic_of

    prices = load_prices(args.prices, args.price)
    workload = workload_from(args, 0)
    traffic = traffic_of(args)      # --trace: that trace's arrivals, else --monthly of the workload model
    monthly = traffic.monthly if traffic else args.monthly or DEFAULT_MONTHLY
    if traffic is None:
        replace(workload, monthly=monthly).check()
    return prices, workload, traffic, monthly


def cmd_recommend(args: argparse.Namespace) -> int:
    from simulator.profiles import load_profile
    from simulator.sweep import sweep

    if args.profile:
        load_profile(args.profile, args.fit)
    prices, workload, traffic, monthly = traffic_and_volume(args)
    if traffic is None:
        print(f"recommend: {monthly:,}/month, every setting screened, contenders simulated until decided "
              f"(cap {args.cap} months) on {args.processes} processes ...", flush=True)
    else:
        print(f"recommend --trace: {traffic.describe()}; every setting on it, contenders replicated (service "
              f"times redrawn, same seeds) until decided (cap {args.cap}) on {args.processes} processes ...", flush=True)
    report = sweep([monthly], args.slo_p95, prices, workload, args.seed, args.profile, args.fit, args.processes,
                   progress=True, replications=None, cap=args.cap, ray_address=args.ray_address, trace=traffic)
    errors = validation_errors(latest_validations(args.validations))
    b = block(report.extra, monthly, errors)
    if traffic is not None:
        b = on_trace(b, traffic)
    print(format_block(b))
    if b.get("bill"):
        print(f"  the bill of {b['best']['setting']} (mean over its {b.get('replications', 'months')}):")
        print(format_bill(b["bill"], b.get("cost_label", "$/month")))
    name = f"recommend-trace-{Path(traffic.path).stem}" if traffic else f"recommend-{monthly}"
    report.name = name
    report.extra["answer"] = b
    report.extra["validation_errors"] = errors
    out = args.out or Path("reports/simulated") / f"{name}.json"
    report.save(out)
    print(f"report: {out}")
    return 0
