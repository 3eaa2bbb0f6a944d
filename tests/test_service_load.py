"""Service time under load (simulator/service_load.py): the covariates read from a run's timestamps, the
fitted factors, the profile's sampler and what the deployments pass it."""

from __future__ import annotations

import random

import pytest
import simpy

from loadlab.schema import COMPLETED, FAILED, JobRecord, LoadConfig, Report, RunConfig, Stage
from simulator.autoscaling.vertex import fixed_schedule
from simulator.deployments import LocalGPU, VertexConfig, VertexEndpoint
from simulator.ledger import Job, Ledger
from simulator.pricing import DEFAULT_PRICES
from simulator.profiles import ServiceTimeProfile, from_reports
from simulator.service_load import LoadCurve, LoadLevel, fit, job_loads, report_loads

ALONE_S = 4.0


def record(submitted: float, started: float, service_s: float, case: str = "light", cold: bool = False,
           status: str = COMPLETED) -> JobRecord:
    return JobRecord(case=case, status=status, submitted=submitted, started=started, service_s=service_s,
                     queue_s=started - submitted, finished=started + service_s + 0.1,
                     e2e_s=started + service_s + 0.1 - submitted, cold_start=cold)


def alone_jobs(n: int, t0: float = 0.0, service_s: float = ALONE_S) -> list[JobRecord]:
    """One job at a time with a gap between them: nothing else in the system."""
    return [record(t0 + i * (service_s + 1), t0 + i * (service_s + 1) + 0.05, service_s) for i in range(n)]


def queued_jobs(level: int, n: int, service_s: float, t0: float) -> list[JobRecord]:
    """n back-to-back jobs each starting with `level` requests in the system: each is submitted just
    before its service starts, and level - 1 requests stay queued behind the whole chain (failed later,
    so only their presence counts)."""
    jobs, t = [], t0
    for _ in range(n):
        jobs.append(record(t - 0.01, t, service_s))
        t += service_s
    jobs += [record(t0 - 0.01, t + 100 + k, 0.5, status=FAILED) for k in range(level - 1)]
    return jobs


def calibration(jobs_by_stage: dict[str, list[JobRecord]], role: str = "calibration") -> Report:
    stages = [Stage(name=name, concurrency=1 if name.endswith("[u=1]") else 3, jobs=jobs)
              for name, jobs in jobs_by_stage.items()]
    return Report(role=role, kind="measured", name="cal", target="local", stages=stages,
                  config=RunConfig(driver="test", load=LoadConfig(mode="closed")))


def test_covariates_count_requests_in_the_system_and_in_service_at_the_start_of_each_service():
    a = record(0.0, 0.0, 4.0)        # alone until b arrives at 1.0
    b = record(1.0, 4.0, 4.0)        # starts at 4 with c waiting: in_system 2
    c = record(2.0, 8.0, 4.0)        # starts at 8 alone in the system (a, b done)
    d = record(9.0, 9.0, 2.0)        # a second worker: starts while c is in service
    loads = {x.job.submitted: x for x in job_loads([a, b, c, d])}
    assert (loads[0.0].in_system, loads[0.0].busy, loads[0.0].alone) == (1, 1, False)
    assert (loads[1.0].in_system, loads[1.0].busy) == (2, 1)
    assert (loads[2.0].in_system, loads[2.0].busy) == (1, 1)
    assert (loads[9.0].in_system, loads[9.0].busy) == (2, 2)
    lone = job_loads(alone_jobs(3))
    assert all(x.alone and x.in_system == 1 for x in lone)


