"""Ray Serve's handle router in the simulator (simulator/deployments/ray_router.py) against Ray 2.60's own
code: its backoff schedule (RequestRouter._compute_backoff_s, the constants), the order of sleeps between
tries (RequestRouter._choose_replicas_with_backoff, driven with a stand-in router), and what it means for
a request waiting on a busy replica: it is sent at its routing task's next try, not when the slot frees."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import simpy

from simulator.autoscaling.ray_serve import RayServeConfig
from simulator.deployments.ray_router import RAY_DEFAULT_BACKOFF, RouterBackoff
from simulator.deployments.ray_serve import RayServeDeployment
from simulator.ledger import Job, Ledger
from simulator.pricing import DEFAULT_PRICES

ONE = RayServeConfig(min_replicas=1, max_replicas=1, target_ongoing_requests=1, max_ongoing_requests=1)


def rays_router():
    return pytest.importorskip("ray.serve._private.request_router.request_router")


def test_the_backoff_and_its_constants_are_rays():
    rr = rays_router()
    constants = pytest.importorskip("ray.serve._private.constants")
    assert RAY_DEFAULT_BACKOFF == RouterBackoff(constants.RAY_SERVE_ROUTER_RETRY_INITIAL_BACKOFF_S,
                                                constants.RAY_SERVE_ROUTER_RETRY_BACKOFF_MULTIPLIER,
                                                constants.RAY_SERVE_ROUTER_RETRY_MAX_BACKOFF_S,
                                                rr.RequestRouter.max_num_routing_tasks_cap)
    for schedule in (RAY_DEFAULT_BACKOFF, RouterBackoff(0.01, 3, 2.0)):
        for attempt in (*range(40), 2000):
            assert schedule.backoff_s(attempt) == rr.RequestRouter._compute_backoff_s(schedule, attempt)


def rays_try_times(tries: int) -> list[float]:
    """When Ray's `_choose_replicas_with_backoff` offers candidates, from the first offer, if every try
    fails: its sleeps summed (a stand-in router with one replica; `_backoff` records instead of sleeping)."""
    rr = rays_router()
    clock = [0.0]

    async def backoff(attempt):
        clock[0] += rr.RequestRouter._compute_backoff_s(RAY_DEFAULT_BACKOFF, attempt)

    async def choose_replicas(candidate_replicas, pending_request=None):
        return [candidate_replicas]

    fake = SimpleNamespace(_replicas={"r": "r"}, _replicas_list=["r"], num_routing_tasks_in_backoff=0,
                           num_routing_tasks_in_backoff_gauge=SimpleNamespace(set=lambda _: None),
                           choose_replicas=choose_replicas, _backoff=backoff)

    async def drive():
        times = []
        gen = rr.RequestRouter._choose_replicas_with_backoff(fake, None)
        async for _ in gen:
            times.append(clock[0])
            if len(times) == tries:
                break
        await gen.aclose()
        return times
    return asyncio.run(drive())


def busy_replica_and_one_waiting(router=RAY_DEFAULT_BACKOFF, service_s=10.0):
    """One warm replica, one slot; A and B at t=5, service `service_s` each: (A, B, the try times)."""
    env = simpy.Environment()
    ledger = Ledger()
    dep = RayServeDeployment(env, ledger, lambda case, **_: service_s, ONE, DEFAULT_PRICES, startup_s=1.0,
                             router=router)
    tries = []
    if dep.router is not None:
        choose = dep.router.choose
        dep.router.choose = lambda: (tries.append(env.now), choose())[1]
    env.run(until=5)
    jobs = [Job("medium", env.now) for _ in range(2)]
    for j in jobs:
        ledger.arrive(j)
        dep.submit(j)
    env.run(until=60)
    return jobs[0], jobs[1], tries


def test_a_waiting_request_is_tried_on_rays_schedule():
    """B's routing task tries at once, once more at once, then after 0.025, 0.05, ... 0.5 s — the times
    Ray's generator offers candidates — until A's slot has freed (15 s)."""
    a, b, tries = busy_replica_and_one_waiting()
    b_tries = [t - 5.0 for t in tries[1:]]           # the first try routed A at once
    assert b_tries[:14] == pytest.approx(rays_try_times(14))
    assert b_tries[-2] < 10.0 <= b_tries[-1]


def test_a_request_waiting_on_a_busy_replica_is_sent_at_its_next_try_not_when_the_slot_frees():
    """A's slot frees at 15 s; nothing wakes B's task (Ray updates only its queue-length cache), whose
    tries fall at 5 + 0.775 + k x 0.5 s: B starts at 15.275. An ideal router (None) hands it over at 15."""
    a, b, _ = busy_replica_and_one_waiting()
    assert (a.started, a.finished) == (5.0, 15.0)
    assert b.started == pytest.approx(15.275) and b.finished == pytest.approx(25.275)
    _, ideal, _ = busy_replica_and_one_waiting(router=None)
    assert ideal.started == 15.0


def test_the_oldest_waiting_request_gets_the_free_replica_whichever_task_found_it():
    """Five at once on one busy replica: two routing tasks (2 x replicas), the requests start in arrival
    order (FIFOMixin), each at a try after the one before it ended."""
    env = simpy.Environment()
    ledger = Ledger()
    dep = RayServeDeployment(env, ledger, lambda case, **_: 3.0, ONE, DEFAULT_PRICES, startup_s=1.0)
    env.run(until=2)
    jobs = [Job("medium", env.now) for _ in range(5)]
    for j in jobs:
        ledger.arrive(j)
        dep.submit(j)
    env.run(until=2.001)
    assert len(dep.router.tasks) == 2 and len(dep.queue) == 4
    env.run(until=100)
    starts = [j.started for j in jobs]
    assert starts == sorted(starts)
    for prev, nxt in zip(jobs, jobs[1:], strict=False):
        assert prev.finished <= nxt.started < prev.finished + RAY_DEFAULT_BACKOFF.max_backoff_s


TWO = RayServeConfig(min_replicas=2, max_replicas=2, target_ongoing_requests=1, max_ongoing_requests=1)


def two_warm_replicas(service_s: float = 1.0, seed: int = 0):
    """Two replicas RUNNING from t=0, the router there, jobs of `service_s`: (env, ledger, deployment)."""
    import random

    env = simpy.Environment()
    ledger = Ledger()
    dep = RayServeDeployment(env, ledger, lambda case, **_: service_s, TWO, DEFAULT_PRICES, startup_s=1.0,
                             initial_running=2, router_at_start=True, rng=random.Random(seed))
    return env, ledger, dep


def replayed_job(env, ledger, dep, service_s: float, replica: int | None) -> Job:
    """A mechanics replay's job, submitted now, that ran on `replica` in the measured run."""
    job = Job("medium", env.now)
    job.take_measured((service_s, 0.0, replica))
    ledger.arrive(job)
    dep.submit(job)
    return job


