"""`simulator validate`'s two layers and its intervals: the mechanics replay (each job's measured service
time and overhead; on Ray Serve each replica's measured start-up and the run's own decision delay) is
exact on a FIFO process by construction; the prediction rows carry the measured 95 % interval, the
simulated prediction interval and whether one holds the other; a stage too small for +-10 % is "too few
jobs"; discrete outcomes come as a distribution over the replications."""

from __future__ import annotations

import pytest

from loadlab.schema import Report
from simulator.cli import main
from tests.test_sim_validate_autoscaling import SETTINGS, calibration, ray_run
from tests.test_sim_validate_open import calibration_report, open_report
from tests.test_validate import fifo_report


def layer_rows(path, layer: str) -> dict:
    return {(e.stage, e.metric): e for e in Report.load(path).errors if e.layer == layer}


def test_mechanics_replay_of_a_fifo_run_is_exact_and_the_prediction_is_not(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["validate", "--measured", fifo_report(tmp_path / "b.json"), "--replications", "3",
                 "--out", str(out)]) == 0
    mech, pred = layer_rows(out, "mechanics"), layer_rows(out, "prediction")
    for stage in ("u=1", "u=5", "u=10", "u=20"):
        for metric in ("mean_s", "p95_s", "p99_s"):
            assert mech[(stage, metric)].error == pytest.approx(0.0, abs=1e-9), (stage, metric)
            assert mech[(stage, metric)].scored
    # drawn service times: the prediction differs (and its u=1 stage, fitted on, is not scored)
    assert any(abs(pred[(s, "mean_s")].error) > 1e-4 for s in ("u=5", "u=10", "u=20"))
    assert not pred[("u=1", "mean_s")].scored
    text = capsys.readouterr().out
    assert "mechanics (each job's measured service time" in text and "prediction (service times" in text
    assert Report.load(out).extra["max_abs_error_pct_by_layer"]["mechanics"] == pytest.approx(0.0, abs=1e-6)


def test_mechanics_replay_of_an_open_loop_run_is_exact(tmp_path):
    out = tmp_path / "v.json"
    assert main(["validate", "--measured", open_report(tmp_path / "o.json", jobs=150), "--service", "measured",
                 "--out", str(out)]) == 0
    report = Report.load(out)
    assert {e.layer for e in report.errors} == {"mechanics"}
    for e in report.errors:
        if e.metric in ("mean_s", "p95_s", "p99_s"):
            assert e.error == pytest.approx(0.0, abs=1e-9), e
    # the simulated jobs are the measured ones, one for one
    m = Report.load(tmp_path / "o.json").stage("rate=0.25/s")
    sim = report.stage("rate=0.25/s")
    assert [j.service_s for j in sim.jobs] == pytest.approx([j.service_s for j in m.jobs])


def test_prediction_rows_carry_both_intervals_and_whether_one_holds_the_other(tmp_path):
    out = tmp_path / "v.json"
    assert main(["validate", "--measured", open_report(tmp_path / "o.json"), "--calibration",
                 calibration_report(tmp_path / "c.json"), "--replications", "10", "--service", "calibrated",
                 "--out", str(out)]) == 0
    rows = layer_rows(out, "prediction")
    row = rows[("rate=0.25/s", "mean_s")]
    assert row.jobs == 400 and row.measured_ci[0] < row.measured < row.measured_ci[1]
    assert row.simulated_pi[0] < row.simulated < row.simulated_pi[1]
    assert row.inside is (row.simulated_pi[0] <= row.measured <= row.simulated_pi[1])
    assert row.inside          # the same FIFO process on both sides
    assert not row.too_few


