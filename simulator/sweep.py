"""`python -m simulator sweep`: for each monthly volume, every setting of `SETTINGS` (named scenarios of
simulator/scenarios.py); the cheapest one meeting the p95 SLO (and losing at most 0.1 % of requests),
the runner-up and why; a cost-vs-volume PNG with the local-GPU break-even point.

Output: a `loadlab.schema.Report` with role "sweep" (reports/simulated/sweep.json). Its `extra` holds:
  slo_p95_s              float, the SLO in s
  volumes                list[int], requests per month
  rows                   list[SweepRow]: one per (volume, setting), the figures of a simulated month (with
                         --replications N: means over N months, cost and p95 with 95 % intervals)
  recommendations        list[Recommendation]: one per volume (whether the runner-up is within the interval)
  break_even_per_month   float | None: where the cheapest Vertex setting meeting the SLO costs as much
                         as local-1gpu (log-interpolated between volumes)
  png                    str: the plot's path
Prices, case mix, cache and seed are in `config.simulation`.
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import as_completed
from dataclasses import replace
from pathlib import Path
from typing import TypedDict

from loadlab.schema import LoadConfig, Report, RunConfig, SimulationConfig
from loadlab.stats import mean, mean_ci95
from simulator import cluster, decide
from simulator.bill import mean_bill
from simulator.engine import run_month
from simulator.limits import MAX_REQUESTS, MAX_VOLUMES
from simulator.pricing import load_prices
from simulator.profiles import builtin, load_profile
from simulator.scenarios import Scenario, scenario
from simulator.traffic.basis import MONTH, Basis, TraceTraffic, run_priced
from simulator.workload import MonthlyWorkload

SETTINGS = ["local-1gpu", "local-2gpu", "local-1gpu-batch3",
            "vertex-article", "vertex-article-spot", "vertex-zero", "vertex-zero-spot",
            "vertex-always1", "vertex-always1-spot", "vertex-big", "vertex-big-spot",
            "ray-zero", "ray-always1", "hybrid-article"]


class SweepRow(TypedDict):
    volume: int
    setting: str
    kind: str
    served: int
    failed: int
    rejected: int
    in_flight: int
    arrivals: int
    p95_s: float | None
    mean_s: float | None
    monthly_cost: float
    cost_per_request: float | None
    replica_hours: float
    cold_start_share: float | None
    replications: int                 # months simulated (seeds seed ..): the figures above are their means
    monthly_cost_ci95: float | None   # half-width of the 95 % interval of the mean (None: one replication)
    p95_ci95: float | None


class Recommendation(TypedDict, total=False):
    volume: int
    recommended: str | None
    cost: float
    cost_ci95: float | None
    p95_s: float
    runner_up: str | None
    runner_up_cost: float | None
    runner_up_within_ci95: bool | None   # the two cost intervals overlap: the simulation does not separate them
    why: str


def settings() -> list[str]:
    return list(SETTINGS)


def base(prices: dict, profile: str | None, fit: str) -> Scenario:
    local_p, vertex_p = builtin("seed-3090"), builtin("seed-t4")
    if profile:
        local_p = vertex_p = load_profile(profile, fit)
    return Scenario(local_profile=local_p, vertex_profile=vertex_p, prices=prices)


def _one(task: dict) -> SweepRow:
    sc = scenario(task["setting"], base(task["prices"], task["profile"], task["fit"]))
    if task.get("trace") is not None:     # the trace's arrivals, priced as `run --trace` (traffic/basis.py)
        r = run_priced(sc, task["trace"], task["seed"], task.get("slo_e2e_s"))
    else:
        r = run_month(sc, replace(task["workload"], monthly=task["volume"]), seed=task["seed"],
                      slo_e2e_s=task.get("slo_e2e_s"))
    return {"volume": task["volume"], "setting": task["setting"], "kind": sc.kind, "served": r["served"],
            "failed": r["failed"], "rejected": r["rejected"], "in_flight": r["in_flight"], "arrivals": r["arrivals"],
            "p95_s": r["latency_s"]["p95"], "mean_s": r["latency_s"]["mean"], "monthly_cost": r["monthly_cost"],
            "cost_per_request": r["cost_per_request"], "replica_hours": r["replica_hours"],
            "cold_start_share": r["cold_start_share"], "replications": 1, "monthly_cost_ci95": None,
            "p95_ci95": None, "seed": task["seed"], "days": task["workload"].days,
            "slo_attainment": r.get("slo_attainment"), "bill": r["bill"], "trace_cost": r.get("trace_cost")}


def combine(runs: list[SweepRow]) -> SweepRow:
    """One row from the replications of a (volume, setting): means, and 95 % intervals of cost and p95."""
    if len(runs) == 1:
        return runs[0]
    # a pool returns rows as they finish: in seed order, the row and its float sums do not depend on that
    runs = sorted(runs, key=lambda r: r["seed"])
    row = dict(runs[0])
    for key in ("served", "failed", "rejected", "in_flight", "arrivals", "mean_s", "cost_per_request",
                "replica_hours", "cold_start_share"):
        row[key] = mean(v for r in runs if (v := r[key]) is not None)
    row["monthly_cost"], row["monthly_cost_ci95"] = mean_ci95([r["monthly_cost"] for r in runs])
    if runs[0].get("trace_cost") is not None:     # a trace's own bill: the mean, as monthly_cost
        row["trace_cost"] = mean(r["trace_cost"] for r in runs)
    row["p95_s"], row["p95_ci95"] = mean_ci95([r["p95_s"] for r in runs if r["p95_s"] is not None])
    att = [r["slo_attainment"] for r in runs if r.get("slo_attainment") is not None]
    row["slo_attainment"], row["slo_attainment_ci95"] = mean_ci95(att) if att else (None, None)
    row["bill"] = mean_bill([r["bill"] for r in runs if r.get("bill")]) if runs[0].get("bill") else None
    row["replications"] = len(runs)
    return row  # type: ignore[return-value]


def recommend(rows: list[SweepRow], slo_p95: float, basis: Basis = MONTH) -> list[Recommendation]:
    """Per volume: the cheapest setting meeting the SLO and why; costs in the text on `basis` (a trace:
    its own span), the figures stay $/month."""
    f, per = basis.factor, basis.per
    out = []
    for volume in sorted({r["volume"] for r in rows}):
        every = [r for r in rows if r["volume"] == volume]
        # a decided sweep ranks the full months only (screening rows are a week's figures)
        cands = [r for r in every if not str(r.get("stage", "")).startswith("screening")] or every
        ok = sorted((r for r in cands if _meets(r, slo_p95)),     # as simulator/decide.py ranks them
                    key=lambda r: (round(r["monthly_cost"], 6), r["p95_s"] or 0.0, r["setting"]))
        if not ok:
            best = min(cands, key=lambda r: (r["p95_s"] or math.inf))
            out.append({"volume": volume, "recommended": None, "runner_up": None,
                        "why": f"no setting meets p95 <= {slo_p95:g} s; lowest p95 is {best['setting']} "
                               f"({best['p95_s']:.0f} s, ${f * best['monthly_cost']:.2f}{per})"})
            continue
        first = ok[0]
        second = ok[1] if len(ok) > 1 else None
        why = f"{first['setting']}: ${f * first['monthly_cost']:.2f}{per}, p95 {first['p95_s']:.0f} s"
        within = None
        if first.get("monthly_cost_ci95") is not None:
            why += (f" (+- ${f * first['monthly_cost_ci95']:.2f}, 95 % over {first['replications']} "
                    f"{basis.replications})")
        same = second is not None and abs(second["monthly_cost"] - first["monthly_cost"]) < 1e-9
        if same:
            why += f"; runner-up {second['setting']} costs the same (p95 {second['p95_s']:.0f} s)"
        elif second:
            why += (f"; runner-up {second['setting']} costs ${f * (second['monthly_cost'] - first['monthly_cost']):.2f} more "
                    f"(p95 {second['p95_s']:.0f} s)")
            if first.get("monthly_cost_ci95") is not None and second.get("monthly_cost_ci95") is not None:
                within = (second["monthly_cost"] - second["monthly_cost_ci95"]
                          <= first["monthly_cost"] + first["monthly_cost_ci95"])
                if within:
                    why += ", within the 95 % interval of the recommended cost: the simulation does not separate them"
        failing = [r["setting"] for r in every if not _meets(r, slo_p95) and r["monthly_cost"] < first["monthly_cost"]]
        if failing:
            why += f"; cheaper but missing the SLO or losing requests: {', '.join(failing)}"
        out.append({"volume": volume, "recommended": first["setting"], "cost": first["monthly_cost"],
                    "cost_ci95": first.get("monthly_cost_ci95"), "p95_s": first["p95_s"],
                    "runner_up": second and second["setting"], "runner_up_cost": second and second["monthly_cost"],
                    "runner_up_within_ci95": within, "why": why})
    return out


def _meets(r: dict, slo: float) -> bool:
    return decide.meets(r, slo)


def break_even(rows: list[dict], slo: float) -> float | None:
    """Volume where the cheapest Vertex setting meeting the SLO costs as much as the local GPU."""
    pts = []
    for volume in sorted({r["volume"] for r in rows}):
        vx = [r["monthly_cost"] for r in rows if r["volume"] == volume and r["kind"] == "vertex" and _meets(r, slo)]
        loc = [r["monthly_cost"] for r in rows if r["volume"] == volume and r["setting"] == "local-1gpu"]
        if vx and loc:
            pts.append((volume, min(vx) - loc[0]))
    for (v1, d1), (v2, d2) in zip(pts, pts[1:], strict=False):
        if d1 <= 0 <= d2 or d2 <= 0 <= d1:
            if d1 == d2:
                return float(v1)
            f = d1 / (d1 - d2)   # interpolate in log volume
            return float(math.exp(math.log(v1) + f * (math.log(v2) - math.log(v1))))
    return None


def plot(rows: list[dict], slo: float, be: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.get_cmap("tab20").colors
    for i, setting in enumerate(sorted({r["setting"] for r in rows})):
        pts = sorted((r["volume"], r["monthly_cost"], _meets(r, slo)) for r in rows if r["setting"] == setting)
        style = "-" if setting.startswith("local") else ("--" if setting.endswith("spot") else "-.")
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=setting, color=colours[i % 20],
                        lw=2.5 if setting == "local-1gpu" else 1.5)
        ax.scatter([p[0] for p in pts if not p[2]], [p[1] for p in pts if not p[2]], marker="x", color=line.get_color())
    if be:
        ax.axvline(be, color="k", lw=0.8)
        ax.text(be, 0.03, f" local-GPU break-even ~{be:,.0f}/month", rotation=90, fontsize=8, va="bottom",
                transform=ax.get_xaxis_transform())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests per month")
    ax.set_ylabel("monthly cost, $ (simulated)")
    ax.set_title(f"Simulated monthly cost vs volume (x: misses p95 <= {slo:g} s or loses requests)")
    ax.legend(fontsize=7, ncol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _run_tasks(tasks: list[dict], pool, bar) -> list[SweepRow]:
    tasks = sorted(tasks, key=lambda t: -t["volume"] * t["workload"].days)   # big ones first for a balanced pool
    rows: list[SweepRow] = []
    if pool is not None:
        for fut in as_completed([pool.submit(_one, t) for t in tasks]):
            rows.append(fut.result())
            bar.update()
    else:
        for t in tasks:
            rows.append(_one(t))
            bar.update()
    return rows


def sweep(volumes: list[int], slo: float, prices: dict, workload: MonthlyWorkload, seed: int = 1,
          profile: str | None = None, fit: str = "empirical", processes: int = 2, only: list[str] | None = None,
          progress: bool = False, replications: int | None = 1, cap: int = 8, screen_days: float = 7.0,
          top: int = 3, ray_address: str | None = None, trace: TraceTraffic | None = None) -> Report:
    """Every setting at every volume, `replications` months each (seeds seed, seed + 1, ...); `workload`
    gives everything but the volume (case mix, cache, hour/day weights, bursts, days). `replications=None`:
    decided (simulator/decide.py): screening, then months added until the choice separates or `cap`.
    `trace`: the traffic is that trace's arrivals instead (one volume: a month of it; a replication redraws
    the service times; the screening run is the contenders' first replication)."""
    if replications is not None and replications < 1:
        raise ValueError("--replications must be >= 1")
    names = only or settings()
    if trace is not None:
        volumes = [trace.monthly]
        workload = replace(workload, days=trace.horizon_s / 86400)    # the span: orders the pool's tasks

    def task(volume: int, setting: str, s: int, wl: MonthlyWorkload = workload) -> dict:
        return {"volume": volume, "setting": setting, "prices": prices, "profile": profile, "fit": fit,
                "workload": wl, "seed": s, "slo_e2e_s": slo, "trace": trace}

    from tqdm import tqdm
    with tqdm(desc="  sweep runs", unit="run", disable=not progress) as bar, \
            cluster.pool(processes, ray_address) as pool:
        if replications is not None:
            rows = _run_tasks([task(v, s, seed + i) for v in volumes for s in names for i in range(replications)],
                              pool, bar)
            decisions = None
        else:
            rows, decisions = _decided(volumes, slo, names, task, seed, workload, pool, bar, cap, screen_days, top,
                                       trace)
    by_key: dict[tuple[int, str], list[SweepRow]] = {}
    for row in rows:
        by_key.setdefault((row["volume"], row["setting"]), []).append(row)
    rows = [combine(by_key[key]) for key in sorted(by_key)]
    basis = trace.basis if trace is not None else MONTH
    recs = recommend(rows, slo, basis)
    if decisions is not None:
        for rec in recs:
            rec.update(decisions[rec["volume"]])
    simulation = SimulationConfig(seed=seed, days=workload.days, case_mix=workload.case_mix,
                                  cache_hit_ratio=workload.cache_hit_ratio, cache_ttl_s=workload.cache_ttl_s,
                                  hour_weights=workload.hour_weights, day_weights=workload.day_weights,
                                  prices=prices, replications=replications if replications != 1 else None)
    load = None
    if trace is not None:
        cases = [c for _, c in trace.rows]
        simulation = SimulationConfig(seed=seed, monthly=trace.monthly, days=trace.horizon_s / 86400, prices=prices,
                                      case_mix={c: cases.count(c) / len(cases) for c in sorted(set(cases))})
        load = LoadConfig(mode="trace", arrival="trace", trace=trace.path)
    return Report(role="sweep", kind="simulated", name="sweep", target="+".join(names),
                  config=RunConfig(driver="simulator sweep", simulation=simulation, load=load),
                  environment={"simulator": "simpy", "seed": seed},
                  model={"profile": profile or "seed-3090 (local), seed-t4 (Vertex)", "fit": fit},
                  extra={"slo_p95_s": slo, "volumes": volumes, "rows": rows, "recommendations": recs,
                         "break_even_per_month": break_even(rows, slo),
                         "mode": "fixed replications" if replications is not None else _mode(screen_days, cap, trace),
                         **({"traffic": trace.extra()} if trace is not None else {})})


