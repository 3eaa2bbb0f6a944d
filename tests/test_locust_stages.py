"""The stage plan behind the Locust shape (no locust import: locustfiles/stages.py is plain Python)."""

import os

import pytest

from locustfiles.stages import StagePlan, parse_stages, stage_name


def run_plan(plan, jobs_per_tick=0, dt=1.0, limit=10_000):
    """Drive `plan.step` like the shape's 1-second ticks; return the stage indices seen in order."""
    seen, index, elapsed, ended = [], 0, 0.0, 0
    for _ in range(limit):
        nxt = plan.step(index, elapsed, ended)
        if nxt is None:
            return seen
        if nxt != index:
            index, elapsed, ended = nxt, 0.0, 0
        if not seen or seen[-1] != index:
            seen.append(index)
        elapsed += dt
        ended += jobs_per_tick
    raise AssertionError("plan never stopped")


def test_default_stages_are_the_articles():
    plan = StagePlan()
    assert [s.users for s in plan.stages] == [1, 5, 10, 20]
    assert [s.name for s in plan.stages] == ["u=1", "u=5", "u=10", "u=20"]


def test_closed_loop_stages_are_held_for_their_duration_then_stop():
    plan = StagePlan(users="1,5,10,20", stage_seconds=3)
    assert plan.mode == "closed"
    assert plan.step(0, 2.9, 100) == 0          # jobs do not end a closed-loop stage
    assert plan.step(0, 3.0, 0) == 1
    assert plan.step(3, 3.0, 0) is None         # after the last stage: stop
    assert run_plan(plan) == [0, 1, 2, 3]


def test_burst_stage_ends_when_all_its_jobs_ended():
    plan = StagePlan(users=[1, 5], jobs_per_user=2, max_stage_seconds=None)
    assert plan.mode == "burst"
    assert [s.jobs_expected for s in plan.stages] == [2, 10]
    assert plan.step(0, 999.0, 1) == 0          # time does not end a burst stage
    assert plan.step(0, 0.5, 2) == 1
    assert plan.step(1, 0.5, 9) == 1
    assert plan.step(1, 0.5, 10) is None
    assert run_plan(plan, jobs_per_tick=1) == [0, 1]


def test_burst_stage_bound():
    plan = StagePlan(users=[3], jobs_per_user=1, max_stage_seconds=5)
    assert plan.step(0, 4.9, 0) == 0
    assert plan.step(0, 5.0, 0) is None


@pytest.mark.parametrize("spec", ["", "0", "1,-2", "a,b"])
def test_bad_stages_are_refused(spec):
    with pytest.raises(ValueError):
        parse_stages(spec)


def test_bad_jobs_per_user_is_refused():
    with pytest.raises(ValueError):
        StagePlan(users=[1], jobs_per_user=0)


def test_stage_name():
    assert stage_name(20) == "u=20"
    assert parse_stages(" 1, 5 ,10") == [1, 5, 10]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2, reason="needs 2 CPUs")
def test_report_records_the_load_generators_pinning():
    from locustfiles.report import _pinned_cpus

    before = os.sched_getaffinity(0)
    try:
        assert _pinned_cpus() is None or len(before) < os.cpu_count()
        os.sched_setaffinity(0, {min(before)})
        assert _pinned_cpus() == [min(before)]
    finally:
        os.sched_setaffinity(0, before)
