"""The `ray-serve` autoscaling policy against decision times computed by hand for a scripted load (no Ray
needed), its pieces (delays, factors, bounds, the controller's time-weighted total), and the `ray`
deployment kind in `run` and `sweep`."""

from __future__ import annotations

import random

import pytest
import simpy

from loadlab.schema import Report
from simulator.autoscaling.ray_serve import RayServeConfig, decide
from simulator.autoscaling.ray_serve_metrics import RouterMetrics, TotalRequests, merge_instantaneous_total
from simulator.cli import main
from simulator.deployments.ray_serve import RayServeDeployment
from simulator.ledger import Job, Ledger
from simulator.pricing import DEFAULT_PRICES

SCRIPT = RayServeConfig(min_replicas=0, max_replicas=2, target_ongoing_requests=1, max_ongoing_requests=1,
                        upscale_delay_s=2, downscale_delay_s=10, downscale_to_zero_delay_s=15,
                        look_back_period_s=30, metrics_interval_s=10)


def run_script(arrivals, config=SCRIPT, service_s=25.0, startup_s=2.0, until=300.0, record_timeline=True, **kwargs):
    env = simpy.Environment()
    ledger = Ledger()
    dep = RayServeDeployment(env, ledger, lambda case, **_: service_s, config, DEFAULT_PRICES, startup_s=startup_s,
                             record_timeline=record_timeline, **kwargs)

    def source():
        for t in arrivals:
            if t > env.now:
                yield env.timeout(t - env.now)
            job = Job("medium", env.now)
            ledger.arrive(job)
            dep.submit(job)
    env.process(source())
    env.run(until=until)
    return dep, ledger


def test_decision_times_of_a_scripted_load_match_the_hand_computation():
    """Service 25 s, start-up 2 s, control loop every 0.1 s, records every min(0.2 x 30, 10) = 6 s from the
    router's creation (t=1), pushes every 10 s (t = 1, 11, 21, ...):

    - t=1: A arrives; the fresh router pushes queued=[(1, 1)]; the next tick, 1.1, takes the cold-start
      path: 0 -> 1. Replica 0 runs at 3.1 and serves A until 28.1.
    - pushes 31..51 still hold ongoing=1 points, so total > 0 and ceil keeps 1; the push at 61 holds only
      zeros (points 37..61): total 0 at 61.1, 1 -> 0 waits downscale_to_zero_delay_s: 76.1.
      Replica 0 stops at the first graceful check, 78.1.
    - t=100: B and C arrive at zero replicas; the pushes at 100 and 101 hold points up to 97 (zeros): no
      decision. The push at 111 holds queued=2 from 103: total > 0 at 111.1, cold start 0 -> 1.
      Replica 1 runs at 113.1 and takes B.
    - push 121: queued 1 + replica 1's 1 from 115: total 2, desired 2 > 1 from 121.1, upscale_delay_s 2:
      1 -> 2 at 123.1. Replica 2 runs at 125.1; C's routing task, failing since 113.1 (tries at 113.1 +
      0, 0, 0.025, 0.075, 0.175, 0.375, 0.775, then every 0.5 s: Ray's router backoff), is not woken by
      it and sends C at its next try, 125.375 (until 150.375); B ends at 138.1.
    - push 161: merged [(133, 2), (139, 1), (151, 0)] from 133: total = 24 / (t - 133) < 1 from 161.1,
      downscale_delay_s 10: 2 -> 1 at 171.1, the newest running (replica 2) stops at 173.1.
    - from 171.2 only replica 1 runs and its points since 145 are zeros (replica 2's no longer count):
      total 0, 1 -> 0 after 15 s: 186.2; replica 1 stops at 188.2.
    """
    dep, ledger = run_script([1.0, 100.0, 100.0])
    events = [(e.t, e.from_replicas, e.to_replicas) for e in dep.events]
    want = [(1.1, 0, 1), (76.1, 1, 0), (111.1, 0, 1), (123.1, 1, 2), (171.1, 2, 1), (186.2, 1, 0)]
    assert [(f, t) for _, f, t in events] == [(f, t) for _, f, t in want]
    assert [t for t, _, _ in events] == pytest.approx([t for t, _, _ in want], abs=1e-6)
    got = [(r.started_at, r.ready_at, r.stopped_at) for r in dep.replicas]
    assert got == [pytest.approx(x, abs=1e-6) for x in [(1.1, 3.1, 78.1), (111.1, 113.1, 188.2),
                                                         (123.1, 125.1, 173.1)]]
    jobs = [(j.started, j.finished, j.cold_start) for j in ledger.jobs]
    assert jobs == [pytest.approx(x, abs=1e-6) for x in [(3.1, 28.1, True), (113.1, 138.1, True),
                                                         (125.375, 150.375, True)]]
    run = dep.replica_run(300.0)
    assert run.replica_seconds == pytest.approx(77.0 + 77.1 + 50.0, abs=1e-6)
    # billed per started node-second, at least a minute (replica 2: 50 s -> 60 s), at the GPU node price
    assert dep.cost(300.0)["usage"] == pytest.approx((77 + 78 + 60) * DEFAULT_PRICES["gpu_node_per_hour"] / 3600)