def test_fit_recovers_the_inflation_per_level_interpolates_and_holds_flat_beyond_the_last():
    # alone 4 s; 10 % slower per extra request at in_system 3 and 5 (factors 1.2 and 1.4)
    jobs = alone_jobs(6)
    jobs += queued_jobs(3, 6, ALONE_S * 1.2, t0=1000.0)
    jobs += queued_jobs(5, 6, ALONE_S * 1.4, t0=5000.0)
    model = fit(job_loads(jobs), "synthetic")
    assert model is not None and model.alone_s["light"] == pytest.approx(ALONE_S)
    levels = {round(p.level): p.factor for p in model.in_system.levels}
    assert levels[3] == pytest.approx(1.2, abs=0.02) and levels[5] == pytest.approx(1.4, abs=0.02)
    assert model.factor(1, 1) == 1.0                        # nothing contends: the time alone
    assert model.factor(4) == pytest.approx(1.3, abs=0.02)  # between two measured loads
    assert model.factor(40) == pytest.approx(levels[5])     # beyond the last: held
    # each level predicted without it: 5 from 3 (held flat) is 1.2 for 1.4
    loo = {round(e["level"]): e for e in model.loo_error}
    assert loo[5]["predicted"] == pytest.approx(levels[3]) and loo[5]["error"] < -0.1


def test_busy_replicas_on_one_host_get_their_own_factor():
    jobs = alone_jobs(5)
    # two services side by side, 1.25 x slower than alone, each starting with the other in service
    for k in range(4):
        t = 100.0 + 20 * k
        jobs += [record(t, t, ALONE_S * 1.25), record(t + 0.01, t + 0.01, ALONE_S * 1.25)]
    model = fit(job_loads(jobs))
    assert model is not None
    busy2 = [p for p in model.busy.levels if round(p.level) == 2]
    assert busy2 and busy2[0].factor == pytest.approx(1.25 / model.in_system.factor(2), rel=0.02)


def test_no_model_from_jobs_at_one_load_only_and_cold_starts_are_left_out():
    assert fit(job_loads(alone_jobs(6))) is None
    # fewer jobs at a load than a level needs: no level from them
    few = alone_jobs(6) + [record(500.0, 500.0, 5.0), record(500.5, 500.5, 5.0)]
    assert fit(job_loads(few)) is None
    jobs = alone_jobs(6) + [record(500.0, 500.0, 40.0, cold=True)]
    assert fit(job_loads(jobs)) is None


def test_a_profile_gets_a_load_model_only_from_a_calibration_report():
    jobs = {"light [u=1]": alone_jobs(6), "u=3": queued_jobs(3, 6, ALONE_S * 1.2, t0=1000.0)}
    prof = from_reports([calibration(jobs)])
    assert prof.load is not None and prof.load.factor(3) == pytest.approx(1.2, abs=0.02)
    assert ("cal", ["light [u=1]", "u=3"]) in prof.fitted_on      # the loaded stage is fitted on too
    assert prof.describe()["service_load"]["fit_error"]["levels"]
    # the times alone come from the alone stage only, whatever the stages asked for (no double inflation)
    assert from_reports([calibration(jobs)], stage="all").service_samples["light"] == [ALONE_S] * 6
    # the same jobs in a run being validated: never a load model fitted on it
    assert from_reports([calibration(jobs, role="load")]).load is None


def _profile_with_load(first: list[float] | None = None) -> ServiceTimeProfile:
    curve = LoadCurve((LoadLevel(level=3.0, factor=1.5, ci95=0.1, n=5),))
    busy = LoadCurve((LoadLevel(level=2.0, factor=2.0, ci95=0.1, n=5),))
    from simulator.service_load import LoadModel
    return ServiceTimeProfile(name="t", service_samples={"light": [ALONE_S]},
                              load=LoadModel(in_system=curve, busy=busy, alone_s={"light": ALONE_S},
                                             alone_n={"light": 1}),
                              first_samples={"light": first} if first else {})


def test_the_sampler_scales_by_load_and_draws_a_new_replica_s_first_job_from_its_own_samples():
    sample = _profile_with_load(first=[9.0]).sampler(random.Random(1))
    assert sample("light") == ALONE_S                                   # every existing call: alone
    assert sample("light", in_system=3) == pytest.approx(ALONE_S * 1.5)
    assert sample("light", in_system=2) == pytest.approx(ALONE_S * 1.25)
    assert sample("light", in_system=3, busy=2) == pytest.approx(ALONE_S * 3.0)
    assert sample("light", first=True) == 9.0
    assert sample("light", first=True, busy=2) == pytest.approx(18.0)  # its replica's neighbour still contends
    plain = ServiceTimeProfile(name="p", service_samples={"light": [ALONE_S]}).sampler(random.Random(1))
    assert plain("light", in_system=10, busy=3, first=True) == ALONE_S  # no calibration under load


