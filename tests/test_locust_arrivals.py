"""The open-loop arrival process behind the Locust shape (locustfiles/arrivals.py, no locust import):
interarrival laws, stages, trace replay, seeds and the split among load-generator processes."""

import math

import numpy as np
import pytest

from locustfiles.arrivals import OpenLoopPlan, cap_share, interarrival_cv, parse_rates, split


def times(plan, stage=None):
    return [a.t_s for a in plan.arrivals() if stage is None or a.stage == stage]


def test_poisson_interarrival_cv_is_one_and_the_rate_is_kept():
    plan = OpenLoopPlan(arrival="poisson", rates=[20], stage_seconds=100, cases=["light"], seed=11)
    t = times(plan)
    assert len(t) >= 1000
    assert 0.9 <= interarrival_cv(t) <= 1.1
    # the count of a Poisson process over 100 s at 20/s: 2000 +- 4 standard deviations
    assert abs(len(t) - 2000) <= 4 * math.sqrt(2000)
    assert all(0 <= x < 100 for x in t) and t == sorted(t)


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_cv_is_one_over_sqrt_burstiness_at_the_same_mean_rate(burstiness):
    plan = OpenLoopPlan(arrival="gamma", rates=[10], stage_seconds=600, cases=["light"], burstiness=burstiness, seed=3)
    t = times(plan)
    assert interarrival_cv(t) == pytest.approx(1 / math.sqrt(burstiness), rel=0.1)
    assert np.mean(np.diff(t)) == pytest.approx(1 / 10, rel=0.1)   # burstiness changes the spread, not the rate


def test_constant_arrivals_are_exactly_one_over_the_rate_apart():
    plan = OpenLoopPlan(arrival="constant", rates=[4, 0.5], stage_seconds=10, cases=["light"])
    assert times(plan, "r=4/s") == [k / 4 for k in range(40)]
    assert times(plan, "r=0.5/s") == [10 + 2 * k for k in range(5)]
    assert interarrival_cv(times(plan, "r=4/s")) == pytest.approx(0.0, abs=1e-9)


def test_one_stage_per_rate_each_held_stage_seconds_and_cases_round_robin():
    plan = OpenLoopPlan(arrival="poisson", rates=[0.5, 2, 0.5], stage_seconds=30, cases=["small", "medium"], seed=2)
    assert [(s.name, s.rate_per_s, s.start_s, s.duration_s) for s in plan.stages] == [
        ("r=0.5/s", 0.5, 0, 30), ("r=2/s", 2.0, 30, 30), ("r=0.5/s#2", 0.5, 60, 30)]
    for a in plan.arrivals():
        stage = next(s for s in plan.stages if s.name == a.stage)
        assert stage.start_s <= a.t_s < stage.end_s
        assert a.case == ["small", "medium"][a.index % 2]
    assert [a.index for a in plan.arrivals()] == list(range(len(plan.arrivals())))
    assert plan.end_s == 90 and plan.mode == "open"


def test_same_seed_same_sequence_other_seed_other_sequence():
    def build(seed):
        return OpenLoopPlan(arrival="gamma", rates=[1, 3], stage_seconds=60, cases=["light", "small"],
                            burstiness=0.5, seed=seed).arrivals()
    assert build(7) == build(7)
    assert times_of(build(7)) != times_of(build(8))


def times_of(arrivals):
    return [a.t_s for a in arrivals]


def test_trace_replay_gives_exactly_the_traces_arrivals_scaled_and_windowed():
    trace = [(0.0, "light"), (1.5, "small"), (3.9, "light"), (4.0, "medium"), (4.0, "light"), (11.0, "small")]
    plan = OpenLoopPlan(arrival="trace", trace=trace, time_scale=2.0, stage_seconds=2.0)
    assert [(a.t_s, a.case) for a in plan.arrivals()] == [(t / 2, c) for t, c in trace]  # ties keep the trace's order
    # windows of 2 s of the scaled trace (0-5.5 s): every window a stage, empty ones too
    assert [(s.name, s.rate_per_s) for s in plan.stages] == [("t=0-2s", 1.5), ("t=2-4s", 1.0), ("t=4-6s", 0.5)]
    assert [a.stage for a in plan.arrivals()] == ["t=0-2s"] * 3 + ["t=2-4s"] * 2 + ["t=4-6s"]
    assert plan.mode == "trace" and plan.end_s == 6.0


def test_split_among_processes_adds_up_to_the_single_process_sequence():
    arrivals = OpenLoopPlan(arrival="poisson", rates=[5], stage_seconds=20, cases=["light", "small"], seed=1).arrivals()
    for n in (1, 2, 3):
        shares = split(arrivals, n)
        assert len(shares) == n
        assert sorted((a for share in shares for a in share), key=lambda a: a.index) == arrivals
        for w, share in enumerate(shares):
            assert all(a.index % n == w for a in share)
            assert times_of(share) == sorted(times_of(share))


def test_max_in_flight_share_adds_up_to_the_cap():
    assert cap_share(None, 3, 0) is None and cap_share(0, 3, 0) is None
    assert [cap_share(10, 3, w) for w in range(3)] == [4, 3, 3]
    assert cap_share(5, 1, 0) == 5
    with pytest.raises(ValueError):
        cap_share(2, 3, 0)


@pytest.mark.parametrize("spec", ["", "0", "1,-2", "a", "inf"])
def test_bad_rates_are_refused(spec):
    with pytest.raises(ValueError):
        parse_rates(spec)


def test_bad_plans_are_refused():
    with pytest.raises(ValueError):
        OpenLoopPlan(arrival="closed", rates=[1], stage_seconds=10, cases=["light"])
    with pytest.raises(ValueError):
        OpenLoopPlan(arrival="gamma", rates=[1], stage_seconds=10, cases=["light"], burstiness=0)
    with pytest.raises(ValueError):
        OpenLoopPlan(arrival="trace", trace=[], stage_seconds=10)
    with pytest.raises(ValueError):
        OpenLoopPlan(arrival="trace", trace=[(1.0, "light")], stage_seconds=10, time_scale=0)