def test_requests_are_held_at_zero_replicas_and_none_is_lost():
    dep, ledger = run_script([5.0 + 0.5 * i for i in range(12)], until=2000.0)
    assert all(j.status == "completed" for j in ledger.jobs)
    assert max(e.to_replicas for e in dep.events) == 2
    assert dep.events[-1].to_replicas == 0 and not dep.active    # back to zero, everything stopped


def test_max_ongoing_requests_bounds_what_a_replica_holds():
    cfg = RayServeConfig(min_replicas=1, max_replicas=1, target_ongoing_requests=2, max_ongoing_requests=2)
    env = simpy.Environment()
    ledger = Ledger()
    dep = RayServeDeployment(env, ledger, lambda case, **_: 10.0, cfg, DEFAULT_PRICES, startup_s=1.0)
    env.run(until=5)
    jobs = [Job("medium", env.now) for _ in range(3)]
    for j in jobs:
        ledger.arrive(j)
        dep.submit(j)
    rep = dep.replicas[0]
    env.run(until=5.01)                                    # the routing tasks' first tries, at once
    assert rep.ongoing == 2 and len(dep.queue) == 1        # two routed to the replica, one held by the router
    env.run(until=50)
    assert [j.finished for j in jobs] == pytest.approx([15.0, 25.0, 35.0])   # one at a time, in order


def test_a_fresh_router_pushes_only_once_it_has_the_deployment_config():
    """A at 1: the router learns the config 0.45 s later (long poll), pushes then (queued=1 at zero replicas)
    and the next tick, 1.5, scales 0 -> 1 (1.1 without the lag: the scripted test above); its record grid
    starts then too."""
    dep, _ = run_script([1.0], until=10.0, config_delay_s=0.45)
    assert [(e.from_replicas, e.to_replicas) for e in dep.events] == [(0, 1)]
    assert dep.events[0].t == pytest.approx(1.5, abs=1e-6)
    assert dep.policy.router.created_at == pytest.approx(1.45)