def _recording_sampler(calls: list[dict]):
    def sample(case, *, in_system=1, busy=1, first=False, job=None):
        calls.append({"in_system": in_system, "busy": busy, "first": first, "job": job})
        return 10.0
    return sample


def test_the_local_server_passes_the_queue_and_its_busy_workers():
    env, ledger, calls = simpy.Environment(), Ledger(), []
    local = LocalGPU(env, ledger, _recording_sampler(calls), gpus=2)
    jobs = [Job("light", 0.0) for _ in range(4)]
    for job in jobs:
        ledger.arrive(job)
        local.submit(job)
    env.run(until=100)
    # t=0: worker 0 takes job 0 with 4 in the system, worker 1 job 1 with worker 0 busy; t=10: both
    # first jobs end, and the last two start with 2 in the system, the second with the first busy
    assert [(c["in_system"], c["busy"]) for c in calls] == [(4, 1), (4, 2), (2, 1), (2, 2)]
    assert [c["job"] for c in calls] == jobs and not any(c["first"] for c in calls)


def test_a_replica_pool_passes_its_requests_busy_replicas_and_a_new_replica_s_first_job():
    env, ledger, calls = simpy.Environment(), Ledger(), []
    ep = VertexEndpoint(env, ledger, _recording_sampler(calls), VertexConfig(schedule=fixed_schedule(1, 1)),
                        DEFAULT_PRICES, provision_s=1, load_s=1, rng=random.Random(1))
    first = Job("light", 0.0)          # arrives while the only replica starts
    ledger.arrive(first)
    ep.submit(first)
    env.run(until=5)
    later = [Job("light", env.now) for _ in range(2)]
    for job in later:
        ledger.arrive(job)
        ep.submit(job)
    env.run(until=100)
    assert [(c["in_system"], c["busy"], c["first"]) for c in calls] == [(1, 1, True), (2, 1, False), (1, 1, False)]


def test_report_covariates_span_stages_on_one_clock():
    # a job of the first stage still in service when the second stage's job starts
    r = calibration({"light [u=1]": [record(0.0, 0.0, 10.0)], "u=3": [record(5.0, 5.0, 4.0)]})
    busy = {x.job.submitted: x.busy for x in report_loads(r)}
    assert busy[5.0] == 2


def test_a_first_job_beside_busy_replicas_is_drawn_from_first_jobs_measured_beside_as_many():
    # a Ray calibration: replica a's first job at zero (9 s), then replica b's first job while a served
    # (14 s: contention hurts a first job more than the warm jobs' x2.0 says)
    from loadlab.schema import ReplicaInterval, ReplicaRun

    def on(replica: str, job: JobRecord) -> JobRecord:
        job.extra["replica_id"] = replica
        return job
    jobs = [on("a", record(0.0, 5.0, 9.0, cold=True)), on("a", record(20.0, 20.0, ALONE_S)),
            on("b", record(20.5, 22.0, 14.0, cold=True))]
    report = calibration({"light [u=1]": jobs})
    report.replicas = ReplicaRun(window=(0.0, 60.0), replica_seconds=90.0,
                                 intervals=[ReplicaInterval(replica="a", start=0.0, ready=5.0),
                                            ReplicaInterval(replica="b", start=20.5, ready=22.0)])
    measured = from_reports([report])
    assert measured.first_samples == {"light": [9.0]} and measured.first_beside_busy == {1: {"light": [14.0]}}
    prof = _profile_with_load(first=[9.0])
    prof.first_beside_busy = measured.first_beside_busy
    sample = prof.sampler(random.Random(1))
    assert sample("light", first=True) == 9.0                           # nothing else busy: the one at zero
    assert sample("light", first=True, busy=2) == 14.0                  # beside one busy: as measured there
    assert sample("light", first=True, busy=3) == pytest.approx(14.0)   # beside two: the busiest measured, x F 2 -> 3 (flat)
    # the same jobs in a run being validated: its first jobs are never an input
    report.role = "load"
    assert from_reports([report]).first_beside_busy == {}