def _mode(screen_days: float, cap: int, trace: TraceTraffic | None) -> str:
    if trace is not None:
        return f"decided on the trace (screening: one replication, then replications up to {cap})"
    return f"decided (screening {screen_days:g} days, then months up to {cap})"


def _decided(volumes, slo, names, task, seed, workload, pool, bar, cap, screen_days, top, trace=None):
    """Screening rows of the settings out of contention, month rows of the rest, and each volume's decision.
    On a trace the screening run is the whole traffic at seed `seed`: a contender's first replication."""
    screen_wl = workload if trace is not None else decide.screening_workload(workload, screen_days)
    stage = "trace replication" if trace is not None else "month"
    basis = trace.basis if trace is not None else MONTH
    screen = _run_tasks([task(v, s, seed, screen_wl) for v in volumes for s in names], pool, bar)
    runs: dict[int, dict[str, list[SweepRow]]] = {}
    need: dict[int, list[str]] = {}
    for v in volumes:
        runs[v] = {s: [] for s in decide.contenders([r for r in screen if r["volume"] == v], slo, top)}
        for r in screen if trace is not None else []:
            if r["volume"] == v and r["setting"] in runs[v]:
                r["stage"] = stage
                runs[v][r["setting"]].append(r)
        need[v] = list(runs[v])
    decisions: dict[int, dict] = {}
    upto = 2
    while any(need.values()):
        tasks = [t for v in volumes if need[v] for t in decide.month_tasks(v, need[v], runs[v], task, seed, upto)]
        for row in _run_tasks(tasks, pool, bar):
            row["stage"] = stage
            runs[row["volume"]][row["setting"]].append(row)
        for v in volumes:
            if need[v]:
                for rs in runs[v].values():
                    rs.sort(key=lambda r: r["seed"])
                decisions[v], need[v] = decide.decide_volume(runs[v], slo, combine, cap, basis)
        upto += 1
    for v in volumes:
        decisions.setdefault(v, {"decided": False, "decision": "no setting meets the SLO in screening"})
    rows = [r for v in volumes for rs in runs[v].values() for r in rs]
    for r in screen:
        if r["setting"] not in runs[r["volume"]]:
            r["stage"] = f"screening ({screen_wl.days:g} days)" if trace is None else "screening (the trace)"
            rows.append(r)
    return rows, decisions