def two_idle_replicas_serving(wanted: list[int | None], seed: int) -> list[str]:
    """Two warm replicas; a job every 10 s (each 1 s, so both are idle when it comes), each with the
    replica that served it in a measured run (None: not a replay): who served each."""
    env, ledger, dep = two_warm_replicas(seed=seed)
    jobs = []
    for k, replica in enumerate(wanted):
        env.run(until=10.0 * (k + 1))
        jobs.append(replayed_job(env, ledger, dep, 1.0, replica))
    env.run(until=10.0 * (len(wanted) + 1))
    return [j.served_by for j in jobs]


def test_a_mechanics_replay_routes_each_request_to_the_replica_that_served_it_when_that_one_is_free():
    """Between two free replicas Ray's pick is a coin (two random candidates, the first on a tie); a replay
    takes the run's own pick, so a request's busy time counts on the replica the run counted it on."""
    wanted = [1, 0, 1, 1, 0, 0, 1, 0]
    for seed in range(5):
        assert two_idle_replicas_serving(wanted, seed) == [f"ray-replica{k}" for k in wanted]
    coin = {tuple(two_idle_replicas_serving([None] * 8, seed)) for seed in range(5)}
    assert len(coin) > 1 and any(len(set(served)) == 2 for served in coin)   # without it: Ray's draw


def test_a_replay_whose_replica_is_busy_takes_rays_pick_instead_of_waiting_for_it():
    """Two at once, both wanting replica 0: the second takes the free replica 1 at its first try."""
    env, ledger, dep = two_warm_replicas(service_s=5.0)
    env.run(until=1.0)
    jobs = [replayed_job(env, ledger, dep, 5.0, 0) for _ in range(2)]
    env.run(until=20.0)
    assert [j.served_by for j in jobs] == ["ray-replica0", "ray-replica1"]
    assert jobs[1].started == pytest.approx(1.0)


def test_the_queue_length_cache_is_rays():
    """The same sends, ends, probes and clock through Ray's own cache and router updates
    (ReplicaQueueLengthCache, RequestRouter.on_send_request / decrement_queue_len_cache) and ours: every
    read agrees, stale entries (over 10 s) included."""
    import random

    common = pytest.importorskip("ray.serve._private.request_router.common")
    rr = rays_router()
    from simulator.deployments.ray_router import QUEUE_LENGTH_CACHE_TIMEOUT_S, QueueLenCache

    env = SimpleNamespace(now=0.0)                 # the cache reads only the clock
    ours = QueueLenCache(env)
    rays = common.ReplicaQueueLengthCache(staleness_timeout_s=QUEUE_LENGTH_CACHE_TIMEOUT_S, get_curr_time_s=lambda: env.now)
    router = SimpleNamespace(_use_replica_queue_len_cache=True, _replica_queue_len_cache=rays,
                             _update_router_queue_len_gauge=lambda *_: None)
    rng = random.Random(3)
    for _ in range(3000):
        env.now += rng.choice([0.0, 0.5, 3.0, 9.9, 10.0, 10.5])
        rid, op = rng.randrange(3), rng.randrange(3)
        if op == 0:
            ours.sent(rid)
            rr.RequestRouter.on_send_request(router, rid)
        elif op == 1:
            ours.done(rid)
            rr.RequestRouter.decrement_queue_len_cache(router, rid)
        else:
            n = rng.randrange(3)
            ours.update(rid, n)
            rays.update(rid, n)
        assert [ours.get(r) for r in range(3)] == [rays.get(r) for r in range(3)]


def test_a_replica_with_a_fresh_free_entry_wins_over_one_the_router_must_ask():
    """Both free: the one whose cache entry is fresh is taken whichever was drawn first, and the other is
    probed on the side; with neither known both are probed and the first drawn free one is taken; a full
    entry is asked again, and a replica that answers full is not taken."""
    env, _, dep = two_warm_replicas()
    env.run(until=1.0)
    router, (a, b) = dep.router, sorted(dep.active, key=lambda r: r.id)
    router.cache.update(a.id, 0)
    assert router.select([b, a]) is a and router.cache.get(b.id) == 0        # b probed in the background
    router.cache.entries.clear()
    assert router.select([b, a]) is b                                         # both probed: a tie, first drawn
    router.cache.entries.clear()
    router.cache.update(a.id, 1)                                              # full in the cache: asked again
    b.ongoing = 1
    assert router.select([b, a]) is a and router.cache.get(b.id) == 1
    env.run(until=12.0)                                                       # a's entry is over 10 s old
    b.ongoing = 0
    router.cache.update(b.id, 0)
    assert router.select([a, b]) is b