def test_a_stage_too_small_for_ten_percent_is_too_few_jobs_and_not_scored(tmp_path, capsys):
    out = tmp_path / "v.json"
    # 12 jobs at rho 0.85 (x 1.5: latencies no FIFO server gives): the interval is far wider than +-10 %
    measured = open_report(tmp_path / "o.json", rates=(0.425,), jobs=12, scale=1.5)
    rc = main(["validate", "--measured", measured, "--calibration", calibration_report(tmp_path / "c.json"),
               "--service", "calibrated", "--max-error", "10", "--out", str(out)])
    row = layer_rows(out, "prediction")[("rate=0.425/s", "mean_s")]
    assert row.too_few and row.measured_ci is not None
    text = capsys.readouterr().out
    assert "too few jobs" in text
    assert rc == 1 and "no scored stage" in text      # nothing left to score: not a pass


def test_ray_mechanics_replay_uses_the_measured_start_ups_and_needs_no_calibrated_one(tmp_path):
    out = tmp_path / "v.json"
    assert main(["validate", "--measured", ray_run(tmp_path / "ray.json"), "--service", "measured",
                 "--calibration", calibration(tmp_path / "cal.json", startup_s=None), "--out", str(out)]) == 0
    rows = layer_rows(out, "mechanics")
    report = Report.load(out)
    assert report.extra["replay"]["measured_startups_s"] == pytest.approx([2.0, 2.0, 2.0])
    for metric in ("scale_ups", "scale_downs", "cold_starts"):
        assert rows[(None, metric)].simulated == rows[(None, metric)].measured, metric
        assert rows[(None, metric)].distribution == "3 in 8 of 8"        # one replay per grid phase
    phase0 = report.replicas                # the first phase (lag 0) is the script's
    assert phase0.replica_seconds == pytest.approx(204.1, abs=0.01)
    measured = Report.load(tmp_path / "ray.json").replicas
    assert [round(e.t, 3) for e in phase0.events] == [round(e.t - measured.window[0], 3) for e in measured.events]


def test_ray_measured_start_ups_drive_the_replay(tmp_path):
    """The second replica's recorded start-up is 12 s instead of 2 s: its scale-up decision is the same,
    the replay's replica-seconds follow the measured intervals."""
    path = ray_run(tmp_path / "ray.json")
    report = Report.load(path)
    report.replicas.intervals[1].start -= 10.0
    report.save(path)
    out = tmp_path / "v.json"
    main(["validate", "--measured", path, "--service", "measured", "--out", str(out)])
    sim = Report.load(out)
    assert sim.extra["replay"]["measured_startups_s"][1] == pytest.approx(12.0)
    (second,) = [i for i in sim.replicas.intervals if i.replica.endswith("replica1")]
    assert second.ready - second.start == pytest.approx(12.0)


def test_ray_mechanics_takes_the_fresh_routers_lag_from_the_runs_first_request(tmp_path):
    """The recorded 0 -> 1 decision came 3.1 s after the first request (not 0.1 s): the mechanics replay
    decides with it; the router then pushes on its own period (10 s here) from that first push, so the
    next period's decision follows that phase (104.1 s), not the recorded one left unshifted (111.1 s)."""
    path = ray_run(tmp_path / "ray.json")
    report = Report.load(path)
    report.replicas.events[0].t += 3.0
    iv = report.replicas.intervals[0]
    iv.start, iv.ready = iv.start + 3.0, iv.ready + 3.0
    job = report.stages[0].jobs[0]
    job.started, job.finished, job.queue_s, job.e2e_s = job.started + 3, job.finished + 3, job.queue_s + 3, job.e2e_s + 3
    report.save(path)
    out = tmp_path / "v.json"
    main(["validate", "--measured", path, "--service", "measured", "--out", str(out)])
    rows = layer_rows(out, "mechanics")
    assert rows[(None, "scale_up_1_t_s")].difference == pytest.approx(0.0, abs=0.1)
    ups = [e.t for e in Report.load(out).replicas.decisions("up")]     # the grid at lag 0
    assert ups[0] == pytest.approx(4.1, abs=0.1) and ups[1] == pytest.approx(ups[0] + 100.0, abs=0.11)