def parse_volumes(spec: str) -> list[int]:
    """'100,1000,...': at most MAX_VOLUMES volumes, each 1..MAX_REQUESTS."""
    try:
        volumes = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--volumes: expected comma-separated integers, got {spec!r}") from None
    if not 1 <= len(volumes) <= MAX_VOLUMES or not all(1 <= v <= MAX_REQUESTS for v in volumes):
        raise ValueError(f"--volumes: 1 to {MAX_VOLUMES} volumes, each 1..{MAX_REQUESTS:,}, got {spec!r}")
    return volumes


def cmd_sweep(args: argparse.Namespace) -> int:
    volumes = parse_volumes(args.volumes)
    if args.profile:
        load_profile(args.profile, args.fit)     # fail early on a bad path
    from simulator.month import workload_from

    prices = load_prices(args.prices, args.price)
    workload = workload_from(args, 0)
    replace(workload, monthly=max(volumes)).check()    # the biggest month over --days, before any process starts
    print(f"sweep: {len(volumes)} volumes x {len(settings())} settings on {args.processes} processes "
          f"({f'{args.replications} months each' if args.replications else 'decided'}) ...", flush=True)
    report = sweep(volumes, args.slo_p95, prices, workload, args.seed, args.profile, args.fit,
                   args.processes, progress=True, replications=args.replications, cap=args.cap,
                   ray_address=args.ray_address)
    result = report.extra
    print(f"{'volume':>8}  {'recommended':<22} {'$/month':>9} {'p95 s':>7}  runner-up / why")
    for rec in result["recommendations"]:
        print(f"{rec['volume']:>8,}  {rec['recommended'] or '-':<22} {rec.get('cost') or 0:>9.2f} "
              f"{rec.get('p95_s') or 0:>7.0f}  {rec['why']}" + (f" [{rec['decision']}]" if "decision" in rec else ""))
    be = result["break_even_per_month"]
    print("local-GPU break-even: " + (f"~{be:,.0f} requests/month" if be else "not within the volumes swept"))
    out = args.out or Path("reports/simulated/sweep.json")
    plot(result["rows"], args.slo_p95, be, args.png)
    result["png"] = str(args.png)
    report.save(out)
    print(f"table: {out}\nplot: {args.png}")
    return 0
