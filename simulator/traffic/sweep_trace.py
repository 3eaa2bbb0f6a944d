"""`simulator sweep --trace`: every setting of the sweep on a trace's arrivals, and the cheapest meeting the
p95 SLO. The ranking is the same for the trace's own bill and for a month of it: both scale with the span
alike, so the table shows both."""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from loadlab.schema import LoadConfig, Report, RunConfig, SimulationConfig
from loadlab.trace import read_provenance, read_trace
from simulator.engine import run_trace
from simulator.pricing import load_prices
from simulator.scenarios import scenario
from simulator.sweep import base, recommend, settings
from simulator.traffic.price import horizon_of, log_start_hour, on_log_clock, priced, provenance_line
from simulator.workload import MONTH_S


def _setting_row(task: dict) -> dict:
    sc = on_log_clock(scenario(task["setting"], base(task["prices"], task["profile"], task["fit"])), task["hour"])
    r = priced(run_trace(sc, task["rows"], task["horizon"], seed=task["seed"]), task["horizon"], True)
    return {"volume": task["volume"], "setting": task["setting"], "kind": sc.kind, "served": r["served"],
            "failed": r["failed"], "rejected": r["rejected"], "in_flight": r["in_flight"], "arrivals": r["arrivals"],
            "p95_s": r["latency_s"]["p95"], "mean_s": r["latency_s"]["mean"], "monthly_cost": r["monthly_cost"],
            "trace_cost": r["trace_cost"], "cost_per_request": r["cost_per_request"],
            "replica_hours": r["replica_hours"], "cold_start_share": r["cold_start_share"], "replications": 1,
            "monthly_cost_ci95": None, "p95_ci95": None}


def cmd_sweep_trace(args: argparse.Namespace) -> int:
    """Every sweep setting on the trace's arrivals; the cheapest meeting the p95 SLO."""
    if args.replications not in (None, 1):   # None: the decided default, one sequence here
        raise ValueError("--replications draws new months; a --trace sweep has one arrival sequence")
    rows = read_trace(args.trace)
    horizon = horizon_of(rows, args.drain_s)
    volume = round(len(rows) * MONTH_S / horizon)
    prices = load_prices(args.prices, args.price)
    if (line := provenance_line(args.trace)):
        print(line)
    print(f"sweep --trace: {len(rows):,} arrivals over {horizon:,.0f} s x {len(settings())} settings on "
          f"{args.processes} processes ...", flush=True)
    tasks = [{"setting": s, "rows": rows, "horizon": horizon, "volume": volume, "prices": prices,
              "profile": args.profile, "fit": args.fit, "seed": args.seed, "hour": log_start_hour(args.trace)}
             for s in settings()]
    if args.processes > 1:
        with ProcessPoolExecutor(args.processes) as pool:
            results = list(pool.map(_setting_row, tasks))
    else:
        results = [_setting_row(t) for t in tasks]
    rec = recommend(results, args.slo_p95)[0]
    print(f"{'setting':<22} {'$ trace':>9} {'$/month':>9} {'p95 s':>8} {'lost':>6}")
    for r in sorted(results, key=lambda r: r["trace_cost"]):
        print(f"{r['setting']:<22} {r['trace_cost']:>9.2f} {r['monthly_cost']:>9.2f} "
              f"{_p95(r['p95_s']):>8} {r['failed'] + r['rejected']:>6}")
    cost = "monthly" if args.repeat_to_month else "trace"
    print(f"recommended for this trace (p95 <= {args.slo_p95:g} s, at most 0.1 % lost): "
          f"{rec['recommended'] or 'none'}; {rec['why']} (its $/month: this traffic repeated to 30 days; "
          f"the trace's own bill is the $ trace column)")
    simulation = SimulationConfig(seed=args.seed, monthly=volume, days=horizon / 86400, prices=prices)
    report = Report(role="sweep", kind="simulated", name=f"sweep-trace-{Path(args.trace).stem}", target="+".join(settings()),
                    config=RunConfig(driver="simulator sweep", simulation=simulation,
                                     load=LoadConfig(mode="trace", arrival="trace", trace=str(args.trace))),
                    environment={"simulator": "simpy", "seed": args.seed},
                    model={"profile": args.profile or "seed-3090 (local), seed-t4 (Vertex)", "fit": args.fit},
                    extra={"slo_p95_s": args.slo_p95, "volumes": [volume], "rows": results, "recommendations": [rec],
                           "trace": str(args.trace), "horizon_s": horizon, "cost_basis": cost,
                           "provenance": read_provenance(args.trace)})
    out = args.out or Path("reports/simulated") / f"sweep-trace-{Path(args.trace).stem}.json"
    report.save(out)
    print(f"table: {out} (no plot: a trace is one volume)")
    return 0


def _p95(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"
