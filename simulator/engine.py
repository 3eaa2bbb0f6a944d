"""The engine: a scenario's deployment fed a month of open-loop arrivals on SimPy, and the figures of
the run (latency, outcomes, replicas, bill) collected in one place."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import simpy

from loadlab.stats import mean_ci95
from simulator.bill import bill_of
from simulator.ledger import Job, Ledger
from simulator.scenarios import Scenario
from simulator.workload import MONTH_S, Arrivals, MonthlyWorkload


def open_arrivals(env: simpy.Environment, deployment, ledger: Ledger, arrivals: Arrivals, cache_hit_s: float,
                  progress=None):
    """Feed the arrivals, drawn chunk by chunk as the clock reaches them; cache hits take no GPU time."""
    now = 0.0
    timeout = env.timeout
    submit = deployment.submit
    arrive = ledger.arrive
    for times, cases, hits in arrivals:
        for t, case, hit in zip(times.tolist(), cases, hits.tolist(), strict=True):
            if t > now:
                yield timeout(t - now)
                now = t
            job = Job(case, now)
            arrive(job)
            if hit:
                ledger.cache_hits += 1
                job.started, job.service_s = now, 0.0
                env.process(cache_answer(env, ledger, job, cache_hit_s))
            else:
                submit(job)
        if progress is not None:
            progress.update(len(times))


def cache_answer(env, ledger, job, cache_hit_s):
    yield env.timeout(cache_hit_s)
    ledger.complete(job, env.now, "cache")


def run_month(scenario: Scenario, workload: MonthlyWorkload, seed: int = 1, progress: bool = False,
              slo_e2e_s: float | None = None, keep_jobs: int | None = 0) -> dict[str, Any]:
    """Simulate a month (workload.days) and return the figures plus the ledger (key `_ledger`, holding the
    first `keep_jobs` jobs, None: all; the figures never need them)."""
    rng = random.Random(seed)
    return run_arrivals(scenario, workload.arrivals(np.random.default_rng(seed)), workload.days * 86400, rng,
                        progress=progress, slo_e2e_s=slo_e2e_s, keep_jobs=keep_jobs)


def run_trace(scenario: Scenario, rows: list[tuple[float, str]], horizon_s: float, seed: int = 1,
              progress: bool = False, slo_e2e_s: float | None = None, keep_jobs: int | None = 0) -> dict[str, Any]:
    """Replay (t_s, case) arrivals (a trace; no cache hits) until horizon_s."""
    times = np.asarray([t for t, _ in rows], dtype=float)
    arrivals = Arrivals(len(rows), iter([(times, [c for _, c in rows], np.zeros(times.size, bool))]))
    return run_arrivals(scenario, arrivals, horizon_s, random.Random(seed), progress=progress, slo_e2e_s=slo_e2e_s,
                        keep_jobs=keep_jobs)


def run_arrivals(scenario: Scenario, arrivals: Arrivals, horizon_s: float, rng: random.Random,
                 progress: bool = False, slo_e2e_s: float | None = None, keep_jobs: int | None = 0) -> dict[str, Any]:
    """Simulate the scenario's deployment under the given arrivals until horizon_s."""
    env = simpy.Environment()
    ledger = Ledger(keep=keep_jobs, slo_e2e_s=slo_e2e_s)
    deployment = scenario.build(env, ledger, rng)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=arrivals.total, desc=f"  {scenario.label}", unit="req", unit_scale=True, leave=True)
    env.process(open_arrivals(env, deployment, ledger, arrivals, scenario.cache_hit_s, bar))
    t0 = time.time()
    env.run(until=horizon_s)
    if bar is not None:
        bar.update(arrivals.total - bar.n)
        bar.close()
    figures = collect(scenario, deployment, ledger, horizon_s)
    figures["wall_s"] = time.time() - t0
    figures["_ledger"] = ledger      # not the deployment: its queues may hold every request still waiting
    return figures


def collect(scenario: Scenario, deployment, ledger: Ledger, horizon: float) -> dict[str, Any]:
    """The run's figures, all from the ledger's streamed counts (it need not hold the jobs)."""
    slo = {}
    if ledger.slo_e2e_s is not None:
        # as Stage.summary defines them: every arrival counts (one still in flight missed the SLO)
        good = ledger.within_slo
        slo = {"slo_e2e_s": ledger.slo_e2e_s, "slo_attainment": good / ledger.arrivals if ledger.arrivals else None,
               "goodput_per_s": good / horizon}
    month_scale = MONTH_S / horizon
    cost = deployment.cost(horizon)
    # the whole bill (simulator/bill.py): replica time as billed plus what the replicas alone miss (a Ray
    # head node, nodes outliving their replicas, egress); replica time scales with the horizon, a GPU bought
    # for the month does not
    bill = bill_of(scenario, deployment, ledger, horizon)
    monthly_cost = bill["total"]
    stats = deployment.stats(horizon)
    return {
        "deployment": scenario.label, "kind": scenario.kind,
        "arrivals": ledger.arrivals, "served": ledger.served, "failed": ledger.failed,
        "rejected": ledger.rejected, "retried": ledger.retried, "in_flight": ledger.in_flight,
        "cache_hits": ledger.cache_hits,
        "latency_s": ledger.latency.summary(),
        "cold_start_share": ledger.cold_starts / ledger.served if ledger.served else None,
        **{k: stats.get(k) for k in ("mean_replicas", "max_replicas", "utilisation")},
        "replica_hours": stats["replica_hours"] * month_scale,   # per 30 days, like the cost
        "deployment_stats": stats,
        "monthly_cost": monthly_cost,
        # the bill is per 30 days, the served count per horizon: both per month
        "cost_per_request": monthly_cost / (ledger.served * month_scale) if ledger.served else None,
        "cost_breakdown": cost,
        "bill": bill,
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
