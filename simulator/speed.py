"""`python -m simulator bench`: how fast the simulator is, against a bare SimPy M/M/1 loop in the same run.

Prints wall time and per-request cost; asserts nothing. Goals: 1,000,000 requests in a month
in under a minute on this machine, and per-request cost at most 3x the bare loop's.
"""

from __future__ import annotations

import argparse
import random
import time

import simpy

from simulator.engine import run_month
from simulator.scenarios import scenario
from simulator.workload import MonthlyWorkload


def bare_mm1(n: int, lam: float = 0.9, mu: float = 1.0, seed: int = 1) -> float:
    """SimPy's textbook M/M/1: a source process spawning one customer process per arrival, a Resource."""
    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)

    def customer(env, server):
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(mu))

    def source(env):
        for _ in range(n):
            yield env.timeout(rng.expovariate(lam))
            env.process(customer(env, server))
    env.process(source(env))
    t0 = time.perf_counter()
    env.run()
    return time.perf_counter() - t0


def cmd_bench(args: argparse.Namespace) -> int:
    n = args.requests
    n_bare = min(n, 300_000)
    bare = bare_mm1(n_bare, seed=args.seed)
    per_bare = bare / n_bare
    print(f"bare SimPy M/M/1 loop: {n_bare:,} requests in {bare:.2f} s = {1e6 * per_bare:.2f} us/request")
    wl = MonthlyWorkload(monthly=n)
    ratios = {}
    for sc in (scenario("local-48gpu"), scenario("vertex-1to40")):
        t0 = time.perf_counter()
        r = run_month(sc, wl, seed=args.seed)
        wall = time.perf_counter() - t0
        per = wall / n
        ratios[sc.label] = per / per_bare
        print(f"{sc.label:<13} {n:,} requests in a month: {wall:.1f} s wall ({'under' if wall < 60 else 'OVER'} a minute), "
              f"{1e6 * per:.2f} us/request = {per / per_bare:.2f}x the bare loop; served {r['served']:,}, "
              f"p95 {r['latency_s']['p95']:.1f} s, max replicas {r['max_replicas']}")
    return 0
