"""`python -m simulator run`: scenarios from flags, the month simulated, the table, the article's
arithmetic beside it, and the report (role "monthly": one stage per deployment; `extra["results"]`
holds each deployment's figures as printed)."""

from __future__ import annotations

import argparse
import copy
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadlab.cases import ALL_CASES
from loadlab.schema import Case, LoadConfig, Report, RunConfig, SimulationConfig, Stage
from simulator.autoscaling.vertex import hours_schedule
from simulator.cli import RAY_FLAGS
from simulator.deployments.vertex import VertexConfig
from simulator.engine import replicate, run_month, run_trace
from simulator.limits import MAX_REPLICAS
from simulator.pricing import article_naive_cost, load_prices, price_sources
from simulator.profiles import builtin, load_profile
from simulator.scenarios import REGISTRY, Scenario, scenario
from simulator.workload import MONTH_S, MonthlyWorkload, parse_case_mix, parse_weights

# Jobs a report records per deployment: the default month (10,000) in full. Each record costs ~4 KB of
# memory while the report is built and written (the old bound, 200,000 per deployment, took 3.4 GB at
# --monthly 1000000); the figures in extra["results"] cover every job whatever the month.
REPORT_JOBS = 10_000


def _pair(spec: str, what: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in spec.split(","))
    except ValueError:
        raise ValueError(f"{what}: expected MIN,MAX integers, got {spec!r}") from None
    if not 0 <= lo <= hi <= MAX_REPLICAS:
        raise ValueError(f"{what}: need 0 <= MIN <= MAX <= {MAX_REPLICAS}, got {spec!r}")
    return lo, hi


def workload_from(args: argparse.Namespace, monthly: int) -> MonthlyWorkload:
    """The workload of the flags (each already within its range, simulator/cli.py), checked as a whole."""
    wl = MonthlyWorkload(monthly=monthly, case_mix=parse_case_mix(args.case_mix),
                         cache_hit_ratio=getattr(args, "cache_hit_ratio", 0.0),   # `trace` draws arrivals only
                         cache_ttl_s=getattr(args, "cache_ttl", 86400.0), bursts_per_day=args.bursts_per_day,
                         burst_size=args.burst_size, days=args.days)
    if args.hour_weights:
        wl.hour_weights = parse_weights(args.hour_weights, 24, "--hour-weights")
    if args.day_weights:
        wl.day_weights = parse_weights(args.day_weights, 7, "--day-weights")
    wl.check()
    return wl


def base_scenario(args: argparse.Namespace) -> Scenario:
    """Profiles, prices and the deployment flags of the command line: what every named scenario builds on."""
    prices = load_prices(args.prices, args.price)
    local_p, vertex_p = builtin("seed-3090"), builtin("seed-t4")
    if args.profile:
        local_p = vertex_p = load_profile(args.profile, args.fit)
    cfg = VertexConfig(schedule=hours_schedule(_pair(args.business_min_max, "--business-min-max"),
                                               _pair(args.night_min_max, "--night-min-max")),
                       target_utilisation=args.target_utilisation, window_s=args.window,
                       scale_down_delay_s=args.scale_down_delay, idle_scaledown_period_s=args.idle_scaledown_period,
                       min_scaleup_period_s=args.min_scaleup_period, spot=args.spot,
                       preemptions_per_hour=args.preemptions_per_hour, stockout_probability=args.stockout_probability,
                       endpoint=args.endpoint)
    cfg.check()
    if args.gpus < 1 or args.max_batch < 1:
        raise ValueError("--gpus and --max-batch must be >= 1")
    lo, hi = _pair(args.ray_min_max, "--ray-min-max")
    ray = RAY_FLAGS.read(args, min_replicas=lo, max_replicas=hi, node_idle_timeout_s=args.ray_node_idle_timeout)
    ray.check()
    return Scenario(local_profile=local_p, vertex_profile=vertex_p, gpus=args.gpus, queue_limit=args.queue_limit,
                    max_batch=args.max_batch, batch_marginal=args.batch_marginal, vertex=cfg, ray=ray,
                    fallback_after_s=args.fallback_after, prices=prices)


def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    base = base_scenario(args)
    names = [k.strip() for k in args.deployments.split(",") if k.strip()]
    bad = [k for k in names if k not in REGISTRY]
    if bad or not names:
        raise ValueError(f"--deployments: unknown {bad}; choose from {', '.join(REGISTRY)}")
    # each scenario gets a Vertex config of its own (a dataclass the deployment could change)
    return [scenario(name, replace(base, vertex=copy.copy(base.vertex))) for name in names]


def fmt(v, digits=1, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}{unit}"
    return f"{v:,}{unit}"