def test_the_routers_record_and_push_grids_lag_after_their_first_point():
    """Ray's MetricsPusher sleeps a full interval after each run, so its grid drifts late: with a lag, the
    first record and push stay at the router's start, the later ones move by the lag (mod the interval)."""
    metrics = RouterMetrics(10.0, 30.0, 1.0, 0.5, lag_s=0.3)
    queued, _ = metrics.report(12.0)
    assert [t for t, _ in queued] == pytest.approx([10.0, 10.8, 11.3, 11.8])
    assert [t for t, _ in RouterMetrics(10.0, 30.0, 1.0, 0.5).report(12.0)[0]] == pytest.approx(
        [10.0, 10.5, 11.0, 11.5, 12.0])

    def push_times(lag):
        env, ledger = simpy.Environment(), Ledger()
        dep = RayServeDeployment(env, ledger, lambda case, **_: 25.0, SCRIPT, DEFAULT_PRICES, startup_s=2.0,
                                 grid_lag_s=lag)
        times, push = [], dep.policy.push
        dep.policy.push = lambda: (times.append(env.now), push())[1]
        job = Job("medium", 0.0)
        ledger.arrive(job)
        dep.submit(job)
        env.run(until=35.0)
        return times
    assert push_times(0.0) == pytest.approx([0.0, 10.0, 20.0, 30.0])
    assert push_times(3.0) == pytest.approx([0.0, 13.0, 23.0, 33.0])


def test_a_replica_holds_its_request_while_the_result_returns():
    """Service 10 s, return 2 s, one slot: B waits for A's return too (its slot frees at 17, not 15; B's
    routing task, trying since 5, sends it at its next try, 5 + 0.775 + 23 x 0.5 = 17.275); while A's
    result returns the replica still counts it, as Ray's router does until the result is back."""
    cfg = RayServeConfig(min_replicas=1, max_replicas=1, target_ongoing_requests=1, max_ongoing_requests=1)
    env = simpy.Environment()
    ledger = Ledger()
    dep = RayServeDeployment(env, ledger, lambda case, **_: 10.0, cfg, DEFAULT_PRICES, startup_s=1.0,
                             return_s=lambda case: 2.0)
    env.run(until=5)
    jobs = [Job("medium", env.now) for _ in range(2)]
    for j in jobs:
        ledger.arrive(j)
        dep.submit(j)
    env.run(until=16)
    assert dep.replicas[0].ongoing == 1 and len(dep.queue) == 1 and dep.policy.sent[0] == 1
    env.run(until=40)
    assert [(j.started, j.service_s, j.finished) for j in jobs] == [
        (5.0, 10.0, 17.0), (pytest.approx(17.275), 10.0, pytest.approx(29.275))]


@pytest.mark.parametrize("total,current,target,counter,since,now,want", [
    (3.0, 0, 0, 0, None, 5.0, (1, 0, None)),      # cold start: max(ceil(upscaling_factor), target)
    (0.0, 0, 0, 0, None, 5.0, (0, 0, None)),      # nothing queued at zero: stay
    (3.0, 1, 1, 0, None, 5.0, (1, 1, 5.0)),       # wants 3 (clamped to 2 later): waits upscale_delay_s
    (3.0, 1, 1, 4, 5.0, 7.0, (2, 0, None)),       # 2 s later: goes, clamped to max_replicas
    (3.0, 1, 1, -3, 4.0, 7.0, (1, 1, 7.0)),       # was going down: the timestamp restarts
    (0.5, 2, 2, 0, None, 9.0, (2, -1, 9.0)),      # down 2 -> 1 waits downscale_delay_s ...
    (0.5, 2, 2, -5, 9.0, 19.0, (1, 0, None)),     # ... 10 s
    (0.5, 2, 2, 3, 4.0, 20.0, (2, -1, 20.0)),     # was going up: the timestamp restarts
    (0.0, 1, 1, -5, 9.0, 19.0, (1, -6, 9.0)),     # 1 -> 0 waits downscale_to_zero_delay_s (15 s) ...
    (0.0, 1, 1, -5, 9.0, 24.0, (0, 0, None)),     # ... here
    (1.0, 1, 1, 7, 3.0, 24.0, (1, 0, None)),      # wanted equals target: timers reset
])
def test_one_decision(total, current, target, counter, since, now, want):
    assert decide(total, current, target, counter, since, now, SCRIPT) == want


