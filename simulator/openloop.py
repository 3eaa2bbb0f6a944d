"""Open-loop stages: recorded arrivals (time, case) replayed at their exact times, whatever the
deployment answers, as an open-loop Locust stage or a trace replay sends them. The stage ends when every
job has ended, or at `until_s` (a deployment that never ends a job would otherwise run forever)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import simpy

from loadlab.schema import Stage
from simulator.ledger import Job, Ledger


def arrive(env: simpy.Environment, deployment, ledger: Ledger, arrivals: Sequence[tuple]):
    """Each arrival (t, case) or, in a mechanics replay, (t, case, measured service s, measured overhead s
    [, the replica that served it])."""
    now = 0.0
    for t, case, *measured in arrivals:
        if t > now:
            yield env.timeout(t - now)
            now = t
        job = Job(case, env.now)
        job.scheduled = env.now
        if measured:
            job.take_measured(measured)
        ledger.arrive(job)
        deployment.submit(job)


def run_open_stage(make_deployment: Callable, arrivals: Sequence[tuple[float, str]], overhead, rng: random.Random,
                   name: str, duration_s: float | None = None, until_s: float | None = None,
                   arrival_rate_per_s: float | None = None, slo_e2e_s: float | None = None,
                   at_least_s: float | None = None):
    """(the simulated Stage, the deployment) of sorted (t, case) arrivals, t in s from the stage's start
    (or (t, case, measured service s, measured overhead s): a mechanics replay, simulator/mechanics.py).
    `make_deployment(env, ledger, rng)` builds the server under test; `overhead(case)` is the client's
    time added after the server's answer. The simulation runs until every job ended (at most `until_s`)
    and at least until `at_least_s` (an autoscaler's tail: replicas scaling down after the last job)."""
    env = simpy.Environment()
    ended = env.event()
    count = [0]

    def on_end(job: Job) -> None:
        count[0] += 1
        if count[0] == len(arrivals) and not ended.triggered:
            ended.succeed()

    ledger = Ledger(on_end=on_end)
    deployment = make_deployment(env, ledger, rng)
    env.process(arrive(env, deployment, ledger, arrivals))
    stop = ended if until_s is None else env.any_of([ended, env.timeout(until_s)])
    if arrivals:
        env.run(until=stop)
    if at_least_s is not None and env.now < at_least_s:
        env.run(until=at_least_s)
    stage = Stage(name=name, duration_s=duration_s, started_at=0.0, arrival_rate_per_s=arrival_rate_per_s,
                  slo_e2e_s=slo_e2e_s)
    stage.jobs = [j.record(j.overhead_s(overhead) if j.finished is not None else 0.0) for j in ledger.jobs]
    return stage, deployment