def test_a_jobs_overhead_starts_no_earlier_than_its_replica_was_ready():
    """Ray's ingress stamps queue_s from its own receipt: a request that reached it late looks started
    before its replica could serve; the overhead counts from the replica's ready time then."""
    from loadlab.schema import JobRecord
    from simulator.mechanics import measured_times
    job = JobRecord(case="light", status="completed", submitted=10.0, scheduled=10.0, started=30.0,
                    finished=45.0, queue_s=20.0, service_s=8.0, e2e_s=35.0)
    assert measured_times(job) == pytest.approx((8.0, 7.0))
    assert measured_times(job, ready_at=35.0) == pytest.approx((8.0, 2.0))
    assert measured_times(job.model_copy(update={"status": "failed"})) == (None, None)


def test_discrete_outcomes_are_a_distribution_over_replications(tmp_path):
    out = tmp_path / "v.json"
    main(["validate", "--measured", ray_run(tmp_path / "ray.json", {**SETTINGS}), "--calibration",
          calibration(tmp_path / "cal.json"), "--replications", "4", "--service", "calibrated", "--out", str(out)])
    rows = layer_rows(out, "prediction")
    ups = rows[(None, "scale_ups")]
    assert ups.distribution == "3 in 4 of 4" and ups.quantile == pytest.approx(0.5)
    first = rows[(None, "scale_up_1_t_s")]
    assert first.distribution.endswith(" s in 4 of 4") and first.quantile is not None
    # each replication's own grid phase moves the decisions a little: the bill is an interval holding the run's
    assert rows[(None, "replica_seconds")].simulated_pi is not None and rows[(None, "replica_seconds")].inside


def test_the_slot_frees_before_the_client_has_the_result_by_the_measured_lead():
    """Two jobs back to back on one replica: the second started 0.4 s before the first's result reached
    the client (the ingress still answering it): that lead is the part of the overhead after the slot."""
    from loadlab.schema import JobRecord
    from simulator.mechanics import after_slot_s

    def job(arrival, started, finished, rid="r"):
        return JobRecord(case="light", status="completed", submitted=arrival, scheduled=arrival, started=started,
                         finished=finished, service_s=finished - started - 2.0, extra={"replica_id": rid})
    jobs = [job(0.0, 1.0, 10.0), job(0.5, 9.6, 20.0), job(30.0, 31.0, 40.0), job(0.0, 1.0, 9.0, rid="q")]
    assert after_slot_s(jobs) == pytest.approx(0.4)     # the job at 30 s did not wait: no pair
    assert after_slot_s(jobs[2:]) == 0.0
    # a job sent by the router after the client had the result (lead -0.2) counts too: mean 0.1
    later = [job(0.0, 1.0, 10.0, rid="s"), job(0.5, 10.2, 20.0, rid="s")]
    assert after_slot_s(jobs + later) == pytest.approx(0.1)
    assert after_slot_s(later) == 0.0                   # never below 0


def test_the_part_after_the_slot_is_fitted_so_that_the_replays_hand_offs_match_the_runs():
    """The run's next job started 0.05 s after the client had the one before; a replay whose router waits
    0.25 s for such a request matches that with 0.2 s of the overhead after the slot (the plain mean
    lead, max(0, -0.05), says 0); a replay already slower at 0 stays at 0."""
    from loadlab.schema import JobRecord
    from simulator.mechanics import fitted_after_slot_s

    def job(arrival, started, finished):
        return JobRecord(case="light", status="completed", submitted=arrival, scheduled=arrival, started=started,
                         finished=finished, service_s=1.0, extra={"replica_id": "r"})
    jobs = [job(0.0, 0.0, 2.0), job(0.5, 2.05, 4.0)]
    assert fitted_after_slot_s(jobs, lambda after: 0.25 - after) == pytest.approx(0.2)
    assert fitted_after_slot_s(jobs, lambda after: -0.1 - after) == 0.0
    assert fitted_after_slot_s(jobs[:1], lambda after: 1.0) == 0.0      # no pair: nothing to fit