def test_scaling_factors_and_the_stuck_downscale():
    cfg = RayServeConfig(min_replicas=0, max_replicas=10, target_ongoing_requests=1, upscale_delay_s=0,
                         downscale_delay_s=0, upscaling_factor=0.5, downscaling_factor=0.1)
    assert decide(9.0, 1, 1, 0, None, 0.0, cfg)[0] == 5      # ceil(1 + 0.5 x 8)
    assert decide(2.0, 8, 8, 0, None, 0.0, cfg)[0] == 7      # ceil(8 - 0.1 x 6) = 8 would stick: 7


def test_total_is_the_time_weighted_mean_of_the_merged_series():
    # Ray's own docstring example (autoscaling_state.get_total_num_requests): 13.76 at now = 2.0
    series = [[(0.2, 5), (0.8, 7), (1.5, 6)], [(0.1, 3), (0.9, 4), (1.4, 8)], [(0.3, 2), (1.0, 3)]]
    assert merge_instantaneous_total(series) == [(0.1, 3), (0.2, 8), (0.3, 10), (0.8, 12), (0.9, 13), (1.0, 14),
                                                 (1.4, 18), (1.5, 17)]
    assert TotalRequests(series).at(2.0) == pytest.approx(23.4 / 1.7)
    assert TotalRequests([]).at(5.0) == 0.0
    assert TotalRequests([[(1.0, 2.0)]]).at(9.0) == 2.0


def test_total_matches_rays_own_kernel_on_random_series():
    merge = pytest.importorskip("ray.serve._private.autoscaling_metrics_merge")
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    for _ in range(200):
        series = []
        for _ in range(rng.randint(1, 4)):
            t, points = rng.uniform(0, 5), []
            for _ in range(rng.randint(0, 6)):
                t += rng.choice([0.004, 0.3, 1.0, 2.5])
                points.append((round(t, 3), float(rng.randint(0, 4))))
            series.append(points)
        now = 40.0
        ts = np.array([t for s in series for t, _ in s], dtype=float)
        val = np.array([v for s in series for _, v in s], dtype=float)
        offsets = np.cumsum([0] + [len(s) for s in series])
        theirs = merge.merge_and_aggregate_arrays(ts, val, offsets, now)
        assert TotalRequests(series).at(now) == pytest.approx(theirs, abs=1e-9), series


def test_ray_settings_from_a_report_config():
    cfg = RayServeConfig.from_dict({"min_replicas": 0, "max_replicas": 2, "target_ongoing_requests": 1,
                                    "upscale_delay_s": 2, "downscale_delay_s": 10,
                                    "downscale_to_zero_delay_s": 15, "look_back_period_s": 30,
                                    "max_ongoing_requests": 1})
    assert (cfg.max_replicas, cfg.downscale_to_zero_delay_s, cfg.metrics_interval_s) == (2, 15, 10.0)
    with pytest.raises(ValueError, match="unknown"):
        RayServeConfig.from_dict({"max_replica": 2})


def test_ray_kind_in_run_and_sweep(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["--monthly", "2000", "--days", "2", "--deployments", "ray,ray-always1", "--ray-upscale-delay", "5",
                 "--out", str(out), "--no-progress"]) == 0
    report = Report.load(out)
    assert [s.name for s in report.stages] == ["ray", "ray-always1"]
    ray, always = report.extra["results"]
    assert ray["kind"] == "ray" and ray["served"] == ray["arrivals"] - ray["in_flight"]
    assert always["replica_hours"] >= 2 * 24 * 15 - 1        # min 1 replica all the time (x15 to 30 days)
    assert ray["replica_hours"] < always["replica_hours"]    # scale to zero pays less
    # the whole bill: the replicas' node time and more (head node, idle nodes, egress)
    assert ray["monthly_cost"] == pytest.approx(ray["bill"]["total"])
    assert ray["monthly_cost"] > ray["cost_breakdown"]["usage"] * 15
    from simulator.sweep import sweep
    from simulator.workload import MonthlyWorkload
    rep = sweep([500], slo=600.0, prices=dict(DEFAULT_PRICES), workload=MonthlyWorkload(monthly=0, days=2),
                processes=1, only=["ray-zero", "local-1gpu"])
    assert {r["kind"] for r in rep.extra["rows"]} == {"ray", "local"}