def table(results: list[dict], cost_key: str = "monthly_cost", cost_head: str = "$/month") -> str:
    head = ["deployment", "served", "failed", "rejected", "retried", "mean s", "p50 s", "p95 s", "p99 s", "max s",
            "cold %", "mean repl", "max repl", "repl-h", "util %", cost_head, "$/request"]
    rows = []
    for r in results:
        lat = r["latency_s"]
        rows.append([r["deployment"], fmt(r["served"]), fmt(r["failed"]), fmt(r["rejected"]), fmt(r["retried"]),
                     fmt(lat["mean"]), fmt(lat["p50"]), fmt(lat["p95"]), fmt(lat["p99"]), fmt(lat["max"]),
                     fmt(None if r["cold_start_share"] is None else 100 * r["cold_start_share"]),
                     fmt(r["mean_replicas"], 2), fmt(r["max_replicas"]), fmt(r["replica_hours"]),
                     fmt(None if r["utilisation"] is None else 100 * r["utilisation"]),
                     fmt(r[cost_key], 2), fmt(r["cost_per_request"], 5)])
    if any("slo_attainment" in r for r in results):
        head += ["SLO %", "goodput /h"]
        for row, r in zip(rows, results, strict=True):
            att = r.get("slo_attainment")
            row += [fmt(None if att is None else 100 * att), fmt(3600 * r["goodput_per_s"], 2)]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def article_lines(monthly: int, results: list[dict], prices: dict) -> str:
    naive = article_naive_cost(monthly, 30.0, prices["article_gpu_per_hour"])
    opt = article_naive_cost(monthly, 30.0, prices["article_gpu_per_hour"], 0.2, prices["spot_discount"])
    out = [f"The article's arithmetic at {monthly:,}/month (busy GPU-seconds only):",
           f"  naive:     {monthly:,} x 30 s = {naive['gpu_hours']:.1f} h x ${prices['article_gpu_per_hour']:.2f} = ${naive['monthly']:.2f}",
           f"  optimized: {opt['calls']:,.0f} x 30 s = {opt['gpu_hours']:.1f} h x ${opt['price_per_hour']:.3f} = ${opt['monthly']:.2f}"]
    for r in results:
        if r["kind"] != "local":
            out.append(f"  simulated {r['deployment']}: {r['replica_hours']:.1f} replica-hours billed for "
                       f"${r['monthly_cost']:.2f} ({r['monthly_cost'] / naive['monthly']:.1f}x the naive ${naive['monthly']:.2f}, "
                       f"{r['monthly_cost'] / opt['monthly']:.1f}x the 'optimized' ${opt['monthly']:.2f})"
                       if naive["monthly"] else "")
    return "\n".join(out)


def cmd_run(args: argparse.Namespace) -> int:
    scenarios = scenarios_from(args)
    prices = scenarios[0].prices
    if args.trace:
        return _run_trace(args, scenarios, prices)
    workload = workload_from(args, args.monthly)
    seeds = replication_seeds(args)
    results = []
    for sc in scenarios:
        r = run_month(sc, workload, seed=args.seed, progress=not args.no_progress and args.monthly >= 20000,
                      slo_e2e_s=args.slo_e2e, keep_jobs=REPORT_JOBS)
        r["profile"] = sc.profile.describe()
        if len(seeds) > 1:
            # only the figures: a replication's ledger would be held until the end
            more = [public(run_month(sc, workload, seed=s, slo_e2e_s=args.slo_e2e)) for s in seeds[1:]]
            r["replications"] = replicate([r, *more], seeds)
        results.append(r)
    print(f"{args.monthly:,} requests/month, case mix {workload.case_mix}, cache hits {workload.cache_hit_ratio:.0%}, "
          f"seed {args.seed}")
    print(table(results))
    if len(seeds) > 1:
        print(interval_lines(results))
    print(article_lines(args.monthly, results, prices))
    name = f"monthly-{args.monthly}"
    simulation = SimulationConfig(seed=args.seed, monthly=workload.monthly, days=workload.days,
                                  case_mix=workload.case_mix, cache_hit_ratio=workload.cache_hit_ratio,
                                  cache_ttl_s=workload.cache_ttl_s, hour_weights=workload.hour_weights,
                                  day_weights=workload.day_weights, prices=prices,
                                  replications=len(seeds) if len(seeds) > 1 else None)
    report = to_report(name, results, simulation, None, workload.monthly / MONTH_S, workload.days * 86400)
    out = args.out or Path("reports/simulated") / f"{name}.json"
    report.save(out)
    print(f"report: {out}")
    return 0


def replication_seeds(args: argparse.Namespace) -> list[int]:
    """--seed, --seed + 1, ...: one independent month per replication."""
    return [args.seed + i for i in range(args.replications)]


