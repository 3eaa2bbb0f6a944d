"""The source article's scenario replayed from its own figures (built-in profiles only).

- Benchmark 3, local rows: N Medium jobs at once on one RTX 3090 (S = 28.7 s): what a FIFO server gives
  ((N+1)/2 x S), what a processor-sharing server gives (all N finish at N x S: mean N x S, which is
  what the article's 142.3 s and 285.1 s look like), and N=20 with a bounded queue (all served or
  cleanly rejected, never OOM).
- Benchmark 3, Vertex 20-user row (47.3 s) against what 3 replicas of 34.2 s can physically do.
- Benchmark 4: the article's $37.50 and $9/month against the replica-second bill of the same month
  (article settings: 9-18h min=1 max=3, night min=0 max=1, spot, 20% cache hits, Medium case).

Output: a `loadlab.schema.Report` with role "article" (reports/simulated/article.json); `extra` holds
  source, origin   str: the article, and that every figure is simulated from its own numbers
  local            list of rows per N: concurrency, quoted_succeeded, quoted_mean_s, quoted_note,
                   fifo_simulated_mean_s, fifo_closed_form_mean_s, processor_sharing_mean_s,
                   quoted_over_fifo, bounded_queue_16 {served, rejected, mean_s}
  vertex           20 at once: quoted_mean_s, service_s, replicas, rounds_needed, last_job_at_least_s,
                   best_case_mean_closed_form_s, three_warm_replicas_simulated_mean_s,
                   one_warm_autoscaled_to_3_simulated_mean_s, note
  cost             10,000/month: quoted_naive, quoted_optimized, naive_formula, optimized_formula
                   (simulator.pricing.article_naive_cost), replica_second_bill {on_demand, spot:
                   monthly, replica_hours, busy_gpu_hours, utilisation, p95_s, served, cache_hits},
                   min1_business_hours_alone_h, prices
"""

from __future__ import annotations

import argparse
import math
import random
from typing import Any

from loadlab import article as quoted
from loadlab.blocks import ArticleLocalRow, BoundedQueue
from loadlab.schema import Report, RunConfig, SimulationConfig
from loadlab.stats import fifo_ideal_mean, mean
from simulator.closedloop import run_stage
from simulator.engine import run_month
from simulator.pricing import DEFAULT_PRICES, article_naive_cost
from simulator.profiles import builtin
from simulator.scenarios import Scenario, scenario
from simulator.workload import MonthlyWorkload


def _zero(case: str) -> float:
    return 0.0


def _burst(sc: Scenario, n: int, rng: random.Random, start_s: float = 0.0, until_s: float | None = None):
    """n Medium jobs at once (the article's benchmark 3), no client overhead."""
    return run_stage(sc.build, n, {"medium": 1}, _zero, rng, jobs_per_user=1, start_s=start_s, until_s=until_s)


def _mean_of(stages) -> float:
    return mean(s.summary.mean for s in stages)