def test_a_cold_start_is_the_first_job_of_a_new_replica_and_waiting_for_a_start_is_counted_apart():
    """Two requests at zero replicas, one replica: both wait for its start, only the first is its first
    job; a replica a replay starts warm serves no cold start."""
    env, ledger = simpy.Environment(), Ledger()
    cfg = RayServeConfig(min_replicas=0, max_replicas=1, upscale_delay_s=0.0, metrics_interval_s=0.5)
    dep = RayServeDeployment(env, ledger, lambda case, **_: 3.0, cfg, DEFAULT_PRICES, startup_s=5.0)
    for t in (0.0, 0.2):
        env.process(_arrive_at(env, dep, ledger, t))
    env.run(until=60)
    first, second = sorted(ledger.jobs, key=lambda j: j.submitted)
    assert (first.cold_start, second.cold_start) == (True, False)
    assert first.waited_for_start_s > 0 and second.waited_for_start_s > 0
    env, ledger = simpy.Environment(), Ledger()
    warm = RayServeDeployment(env, ledger, lambda case, **_: 3.0, cfg, DEFAULT_PRICES, startup_s=5.0,
                              initial_running=1, router_at_start=True)
    env.process(_arrive_at(env, warm, ledger, 1.0))
    env.run(until=30)
    (job,) = ledger.jobs
    assert not job.cold_start and job.waited_for_start_s is None


def _arrive_at(env, dep, ledger, t):
    yield env.timeout(t)
    job = Job("light", env.now)
    ledger.arrive(job)
    dep.submit(job)


def test_the_replays_controller_total_at_any_instant_is_the_one_its_decisions_read():
    # the scripted load of the hand computation above: from the push at 121 the total is queued 1 +
    # replica 1's 1, both since 115: 2 at 122; nothing before the first request's router
    dep, _ = run_script([1.0, 100.0, 100.0])
    decided = dep.policy.decisions
    assert len(decided) == 6
    # read just before each: a decision changes the replicas, and with them the inputs, at its own instant
    assert dep.policy.totals_at([t - 1e-6 for t, _, _ in decided]) == pytest.approx([x for _, _, x in decided], abs=1e-5)
    assert dep.policy.totals_at([0.5, 122.0]) == pytest.approx([0.0, 2.0])
    # kept only where a replay records its timeline: a month's run would hold a push every interval
    quiet, _ = run_script([1.0, 100.0, 100.0], record_timeline=False)
    assert quiet.policy.totals == [] and quiet.policy.decisions == decided


def test_the_handle_counts_a_request_a_little_after_its_replicas_slot_frees():
    # A alone on replica 0, its slot free at 28.1: the router's gauge for replica 0 drops then, or with
    # the handle's lag (its result still on the way back) 0.3 s later
    def gauge_drops(dep) -> list[float]:
        r = dep.policy.router
        return [t for t, now, before in zip(r.times[1:], r.states[1:], r.states, strict=False)
                if sum(before[1].values()) and not sum(now[1].values())]
    plain, _ = run_script([1.0], until=60.0)
    lagged, _ = run_script([1.0], until=60.0, count_after_slot_s=0.3)
    assert gauge_drops(plain) == pytest.approx([28.1]) and gauge_drops(lagged) == pytest.approx([28.4])
    # the routing is not delayed: the slot itself frees at 28.1 in both
    assert [j.finished for j in lagged.ledger.jobs if j.finished] == [j.finished for j in plain.ledger.jobs if j.finished]