def interval_lines(results: list[dict]) -> str:
    """The 95 % intervals of the mean over the replications, per deployment."""
    seeds = results[0]["replications"]["seeds"]
    out = [f"Over {len(seeds)} replications (seeds {seeds[0]}..{seeds[-1]}), mean +- 95 % interval:"]
    for r in results:
        cost, p95 = r["replications"]["monthly_cost"], r["replications"]["p95_s"]
        out.append(f"  {r['deployment']:>{max(len(x['deployment']) for x in results)}}: "
                   f"${cost['mean']:,.2f} +- {cost['ci95']:,.2f} /month, p95 {_pm(p95)} s")
    return "\n".join(out)


def _pm(figure: dict) -> str:
    if figure["mean"] is None:
        return "-"
    return f"{figure['mean']:,.1f} +- {figure['ci95']:,.1f}" if figure["ci95"] is not None else f"{figure['mean']:,.1f}"


def _run_trace(args: argparse.Namespace, scenarios: list[Scenario], prices: dict) -> int:
    """The trace's arrivals on every deployment, priced for the trace's own span (or, with
    --repeat-to-month, repeated to 30 days): simulator/traffic/price.py."""
    from simulator.traffic.basis import load_traffic
    from simulator.traffic.price import on_log_clock, priced, provenance_line

    if args.replications != 1:
        raise ValueError("--replications draws new months; a --trace replay has one arrival sequence")
    traffic = load_traffic(args.trace, args.drain_s, args.repeat_to_month)
    rows, horizon, monthly = traffic.rows, traffic.horizon_s, traffic.monthly
    results = []
    for sc in (on_log_clock(sc, traffic.start_hour) for sc in scenarios):
        r = run_trace(sc, rows, horizon, seed=args.seed, progress=not args.no_progress and len(rows) >= 20000,
                      slo_e2e_s=args.slo_e2e, keep_jobs=REPORT_JOBS)
        r["profile"] = sc.profile.describe()
        results.append(priced(r, horizon, args.repeat_to_month))
    mix = Counter(c for _, c in rows)
    if (line := provenance_line(args.trace)):
        print(line)
    print(f"{traffic.describe()}; cases {dict(sorted(mix.items()))}, seed {args.seed}")
    print(table(results, *(("monthly_cost", "$/month") if args.repeat_to_month else ("trace_cost", "$ trace"))))
    if args.repeat_to_month:
        print(article_lines(monthly, results, prices))
    name = f"trace-{Path(args.trace).stem}"
    simulation = SimulationConfig(seed=args.seed, monthly=monthly, days=horizon / 86400,
                                  case_mix={c: n / len(rows) for c, n in mix.items()}, prices=prices)
    load = LoadConfig(mode="trace", arrival="trace", trace=str(args.trace))
    report = to_report(name, results, simulation, load, len(rows) / horizon, horizon)
    out = args.out or Path("reports/simulated") / f"{name}.json"
    report.save(out)
    print(f"report: {out}")
    return 0


def public(result: dict[str, Any]) -> dict[str, Any]:
    """A run's figures without the objects behind them (`_ledger`)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def to_report(name: str, results: list[dict[str, Any]], simulation: SimulationConfig, load: LoadConfig | None,
              arrival_rate_per_s: float, horizon_s: float) -> Report:
    """The shared schema: one stage per deployment with the jobs its ledger kept (the first REPORT_JOBS
    to arrive, which the stage's summary describes), and the figures of every job in extra["results"]."""
    monthly = simulation.monthly or 0
    report = Report(role="monthly", kind="simulated", name=name, target="+".join(r["deployment"] for r in results),
                    cases=[ALL_CASES.get(c, Case(name=c, layers=0, resolution=0, image_px=0))
                           for c in sorted(simulation.case_mix or {})],
                    environment={"simulator": "simpy", "seed": simulation.seed},
                    model={"profiles": {r["deployment"]: r.get("profile") for r in results},
                           "prices": price_sources(simulation.prices or {})},
                    config=RunConfig(driver="simulator run", simulation=simulation, load=load,
                                     slo_e2e_s=results[0].get("slo_e2e_s") if results else None),
                    extra={"results": [public(r) for r in results],
                           "stage_jobs": f"each stage holds the first {REPORT_JOBS:,} jobs to arrive at most; "
                                         "results covers every job",
                           "article_naive": article_naive_cost(monthly),
                           "article_optimized": article_naive_cost(monthly, cache_hit_ratio=0.2, spot_discount=0.7)})
    for r in results:
        stage = Stage(name=r["deployment"], arrival_rate_per_s=arrival_rate_per_s, duration_s=horizon_s,
                      slo_e2e_s=r.get("slo_e2e_s"), started_at=0.0)
        stage.jobs = [j.record() for j in r["_ledger"].jobs]
        report.stages.append(stage)
    return report