def replay(seed: int = 1, replications: int = 20, prices: dict | None = None) -> dict[str, Any]:
    """The replay's figures: `local` (rows per N), `vertex` (20 at once) and `cost` (10,000/month)."""
    prices = dict(prices or DEFAULT_PRICES)
    rng = random.Random(seed)
    t4 = builtin("seed-t4")
    base = Scenario(local_profile=builtin("seed-3090"), vertex_profile=t4, prices=prices)
    s_local, s_t4 = quoted.SINGLE["local-3090"]["medium"][0], quoted.SINGLE["vertex-t4"]["medium"][0]
    out: dict[str, Any] = {"source": quoted.SOURCE, "origin": "simulated from the article's own figures",
                           "local": [], "vertex": {}, "cost": {}}

    fifo, bounded = scenario("local", base), scenario("local-queue16", base)
    for n in (1, 5, 10, 20):
        fifo_stages = [_burst(fifo, n, rng) for _ in range(replications)]
        b = _burst(bounded, n, rng)
        ok, quoted_mean = quoted.CONCURRENCY["local"][n]
        out["local"].append(ArticleLocalRow(
            concurrency=n, quoted_succeeded=ok, quoted_mean_s=quoted_mean,
            quoted_note=quoted.CONCURRENCY_NOTE["local"].get(n),
            fifo_simulated_mean_s=_mean_of(fifo_stages), fifo_closed_form_mean_s=fifo_ideal_mean(n, s_local),
            processor_sharing_mean_s=n * s_local,
            quoted_over_fifo=(quoted_mean / fifo_ideal_mean(n, s_local)) if quoted_mean else None,
            bounded_queue_16=BoundedQueue(served=b.summary.completed, rejected=b.summary.rejected,
                                          mean_s=b.summary.mean),
        ).model_dump(mode="json"))

    # Vertex, 20 at once: 3 warm replicas (best case), and 1 warm + autoscaling to 3 (article's min=1):
    # the burst comes once the min=1 replica has provisioned and loaded.
    best = [_burst(scenario("vertex-warm3", base), 20, rng) for _ in range(replications)]
    warm_at = t4.provision_s + t4.load_s + 1
    auto = [_burst(scenario("vertex-1to3", base), 20, rng, start_s=warm_at, until_s=warm_at + 3600)
            for _ in range(min(replications, 5))]
    rounds = math.ceil(20 / 3)
    out["vertex"] = {
        "quoted_mean_s": quoted.CONCURRENCY["vertex"][20][1], "service_s": s_t4, "replicas": 3,
        "rounds_needed": rounds, "last_job_at_least_s": rounds * s_t4,
        "best_case_mean_closed_form_s": mean(math.ceil(k / 3) * s_t4 for k in range(1, 21)),
        "three_warm_replicas_simulated_mean_s": _mean_of(best),
        "one_warm_autoscaled_to_3_simulated_mean_s": _mean_of(auto),
        "note": "47.3 s mean for 20 jobs needs ~20 replicas at 34.2 s, or batching; 3 replicas need 7 rounds",
    }

    # Cost: the same month, with the article's optimized settings, billed per replica-second.
    wl = MonthlyWorkload(monthly=10_000, case_mix={"medium": 1.0}, cache_hit_ratio=0.2, cache_ttl_s=86400)
    results = {}
    for label, name in (("on_demand", "vertex-article"), ("spot", "vertex-article-spot")):
        r = run_month(scenario(name, base), wl, seed=seed)
        results[label] = {"monthly": r["monthly_cost"], "replica_hours": r["replica_hours"],
                          "busy_gpu_hours": r["deployment_stats"]["busy_hours"],
                          "utilisation": r["utilisation"], "p95_s": r["latency_s"]["p95"], "served": r["served"],
                          "cache_hits": r["cache_hits"]}
    out["cost"] = {
        "quoted_naive": quoted.COST["vertex_naive"]["monthly"], "quoted_optimized": quoted.COST["vertex_optimized"]["monthly"],
        "naive_formula": article_naive_cost(10_000, 30.0, prices["article_gpu_per_hour"]),
        "optimized_formula": article_naive_cost(10_000, 30.0, prices["article_gpu_per_hour"], 0.2, prices["spot_discount"]),
        "replica_second_bill": results,
        "min1_business_hours_alone_h": 9 * 30,
        "prices": prices,
    }
    return out


def to_report(result: dict[str, Any], seed: int, prices: dict) -> Report:
    return Report(role="article", kind="simulated", name="article", target="local+vertex",
                  config=RunConfig(driver="simulator article",
                                   simulation=SimulationConfig(seed=seed, monthly=10_000, prices=prices)),
                  environment={"simulator": "simpy", "seed": seed},
                  model={"profiles": ["seed-3090", "seed-t4"], "source": quoted.SOURCE}, extra=result)


def cmd_article(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulator.pricing import load_prices

    result = replay(seed=args.seed, prices=load_prices(args.prices, args.price))
    print("Benchmark 3, local (one RTX 3090, Medium, S = 28.7 s), N at once:")
    print(f"{'N':>3} {'article':>12} {'FIFO sim':>9} {'FIFO (N+1)/2·S':>15} {'proc-sharing N·S':>17} {'bounded q=16':>14}")
    for row in result["local"]:
        q = "OOM 8/20" if row["quoted_mean_s"] is None else f"{row['quoted_mean_s']:.1f} s"
        b = row["bounded_queue_16"]
        print(f"{row['concurrency']:>3} {q:>12} {row['fifo_simulated_mean_s']:>8.1f}s {row['fifo_closed_form_mean_s']:>14.1f}s "
              f"{row['processor_sharing_mean_s']:>16.1f}s {b['served']:>6} served/{b['rejected']} rej")
    v = result["vertex"]
    print(f"Vertex, 20 at once: article {v['quoted_mean_s']} s; 3 warm replicas: {v['three_warm_replicas_simulated_mean_s']:.1f} s "
          f"(closed form {v['best_case_mean_closed_form_s']:.1f} s, {v['rounds_needed']} rounds); "
          f"1 warm + autoscaling to 3: {v['one_warm_autoscaled_to_3_simulated_mean_s']:.1f} s")
    c = result["cost"]
    print(f"Cost at 10,000/month: article naive ${c['naive_formula']['monthly']:.2f}, 'optimized' ${c['optimized_formula']['monthly']:.2f}; "
          f"replica-second bill with the article's settings: on-demand ${c['replica_second_bill']['on_demand']['monthly']:.2f}, "
          f"spot ${c['replica_second_bill']['spot']['monthly']:.2f}")
    out = args.out or Path("reports/simulated/article.json")
    to_report(result, args.seed, result["cost"]["prices"]).save(out)
    print(f"written: {out}")
    return 0
