"""Closed-loop stages, as a Locust stage runs them: N users that each submit a job, wait for its
result, and submit the next, for `duration_s` (closed loop) or `jobs_per_user` jobs (burst; 1 job per
user is the article's "N requests at once"). In a mechanics replay (`script`: the measured jobs' (case,
service s, overhead s) in the order they were submitted) the n-th job submitted is the n-th measured one. The users start at `start_s` (a deployment that must warm
up first) and the stage ends when every job ended, or at `until_s` for deployments that never go
quiet (an autoscaler ticks forever)."""

from __future__ import annotations

import random

import simpy

from loadlab.schema import Stage
from simulator.ledger import Job, Ledger


def user(env: simpy.Environment, deployment, ledger: Ledger, uid: int, pick_case, overhead, overheads: dict,
         duration_s: float | None, jobs_per_user: int | None, start_s: float = 0.0):
    """One user: submit, wait for the result (+ client overhead), repeat."""
    if start_s:
        yield env.timeout(start_s)
    n = 0
    while True:
        if jobs_per_user and n >= jobs_per_user:
            return
        if not jobs_per_user and duration_s is not None and env.now >= start_s + duration_s:
            return
        done = env.event()
        case, *measured = pick_case()
        job = Job(case, env.now, done, uid)
        if measured:
            job.take_measured(measured)
        ledger.arrive(job)
        deployment.submit(job)
        yield done
        extra = job.overhead_s(overhead)
        overheads[id(job)] = extra
        if extra:
            yield env.timeout(extra)
        n += 1


def run_stage(make_deployment, users: int, case_weights: dict[str, float], overhead, rng: random.Random,
              duration_s: float | None = None, jobs_per_user: int | None = None, name: str | None = None,
              start_s: float = 0.0, until_s: float | None = None,
              script: list[tuple[str, float | None, float | None]] | None = None) -> Stage:
    """Simulate one stage; `make_deployment(env, ledger, rng)` builds the server under test."""
    if not duration_s and not jobs_per_user:
        jobs_per_user = 1
    env = simpy.Environment()
    ledger = Ledger()
    deployment = make_deployment(env, ledger, rng)
    names = list(case_weights)
    weights = [case_weights[c] for c in names]

    queue = list(reversed(script or []))

    def pick_case() -> tuple:
        if queue:
            return queue.pop()
        return (rng.choices(names, weights)[0] if len(names) > 1 else names[0]),

    overheads: dict[int, float] = {}
    for uid in range(users):
        env.process(user(env, deployment, ledger, uid, pick_case, overhead, overheads, duration_s, jobs_per_user,
                         start_s))
    # users stop submitting at the end of the stage; jobs in flight finish (Locust stop timeout)
    env.run(until=until_s)
    stage = Stage(name=name or f"u={users}", concurrency=users, duration_s=duration_s if not jobs_per_user else None,
                  jobs_per_user=jobs_per_user, started_at=start_s if start_s else None)
    stage.jobs = [j.record(overheads.get(id(j), 0.0)) for j in ledger.jobs]
    return stage
