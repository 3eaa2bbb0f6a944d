"""The engine: a scenario's deployment fed a month of open-loop arrivals on SimPy, and the figures of
the run (latency, outcomes, replicas, bill) collected in one place."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import simpy

from loadlab.schema import COMPLETED
from loadlab.stats import mean, mean_ci95, summarize
from simulator.ledger import Job, Ledger
from simulator.scenarios import Scenario
from simulator.workload import MONTH_S, MonthlyWorkload


def open_arrivals(env: simpy.Environment, deployment, ledger: Ledger, times, cases, hits, cache_hit_s: float,
                  progress=None):
    """Feed the precomputed arrivals; cache hits are answered without GPU time."""
    now = 0.0
    timeout = env.timeout
    submit = deployment.submit
    arrive = ledger.arrive
    step = max(1, len(times) // 50)
    for i, t in enumerate(times.tolist()):
        if t > now:
            yield timeout(t - now)
            now = t
        job = Job(cases[i], now)
        arrive(job)
        if hits[i]:
            ledger.cache_hits += 1
            job.started, job.service_s = now, 0.0
            env.process(cache_answer(env, ledger, job, cache_hit_s))
        else:
            submit(job)
        if progress is not None and i % step == 0:
            progress.update(i - progress.n)


def cache_answer(env, ledger, job, cache_hit_s):
    yield env.timeout(cache_hit_s)
    ledger.complete(job, env.now, "cache")


def run_month(scenario: Scenario, workload: MonthlyWorkload, seed: int = 1, progress: bool = False,
              slo_e2e_s: float | None = None) -> dict[str, Any]:
    """Simulate a month (workload.days) and return the figures plus the ledger (key `_ledger`)."""
    rng = random.Random(seed)
    times, cases, hits = workload.generate(np.random.default_rng(seed))
    return run_arrivals(scenario, times, cases, hits, workload.days * 86400, rng, progress=progress,
                        slo_e2e_s=slo_e2e_s)


def run_trace(scenario: Scenario, rows: list[tuple[float, str]], horizon_s: float, seed: int = 1,
              progress: bool = False, slo_e2e_s: float | None = None) -> dict[str, Any]:
    """Replay (t_s, case) arrivals (a trace; no cache hits) until horizon_s."""
    times = np.asarray([t for t, _ in rows], dtype=float)
    return run_arrivals(scenario, times, [c for _, c in rows], np.zeros(times.size, bool), horizon_s,
                        random.Random(seed), progress=progress, slo_e2e_s=slo_e2e_s)


def run_arrivals(scenario: Scenario, times, cases, hits, horizon_s: float, rng: random.Random,
                 progress: bool = False, slo_e2e_s: float | None = None) -> dict[str, Any]:
    """Simulate the scenario's deployment under the given arrivals (sorted times in s) until horizon_s."""
    env = simpy.Environment()
    ledger = Ledger()
    deployment = scenario.build(env, ledger, rng)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(times), desc=f"  {scenario.label}", unit="req", unit_scale=True, leave=True)
    env.process(open_arrivals(env, deployment, ledger, times, cases, hits, scenario.cache_hit_s, bar))
    t0 = time.time()
    env.run(until=horizon_s)
    if bar is not None:
        bar.update(len(times) - bar.n)
        bar.close()
    figures = collect(scenario, deployment, ledger, horizon_s, slo_e2e_s)
    figures["wall_s"] = time.time() - t0
    figures["_ledger"] = ledger
    figures["_deployment"] = deployment
    return figures


def collect(scenario: Scenario, deployment, ledger: Ledger, horizon: float,
            slo_e2e_s: float | None = None) -> dict[str, Any]:
    done = [j for j in ledger.jobs if j.status == COMPLETED]
    lat = summarize(j.finished - j.submitted for j in done)
    slo = {}
    if slo_e2e_s is not None:
        # as Stage.summary defines them: every arrival counts (one still in flight missed the SLO)
        good = sum(j.finished - j.submitted <= slo_e2e_s for j in done)
        slo = {"slo_e2e_s": slo_e2e_s, "slo_attainment": good / ledger.arrivals if ledger.arrivals else None,
               "goodput_per_s": good / horizon}
    month_scale = MONTH_S / horizon
    cost = deployment.cost(horizon)
    # replica time scales with the horizon; a GPU bought for the month does not
    monthly_cost = cost["usage"] * month_scale + cost["fixed_per_month"]
    stats = deployment.stats(horizon)
    return {
        "deployment": scenario.label, "kind": scenario.kind,
        "arrivals": ledger.arrivals, "served": ledger.served, "failed": ledger.failed,
        "rejected": ledger.rejected, "retried": ledger.retried, "in_flight": ledger.in_flight,
        "cache_hits": ledger.cache_hits,
        "latency_s": lat,
        "cold_start_share": mean(j.cold_start for j in done),
        **{k: stats.get(k) for k in ("mean_replicas", "max_replicas", "utilisation")},
        "replica_hours": stats["replica_hours"] * month_scale,   # per 30 days, like the cost
        "deployment_stats": stats,
        "monthly_cost": monthly_cost,
        "cost_per_request": monthly_cost / ledger.served if ledger.served else None,
        "cost_breakdown": cost,
        **slo,
    }


def interval(values: list[float | None]) -> dict[str, Any]:
    """Mean and 95 % half-width over replications (None when a replication had no value)."""
    given = [v for v in values if v is not None]
    m, half = mean_ci95(given)
    return {"mean": m, "ci95": half, "n": len(given), "values": values}


def replicate(results: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """The spread of one scenario's independent replications (seeds): its monthly cost and p95."""
    return {"seeds": seeds, "monthly_cost": interval([r["monthly_cost"] for r in results]),
            "p95_s": interval([r["latency_s"]["p95"] for r in results])}