def test_a_ray_replica_holds_a_request_for_its_overhead_less_the_part_after_the_slot():
    import simpy

    from simulator.autoscaling.ray_serve import RayServeConfig
    from simulator.deployments.ray_serve import RayServeDeployment
    from simulator.ledger import Job, Ledger
    from simulator.pricing import DEFAULT_PRICES

    def deployment(after: float) -> RayServeDeployment:
        return RayServeDeployment(simpy.Environment(), Ledger(), lambda case, **_: 1.0, RayServeConfig(),
                                  DEFAULT_PRICES, startup_s=1.0, after_slot_s=after, return_s=lambda case: 2.0)
    measured = Job("light", 0.0)
    measured.measured_overhead_s = 2.0
    assert deployment(0.0).return_s("light", measured) == pytest.approx(2.0)
    assert measured.measured_overhead_s == 0.0            # all of it in the slot: the client waits no more
    drawn = Job("light", 0.0)                             # a prediction: the calibration's overhead, drawn
    assert deployment(0.5).return_s("light", drawn) == pytest.approx(1.5)
    assert drawn.measured_overhead_s == pytest.approx(0.5)
    assert deployment(0.5).return_s("light") == pytest.approx(2.0)     # no job to carry the rest: all in the slot


def test_ray_mechanics_replay_puts_the_lead_after_the_slot(tmp_path):
    """Of a job's measured 2 s overhead, the measured 0.5 s lead comes after its slot is free: the replica
    holds it 1.5 s, the client waits the other 0.5 s; the scripted run's replay records the lead."""
    import simpy

    from simulator.autoscaling.ray_serve import RayServeConfig
    from simulator.deployments.ray_serve import RayServeDeployment
    from simulator.ledger import Job, Ledger
    from simulator.pricing import DEFAULT_PRICES
    dep = RayServeDeployment(simpy.Environment(), Ledger(), lambda case, **_: 1.0, RayServeConfig(), DEFAULT_PRICES,
                             startup_s=1.0, after_slot_s=0.5)
    job = Job("light", 0.0)
    job.measured_overhead_s = 2.0
    assert dep.return_s("light", job) == pytest.approx(1.5) and job.measured_overhead_s == pytest.approx(0.5)
    path = ray_run(tmp_path / "ray.json")
    report = Report.load(path)
    b, c = report.stages[1].jobs
    c.extra["replica_id"] = b.extra["replica_id"]          # C waited for B on the same replica
    shift = (b.finished - 0.5) - c.started
    c.started, c.finished, c.queue_s, c.e2e_s = c.started + shift, c.finished + shift, c.queue_s + shift, c.e2e_s + shift
    report.save(path)
    out = tmp_path / "v.json"
    main(["validate", "--measured", path, "--service", "measured", "--out", str(out)])
    assert Report.load(out).extra["replay"]["after_slot_s"] == pytest.approx(0.5)


def test_a_prediction_from_a_calibration_of_one_job_is_too_few_jobs(tmp_path):
    out = tmp_path / "v.json"
    one = calibration_report(tmp_path / "c1.json", runs=1)
    assert main(["validate", "--measured", open_report(tmp_path / "o.json"), "--calibration", one,
                 "--service", "calibrated", "--out", str(out)]) == 0
    report = Report.load(out)
    assert report.extra["calibration_too_few"] == ["medium"]
    assert all(e.too_few for e in report.errors if e.stage is not None)
    enough = calibration_report(tmp_path / "c60.json")
    main(["validate", "--measured", str(tmp_path / "o.json"), "--calibration", enough, "--service", "calibrated",
          "--out", str(out)])
    assert Report.load(out).extra["calibration_too_few"] == []


