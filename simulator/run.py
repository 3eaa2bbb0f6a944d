"""Run a deployment under a workload and collect the figures (simulator/metrics in one place)."""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from loadlab.cases import ALL_CASES
from loadlab.schema import COMPLETED, Case, Report, RunConfig, SimulationConfig, Stage
from loadlab.stats import summarize
from simulator.deployments import Hybrid, LocalGPU, VertexConfig, VertexEndpoint
from simulator.ledger import Job, Ledger
from simulator.pricing import DEFAULT_PRICES, article_naive_cost
from simulator.profiles import ServiceTimeProfile, builtin
from simulator.workload import MonthlyWorkload

DEPLOYMENTS = ("local", "vertex", "hybrid")


@dataclass
class Scenario:
    """One way of serving. kind: local | vertex | hybrid."""

    kind: str = "vertex"
    name: str | None = None
    local_profile: ServiceTimeProfile = field(default_factory=lambda: builtin("seed-3090"))
    vertex_profile: ServiceTimeProfile = field(default_factory=lambda: builtin("seed-t4"))
    gpus: int = 1
    queue_limit: int | None = None
    max_batch: int = 1
    batch_marginal: float = 1.0
    vertex: VertexConfig = field(default_factory=VertexConfig)
    fallback_after_s: float | None = 120.0
    cache_hit_s: float = 0.05
    prices: dict = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @property
    def label(self) -> str:
        return self.name or self.kind


def build(env: simpy.Environment, scenario: Scenario, ledger: Ledger, rng: random.Random):
    if scenario.kind not in DEPLOYMENTS:
        raise ValueError(f"unknown deployment {scenario.kind!r}; choose from {DEPLOYMENTS}")
    local = vertex = None
    if scenario.kind in ("local", "hybrid"):
        local = LocalGPU(env, ledger, scenario.local_profile.sampler(rng), gpus=scenario.gpus,
                         queue_limit=scenario.queue_limit, max_batch=scenario.max_batch,
                         batch_marginal=scenario.batch_marginal,
                         fixed_per_month=scenario.prices["local_fixed_per_month"])
    if scenario.kind in ("vertex", "hybrid"):
        vertex = VertexEndpoint(env, ledger, scenario.vertex_profile.sampler(rng), scenario.vertex, scenario.prices,
                                provision_s=scenario.vertex_profile.provision_s,
                                load_s=scenario.vertex_profile.load_s, rng=rng)
    if scenario.kind == "hybrid":
        return Hybrid(env, vertex, local, scenario.fallback_after_s)
    return local or vertex


def open_arrivals(env, deployment, ledger: Ledger, times, cases, hits, cache_hit_s: float, progress=None):
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
            progress(i, len(times))


def cache_answer(env, ledger, job, cache_hit_s):
    yield env.timeout(cache_hit_s)
    ledger.complete(job, env.now, "cache")


def progress_bar(label: str):
    start = time.time()

    def show(i: int, n: int) -> None:
        frac = i / n if n else 1
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r  {label:<18} [{bar:<30}] {100 * frac:5.1f}%  {time.time() - start:5.1f} s")
        sys.stderr.flush()
        if i >= n:
            sys.stderr.write("\n")
    return show


def run_month(scenario: Scenario, workload: MonthlyWorkload, seed: int = 1, progress: bool = False) -> dict[str, Any]:
    """Simulate a month (workload.days) and return the figures plus the ledger."""
    rng = random.Random(seed)
    times, cases, hits = workload.generate(np.random.default_rng(seed))
    horizon = workload.days * 86400
    env = simpy.Environment()
    ledger = Ledger()
    deployment = build(env, scenario, ledger, rng)
    bar = progress_bar(scenario.label) if progress else None
    env.process(open_arrivals(env, deployment, ledger, times, cases, hits, scenario.cache_hit_s, bar))
    t0 = time.time()
    env.run(until=horizon)
    if bar:
        bar(len(times), len(times))
    figures = collect(scenario, deployment, ledger, horizon, workload.monthly * (30 * 86400) / horizon)
    figures["wall_s"] = time.time() - t0
    figures["_ledger"] = ledger
    return figures


def collect(scenario: Scenario, deployment, ledger: Ledger, horizon: float, monthly_volume: float) -> dict[str, Any]:
    done = [j for j in ledger.jobs if j.status == COMPLETED]
    lat = summarize(j.finished - j.submitted for j in done)
    month_scale = (30 * 86400) / horizon
    cost = deployment.cost(horizon)
    monthly_cost = cost["monthly"] * (month_scale if scenario.kind != "local" else 1.0)
    if scenario.kind == "hybrid":
        monthly_cost = cost["vertex"] * month_scale + cost["local"]
    stats = deployment.stats(horizon)
    return {
        "deployment": scenario.label, "kind": scenario.kind,
        "arrivals": ledger.arrivals, "served": ledger.served, "failed": ledger.failed,
        "rejected": ledger.rejected, "retried": ledger.retried, "in_flight": ledger.in_flight,
        "cache_hits": ledger.cache_hits,
        "latency_s": lat,
        "cold_start_share": (sum(j.cold_start for j in done) / len(done)) if done else None,
        **{k: stats.get(k) for k in ("mean_replicas", "max_replicas", "utilisation")},
        "replica_hours": stats["replica_hours"] * month_scale,   # per 30 days, like the cost
        "deployment_stats": stats,
        "monthly_cost": monthly_cost,
        "cost_per_request": monthly_cost / ledger.served if ledger.served else None,
        "cost_breakdown": cost,
    }


def to_report(name: str, results: list[dict[str, Any]], workload: MonthlyWorkload, seed: int,
              prices: dict, max_jobs: int = 200_000) -> Report:
    """The shared schema: one stage per deployment (arrival rate = monthly volume / month)."""
    used = sorted({c for c in workload.case_mix})
    simulation = SimulationConfig(seed=seed, monthly=workload.monthly, days=workload.days,
                                  case_mix=workload.case_mix, cache_hit_ratio=workload.cache_hit_ratio,
                                  cache_ttl_s=workload.cache_ttl_s, hour_weights=workload.hour_weights,
                                  day_weights=workload.day_weights, prices=prices)
    report = Report(role="monthly", kind="simulated", name=name, target="+".join(r["deployment"] for r in results),
                    cases=[ALL_CASES.get(c, Case(name=c, layers=0, resolution=0, image_px=0)) for c in used],
                    environment={"simulator": "simpy", "seed": seed},
                    model={"profiles": {r["deployment"]: r.get("profile") for r in results}},
                    config=RunConfig(driver="simulator run", simulation=simulation),
                    extra={"results": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
                           "article_naive": article_naive_cost(workload.monthly),
                           "article_optimized": article_naive_cost(workload.monthly, cache_hit_ratio=0.2,
                                                                   spot_discount=0.7)})
    horizon = workload.days * 86400
    for r in results:
        ledger = r["_ledger"]
        stage = Stage(name=r["deployment"], arrival_rate_per_s=workload.monthly / (30 * 86400), duration_s=horizon)
        stage.jobs = [j.record() for j in ledger.jobs[:max_jobs]]
        report.stages.append(stage)
    return report