def test_the_workers_hold_after_each_job_is_replayed_in_a_mechanics_run():
    """A FIFO worker that spends 0.3 s after each model run before the next (the server's own work): the
    next job, already waiting, starts 0.3 s after the service ended; the hold becomes part of the worker's
    time and leaves the client's overhead after it unchanged in total."""
    from loadlab.schema import JobRecord
    from simulator.mechanics import held_times, worker_holds

    def job(arrival, started, service=2.0, overhead=0.5):
        return JobRecord(case="light", status="completed", submitted=arrival, started=started,
                         finished=started + service + overhead, service_s=service, queue_s=started - arrival,
                         e2e_s=started + service + overhead - arrival)
    jobs = [job(0.0, 0.0), job(0.0, 2.3), job(0.0, 4.6), job(50.0, 50.0)]
    holds = worker_holds(jobs)
    assert [holds[id(j)] for j in jobs] == pytest.approx([0.3, 0.3, 0.3, 0.3])   # the last: the typical one
    assert held_times(jobs[0], holds) == pytest.approx((2.3, 0.2))
    assert worker_holds([job(0.0, 0.0), job(10.0, 10.0)]) == {}


def test_a_hold_is_calibrated_only_where_the_next_job_waited_through_the_whole_service():
    """Three jobs back to back with a 0.1 s hold, then a fourth sent 0.3 s before the third's end that
    reached the server late (its gap 0.9 s): the calibration's hold is 0.1 s, not pulled up by the late
    one; a mechanics replay still replays each measured gap, and gives a job without one the 0.1 s."""
    from loadlab.schema import JobRecord, LoadConfig, Report, RunConfig, Stage
    from simulator.mechanics import worker_holds
    from simulator.profiles import calibration_holds

    def job(arrival, started, service=2.0):
        return JobRecord(case="light", status="completed", submitted=arrival, started=started,
                         finished=started + service + 0.2, service_s=service, queue_s=started - arrival,
                         e2e_s=started + service + 0.2 - arrival)
    jobs = [job(0.0, 0.0), job(0.0, 2.1), job(0.0, 4.2), job(5.9, 7.1), job(30.0, 30.0)]
    report = Report(role="calibration", kind="measured", name="cal", target="local", stages=[Stage(name="u=3", jobs=jobs)],
                    config=RunConfig(driver="test", load=LoadConfig(mode="closed")))
    assert calibration_holds([report])["light"] == pytest.approx([0.1, 0.1])
    holds = worker_holds(jobs)
    assert [holds[id(j)] for j in jobs] == pytest.approx([0.1, 0.1, 0.9, 0.1, 0.1])


def test_a_burst_with_the_workers_hold_replays_exactly(tmp_path):
    from loadlab.cases import ARTICLE_CASES
    from loadlab.schema import JobRecord, LoadConfig, RunConfig, ServerConfig, Stage
    stage = Stage(name="u=3", concurrency=3, jobs_per_user=1)
    for k in range(3):
        start = k * 2.3
        stage.jobs.append(JobRecord(case="medium", status="completed", submitted=0.0, started=start,
                                    finished=start + 2.5, service_s=2.0, queue_s=start, e2e_s=start + 2.5))
    Report(role="load", kind="measured", name="held", target="local", cases=[ARTICLE_CASES["medium"]],
           stages=[stage], config=RunConfig(driver="test", server=ServerConfig(workers=1, max_batch=1),
                                            load=LoadConfig(mode="burst"))).save(tmp_path / "h.json")
    out = tmp_path / "v.json"
    main(["validate", "--measured", str(tmp_path / "h.json"), "--service", "measured", "--out", str(out)])
    rows = layer_rows(out, "mechanics")
    assert rows[("u=3", "mean_s")].error == pytest.approx(0.0, abs=1e-9)
    assert rows[("u=3", "p95_s")].error == pytest.approx(0.0, abs=1e-9)


def test_latencies_no_fifo_server_gives_fall_outside_the_prediction_interval(tmp_path):
    out = tmp_path / "v.json"
    main(["validate", "--measured", open_report(tmp_path / "o.json", scale=1.5), "--calibration",
          calibration_report(tmp_path / "c.json"), "--replications", "10", "--service", "calibrated",
          "--out", str(out)])
    row = layer_rows(out, "prediction")[("rate=0.25/s", "mean_s")]
    assert row.inside is False and not row.too_few and row.measured > row.simulated_pi[1]


def test_jobs_that_arrived_together_keep_the_order_the_server_began_them(tmp_path):
    """One warm replica, two requests at 0.5 s: the server began the second-listed (25 s) first, then the
    other (10 s, sent at its routing task's next try after the slot freed at 25.7 s: 25.775 s). The
    mechanics replay gives each the service it had in that place."""
    from loadlab.schema import JobRecord, ReplicaInterval, ReplicaRun, RunConfig, ServerConfig, Stage
    from tests.test_sim_validate_autoscaling import T0

    def job(started, service):
        return JobRecord(case="medium", status="completed", scheduled=T0 + 0.5, submitted=T0 + 0.5,
                         started=T0 + started, finished=T0 + started + service + 0.2, queue_s=started - 0.5,
                         service_s=service, e2e_s=started + service + 0.2 - 0.5, extra={"replica_id": "w0"})
    settings = {**SETTINGS, "min_replicas": 1, "max_replicas": 1}
    stage = Stage(name="all", started_at=T0, duration_s=120.0, jobs=[job(25.775, 10.0), job(0.5, 25.0)])
    replicas = ReplicaRun(window=(T0, T0 + 120.0), replica_seconds=120.0,
                          intervals=[ReplicaInterval(replica="w0", start=T0 - 50, ready=T0 - 40)])
    Report(role="load", kind="measured", name="together", target="rayserve", stages=[stage], replicas=replicas,
           config=RunConfig(driver="test", server=ServerConfig(autoscaling=settings))).save(tmp_path / "t.json")
    out = tmp_path / "v.json"
    main(["validate", "--measured", str(tmp_path / "t.json"), "--service", "measured", "--out", str(out)])
    assert layer_rows(out, "mechanics")[("all", "mean_s")].error == pytest.approx(0.0, abs=1e-6)


def test_a_throughput_of_fewer_than_ten_jobs_is_shown_not_scored_in_either_layer():
    """An 8 s stage where 4 jobs finished inside: a fifth finishing a hair later or earlier moves the
    throughput by 25 %, so that row is "too few jobs" in the mechanics layer too (and not in --max-error);
    with 12 jobs inside it is scored."""
    from loadlab.schema import JobRecord, Stage
    from simulator.scoring import layer_max_abs_error_pct, stage_errors

    def stage(finishes):
        jobs = [JobRecord(case="light", status="completed", submitted=0.0, started=0.0, finished=f, queue_s=0.0,
                          service_s=f, e2e_s=f) for f in finishes]
        return Stage(name="s", started_at=0.0, duration_s=8.0, jobs=jobs)

    small = stage([1.0, 3.0, 5.0, 7.9, 8.1])
    rows = {r.metric: r for r in stage_errors(small, [stage([1.0, 3.0, 5.0, 7.9, 7.95])], scored=True, layer="mechanics")}
    assert rows["throughput_per_s"].error == pytest.approx(0.25) and rows["throughput_per_s"].too_few
    assert not rows["mean_s"].too_few
    assert layer_max_abs_error_pct(list(rows.values()), ("throughput_per_s",), "mechanics") is None
    big = stage([0.5 * k for k in range(1, 14)] + [8.1])
    rows = {r.metric: r for r in stage_errors(big, [big], scored=True, layer="mechanics")}
    assert not rows["throughput_per_s"].too_few
