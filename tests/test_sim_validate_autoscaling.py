"""`simulator validate` on autoscaling runs: synthetic measured Ray Serve reports (written out by hand,
epoch times) replayed through the ray-serve policy with their own autoscaler settings and a separate
calibration run for the service time and the replica start-up."""

from __future__ import annotations

import pytest

from loadlab.cases import ARTICLE_CASES
from loadlab.schema import (
    JobRecord,
    LoadConfig,
    ReplicaInterval,
    ReplicaRun,
    ReplicaSample,
    Report,
    RunConfig,
    ScaleEvent,
    ServerConfig,
    Stage,
)
from simulator.cli import main

T0 = 1_700_000_000.0
OVERHEAD_S = 0.2
SETTINGS = {"min_replicas": 0, "max_replicas": 2, "target_ongoing_requests": 1, "upscale_delay_s": 2,
            "downscale_delay_s": 10, "downscale_to_zero_delay_s": 15, "look_back_period_s": 30,
            "max_ongoing_requests": 1}


def job(arrival: float, started: float, replica: str, service: float = 25.0) -> JobRecord:
    finished = started + service + OVERHEAD_S
    return JobRecord(case="medium", status="completed", scheduled=T0 + arrival, submitted=T0 + arrival + 0.001,
                     started=T0 + started, finished=T0 + finished, queue_s=started - arrival, service_s=service,
                     e2e_s=finished - arrival, served_by="rayserve", cold_start=True,
                     extra={"replica_id": replica})


def ray_run(path, settings=SETTINGS) -> str:
    """The scripted load of tests/test_sim_ray_policy.py as a real run would record it: A at 1 s, B and C
    at 100 s; three replicas, six scale decisions, every request met a replica start (C's at 125.1 s, and
    Ray's router sent it at its routing task's next try, 125.375 s)."""
    stages = [Stage(name="0-60 s", started_at=T0, duration_s=60.0, jobs=[job(1.0, 3.1, "r0")]),
              Stage(name="60-300 s", started_at=T0 + 60, duration_s=240.0,
                    jobs=[job(100.0, 113.1, "r1"), job(100.0, 125.375, "r2")])]
    intervals = [ReplicaInterval(replica=r, start=T0 + a, ready=T0 + b, end=T0 + c)
                 for r, a, b, c in (("r0", 1.1, 3.1, 78.1), ("r1", 111.1, 113.1, 188.2), ("r2", 123.1, 125.1, 173.1))]
    events = [ScaleEvent(t=T0 + t, from_replicas=f, to_replicas=to)
              for t, f, to in ((1.1, 0, 1), (76.1, 1, 0), (111.1, 0, 1), (123.1, 1, 2), (171.1, 2, 1), (186.2, 1, 0))]
    replicas = ReplicaRun(window=(T0, T0 + 300.0), intervals=intervals, events=events,
                          replica_seconds=77.0 + 77.1 + 50.0)
    Report(role="load", kind="measured", name="ray-scripted", target="rayserve", cases=[ARTICLE_CASES["medium"]],
           stages=stages, replicas=replicas,
           config=RunConfig(driver="test", server=ServerConfig(autoscaling=dict(settings)),
                            load=LoadConfig(mode="trace", arrival="trace"))).save(path)
    return str(path)


def calibration(path, startup_s: float | list[float] | None = 2.0, zero_to_decision_s: list[float] | None = None) -> str:
    """A separate single-request run on the Ray app: 25 s per job, 0.2 s client overhead, one replica
    start measured (start -> RUNNING in `startup_s`; a list: one replica each) and, if given, request at
    zero -> scale-up decision."""
    stage = Stage(name="medium [u=1]", concurrency=1, jobs_per_user=10)
    for i in range(10):
        t = T0 - 5000 + 30 * i
        stage.jobs.append(JobRecord(case="medium", status="completed", submitted=t, started=t, finished=t + 25.2,
                                    queue_s=0.0, service_s=25.0, e2e_s=25.2))
    replicas = None
    if startup_s is not None:
        startups = startup_s if isinstance(startup_s, list) else [startup_s]
        replicas = ReplicaRun(window=(T0 - 5010, T0 - 4600), replica_seconds=400.0,
                              intervals=[ReplicaInterval(replica=f"c{k}", start=T0 - 5010, ready=T0 - 5010 + x)
                                         for k, x in enumerate(startups)])
    Report(role="single", kind="measured", name="single-ray", target="rayserve", cases=[ARTICLE_CASES["medium"]],
           stages=[stage], replicas=replicas, config=RunConfig(driver="test", load=LoadConfig(mode="single")),
           coldstart={"zero_to_decision_s": zero_to_decision_s} if zero_to_decision_s else None).save(path)
    return str(path)


def rows(path, layer: str = "prediction") -> dict[tuple[str | None, str], object]:
    return {(e.stage, e.metric): e for e in Report.load(path).errors if e.layer == layer}


def test_a_run_that_follows_ray_serve_validates_exactly(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["validate", "--measured", ray_run(tmp_path / "ray.json"), "--calibration",
                 calibration(tmp_path / "cal.json"), "--replications", "2", "--max-error", "1",
                 "--out", str(out)]) == 0
    errors = rows(out)
    for metric in ("scale_ups", "scale_downs", "cold_starts"):
        row = errors[(None, metric)]
        assert row.simulated == row.measured and row.distribution == f"{row.measured:.0f} in 2 of 2", row
    assert errors[(None, "first_request_at_zero_e2e_s")].measured == pytest.approx((27.3 + 38.3) / 2)
    assert errors[(None, "scale_ups")].measured == 3 and errors[(None, "cold_starts")].measured == 3
    # each replication's router grid has its own phase (10 s pushes): the bill and the decisions fall
    # within it; the mechanics layer's first phase (a lag of 0, the script's) reproduces the run exactly
    assert errors[(None, "replica_seconds")].inside and abs(errors[(None, "replica_seconds")].error) < 0.05
    decisions = [e for (stage, metric), e in errors.items() if stage is None and metric.startswith("scale_")
                 and metric.endswith("_t_s")]
    assert len(decisions) == 6 and all(abs(e.difference) < 10.0 for e in decisions)
    assert errors[(None, "scale_up_2_t_s")].measured == pytest.approx(111.1, abs=1e-6)
    sim = Report.load(out)
    assert sim.extra["mechanics_replay"]["grid_lags_s"][0] == 0.0
    phase0 = ReplicaRun.model_validate(sim.extra["mechanics_replicas"])
    assert phase0.replica_seconds == pytest.approx(204.1, abs=1e-6)
    measured = Report.load(tmp_path / "ray.json").replicas
    assert [round(e.t, 6) for e in phase0.events] == [round(e.t - T0, 6) for e in measured.events]
    for stage in ("0-60 s", "60-300 s"):
        assert abs(errors[(stage, "mean_s")].error) < 0.1 and errors[(stage, "mean_s")].scored
    assert sim.role == "validation" and sim.target == "rayserve"
    assert sim.replicas.window == (0.0, 300.0) and len(sim.replicas.intervals) == 3
    assert sim.replicas.timeline and sim.replicas.timeline[-1].running == 0
    assert [len(s.jobs) for s in sim.stages] == [1, 2]
    text = capsys.readouterr().out
    assert "whole run" in text and "scale_down_3_t_s" in text


def test_the_replay_uses_the_runs_own_autoscaler_settings(tmp_path):
    """The same recorded run, claiming upscale_delay_s = 12: the replayed 1 -> 2 comes 10 s later than the
    recorded one."""
    out = tmp_path / "v.json"
    main(["validate", "--measured", ray_run(tmp_path / "ray.json", {**SETTINGS, "upscale_delay_s": 12}),
          "--service", "measured", "--out", str(out)])
    phase0 = Report.load(out).replicas            # the mechanics replay at the script's grid phase
    ups = [e.t for e in phase0.decisions("up")]
    assert ups[2] - 123.1 == pytest.approx(10.0, abs=1e-6) and ups[0] == pytest.approx(1.1, abs=1e-6)


def test_a_start_up_is_needed_from_the_calibration(tmp_path, capsys):
    assert main(["validate", "--measured", ray_run(tmp_path / "ray.json"), "--calibration",
                 calibration(tmp_path / "cal.json", startup_s=None), "--out", str(tmp_path / "v.json")]) == 2
    assert "replica start-up" in capsys.readouterr().err


def test_a_run_that_starts_warm_starts_warm_in_the_replay(tmp_path):
    settings = {**SETTINGS, "min_replicas": 1, "max_replicas": 1}
    stage = Stage(name="all", started_at=T0, duration_s=120.0, jobs=[job(0.5, 0.5, "w0")])
    stage.jobs[0].cold_start = False
    replicas = ReplicaRun(window=(T0, T0 + 120.0), replica_seconds=120.0,
                          intervals=[ReplicaInterval(replica="w0", start=T0 - 50, ready=T0 - 40)])
    Report(role="load", kind="measured", name="warm", target="rayserve", stages=[stage], replicas=replicas,
           config=RunConfig(driver="test", server=ServerConfig(autoscaling=settings))).save(tmp_path / "warm.json")
    out = tmp_path / "v.json"
    assert main(["validate", "--measured", str(tmp_path / "warm.json"), "--calibration",
                 calibration(tmp_path / "cal.json"), "--replications", "1", "--out", str(out)]) == 0
    errors = rows(out)
    assert errors[(None, "replica_seconds")].simulated == pytest.approx(120.0)
    assert errors[(None, "cold_starts")].simulated == 0 and errors[(None, "scale_ups")].simulated == 0
    assert errors[("all", "mean_s")].simulated == pytest.approx(25.2)   # served at once: no start-up wait


def test_a_predicted_replica_takes_one_measured_start_up_not_their_mean(tmp_path):
    """Calibration start-ups of 2 and 12 s: each replica of a prediction takes one of them, so the first
    requests at zero (one start-up each) spread over ~10 s across replications and their interval holds
    both; with the mean (7 s) for every replica they would agree to within the router's grid."""
    out = tmp_path / "v.json"
    main(["validate", "--measured", ray_run(tmp_path / "ray.json"), "--calibration",
          calibration(tmp_path / "cal.json", startup_s=[2.0, 12.0]), "--replications", "12", "--out", str(out)])
    sim = Report.load(out)
    assert sim.extra["replay"]["startup_s"] == pytest.approx(7.0)
    assert "(measured: 2 at 0 busy)" in sim.extra["replay"]["startup_from"]
    row = rows(out)[(None, "first_request_at_zero_e2e_s")]
    low, high = row.simulated_pi
    assert high - low > 8.0, row
    assert low < 25.0 + 2.0 + 2.0 and high > 25.0 + 12.0 + 1.0


def test_first_request_of_each_period_at_zero_replicas():
    run = ReplicaRun(window=(0.0, 100.0), intervals=[ReplicaInterval(replica="a", start=4, ready=5, end=20),
                                                     ReplicaInterval(replica="b", start=40, ready=45, end=60)])
    arrivals = [1.0, 2.0, 10.0, 30.0, 31.0, 50.0, 70.0]
    jobs = [JobRecord(case="medium", status="completed", submitted=t, e2e_s=1.0) for t in arrivals]
    assert [run.running_at(t) for t in arrivals] == [0, 0, 1, 0, 0, 1, 0]
    assert [j.submitted for j in run.first_requests_at_zero(jobs)] == [1.0, 30.0, 70.0]
    assert run.figures(jobs).first_request_at_zero_e2e_s == [1.0, 1.0, 1.0]


def test_the_routers_lag_at_zero_comes_from_the_calibration(tmp_path):
    """Calibration: its first request at zero (the one that created the router) -> decision 0.6 s; a later
    one, whose router existed and pushed at once, 0.1 s, which is not the router's lag. Less half a control
    period (the tick wait it includes): the router pushes 0.55 s after A (t=1), the 0 -> 1 decision comes
    at 1.6, not 1.1 (nor at 1.35, from the mean of both)."""
    out = tmp_path / "v.json"
    main(["validate", "--measured", ray_run(tmp_path / "ray.json"), "--calibration",
          calibration(tmp_path / "cal.json", zero_to_decision_s=[0.6, 0.1]), "--replications", "1",
          "--out", str(out)])
    assert Report.load(out).extra["replay"]["config_delay_s"] == pytest.approx(0.55)
    errors = rows(out)
    assert errors[(None, "scale_up_1_t_s")].simulated == pytest.approx(1.6, abs=1e-6)
    assert errors[(None, "scale_up_1_t_s")].difference == pytest.approx(0.5, abs=1e-6)


def test_the_calibrated_overhead_holds_the_replica(tmp_path):
    """One warm replica, one slot, two requests at once: the second waits for the first's service (25 s)
    and its 0.2 s overhead (the result returning through Ray holds the slot) until its routing task's next
    try (0.5 + 0.775 + 49 x 0.5 = 25.775 s), then takes 25.2 s itself."""
    settings = {**SETTINGS, "min_replicas": 1, "max_replicas": 1}
    stage = Stage(name="all", started_at=T0, duration_s=120.0, jobs=[job(0.5, 0.5, "w0"), job(0.5, 25.775, "w0")])
    replicas = ReplicaRun(window=(T0, T0 + 120.0), replica_seconds=120.0,
                          intervals=[ReplicaInterval(replica="w0", start=T0 - 50, ready=T0 - 40)])
    Report(role="load", kind="measured", name="warm2", target="rayserve", stages=[stage], replicas=replicas,
           config=RunConfig(driver="test", server=ServerConfig(autoscaling=settings))).save(tmp_path / "warm2.json")
    out = tmp_path / "v.json"
    main(["validate", "--measured", str(tmp_path / "warm2.json"), "--calibration", calibration(tmp_path / "cal.json"),
          "--replications", "1", "--out", str(out)])
    jobs = sorted(Report.load(out).stages[0].jobs, key=lambda j: j.queue_s)
    assert [j.queue_s for j in jobs] == pytest.approx([0.0, 25.275])
    assert [j.e2e_s for j in jobs] == pytest.approx([25.2, 50.475])
    assert abs(rows(out)[("all", "mean_s")].error) < 1e-6


def test_a_replica_started_beside_a_busy_one_takes_a_start_up_measured_beside_a_busy_one(tmp_path):
    """Calibration: c0 started from zero in 2 s; c1 was asked for while c0 served a job and took 12 s.
    In the scripted run r2 is asked for at 123.1 s while r1 serves B: its predicted start-up is 12 s;
    the replicas asked for at zero take 2 s."""
    stage = Stage(name="medium [u=1]", concurrency=1, jobs_per_user=2)
    for t in (T0 - 5000, T0 - 4960):
        stage.jobs.append(JobRecord(case="medium", status="completed", submitted=t, started=t, finished=t + 25.2,
                                    queue_s=0.0, service_s=25.0, e2e_s=25.2, extra={"replica_id": "c0"}))
    replicas = ReplicaRun(window=(T0 - 5010, T0 - 4600), replica_seconds=400.0,
                          intervals=[ReplicaInterval(replica="c0", start=T0 - 5010, ready=T0 - 5008),
                                     ReplicaInterval(replica="c1", start=T0 - 4990, ready=T0 - 4978)])
    Report(role="single", kind="measured", name="cal-busy", target="rayserve", cases=[ARTICLE_CASES["medium"]],
           stages=[stage], replicas=replicas, config=RunConfig(driver="test", load=LoadConfig(mode="single"))
           ).save(tmp_path / "cal.json")
    out = tmp_path / "v.json"
    main(["validate", "--measured", ray_run(tmp_path / "ray.json"), "--calibration", str(tmp_path / "cal.json"),
          "--replications", "3", "--service", "calibrated", "--out", str(out)])
    sim = Report.load(out)
    assert "1 at 0 busy, 1 at 1 busy" in sim.extra["replay"]["startup_from"]
    startups = sorted((i.start, round(i.ready - i.start, 6)) for i in sim.replicas.intervals)
    assert [s for _, s in startups] == [2.0, 2.0, 12.0], startups


def test_a_calibrations_two_recordings_are_one_run_over_both_windows():
    """The cycles from zero, then (after a rest at zero) the loaded loops: one window, every replica, the
    bill of both; a replica up in both recordings (a minimum above zero) is one interval, billed in the gap."""
    cycles = ReplicaRun(window=(0.0, 100.0), replica_seconds=40.0, events=[ScaleEvent(t=1, from_replicas=0, to_replicas=1)],
                        intervals=[ReplicaInterval(replica="a", start=1, ready=7, end=41)])
    loaded = ReplicaRun(window=(130.0, 200.0), replica_seconds=90.0,
                        intervals=[ReplicaInterval(replica="b", start=131, ready=137, end=190),
                                   ReplicaInterval(replica="c", start=150, ready=158, end=187)])
    run = cycles.then(loaded)
    assert run.window == (0.0, 200.0) and run.replica_seconds == 130.0
    assert [i.replica for i in run.intervals] == ["a", "b", "c"] and run.scale_count("up") == 1
    warm = ReplicaRun(window=(0.0, 100.0), replica_seconds=100.0, intervals=[ReplicaInterval(replica="w", start=-5, ready=0)])
    later = ReplicaRun(window=(130.0, 200.0), replica_seconds=70.0,
                       intervals=[ReplicaInterval(replica="w", start=-5, ready=0, end=210)])
    both = warm.then(later)
    assert both.replica_seconds == 200.0 and len(both.intervals) == 1 and both.intervals[0].end == 210
    assert warm.intervals[0].end is None


def test_a_mechanics_replay_sends_each_job_to_the_replica_that_served_it(tmp_path):
    """The scripted run's jobs carry their replica by start order (r0 first, r2 third): the router of a
    mechanics replay takes that one where it is free (tests/test_sim_ray_router.py), not Ray's coin."""
    from simulator.validate_autoscaling import mechanics_arrivals, replay_index

    run = Report.load(ray_run(tmp_path / "ray.json"))
    arrivals = mechanics_arrivals(run.replicas, [j for _, j in replay_index(run)])
    assert [a[-1] for a in arrivals] == [0, 1, 2]
    assert arrivals[0][:4] == pytest.approx((1.0, "medium", 25.0, OVERHEAD_S))
    run.replicas.intervals.reverse()                     # the order is by start, not as recorded
    assert [a[-1] for a in mechanics_arrivals(run.replicas, [j for _, j in replay_index(run)])] == [0, 1, 2]


def test_a_validation_sets_the_replays_controller_total_beside_the_one_ray_reported(tmp_path, capsys):
    # the recorder read Ray's total every 0.25 s; here it read 0 throughout, so the replay's own total
    # (requests from 1 s on, none before its first request's router) shows as the difference
    path = ray_run(tmp_path / "ray.json")
    run = Report.load(path)
    run.replicas.timeline = [ReplicaSample(t=T0 + 0.25 * k, total_requests=0.0) for k in range(1200)]
    run.replicas.timeline[5].total_requests = None          # a sample that could not read it: left out
    run.save(path)
    out = tmp_path / "v.json"
    main(["validate", "--measured", path, "--calibration", calibration(tmp_path / "cal.json"), "--replications", "2",
          "--out", str(out)])
    sim = Report.load(out)
    for layer in ("mechanics_replay", "replay"):
        total = sim.extra[layer]["controller_total"]
        assert total["samples"] == 1199 and total["bias"] > 0.1 and total["max_abs"] >= 1.0
        assert 1.0 <= total["first_apart_s"] <= 12.0              # at the first request's push, not before
    # the handle's count after a slot, fitted on the recorded total: the least of the grid comes closest to 0
    assert sim.extra["mechanics_replay"]["count_after_slot_s"] == 0.0
    assert sim.extra["mechanics_replay"]["count_after_slot_from"] == "fitted on the run's recorded controller total"
    assert "controller's total (the autoscaler's input" in capsys.readouterr().out


def test_the_controller_totals_compared_instant_by_instant():
    from simulator.controller_total import compare_totals

    measured = [(0.25 * k, 1.0 if k >= 8 else 0.0) for k in range(20)]
    same = compare_totals(measured, [[v for _, v in measured]] * 3)
    assert same["bias"] == 0 and same["agree_share"] == 1.0 and same["first_apart_s"] is None
    # one replication a step late, two on time: the median is on time; all three late: 0.5 s apart at 2 s
    late = [0.0 if k < 10 else 1.0 for k in range(20)]
    assert compare_totals(measured, [late] + [[v for _, v in measured]] * 2)["first_apart_s"] is None
    apart = compare_totals(measured, [late] * 3)
    assert apart["first_apart_s"] == 2.0 and apart["max_abs"] == 1.0 and apart["bias"] == pytest.approx(-0.1)
    assert compare_totals([], [late]) is None


def test_the_handles_count_after_a_slot_is_the_one_whose_replay_lies_closest_to_rays_total():
    from simulator.controller_total import COUNT_GRID_S, fitted_count_after_slot_s

    measured = [(float(k), 1.0 + 0.1 * (k % 3)) for k in range(30)]
    # a replay whose total grows with the lag, Ray's matched at 0.2 s
    assert fitted_count_after_slot_s(measured, lambda x: [v + (x - 0.2) for _, v in measured]) == 0.2
    assert fitted_count_after_slot_s(measured, lambda x: [v - 1.0 for _, v in measured]) == COUNT_GRID_S[0]
    assert fitted_count_after_slot_s([], lambda x: []) is None


def test_the_predictions_count_lag_is_fitted_on_the_calibration_over_every_grid_phase(tmp_path, monkeypatch):
    # on one phase of the push grid the fit is one draw of it: a demo calibration fitted 0.40 s on one
    # phase and 0.30 s on all eight, where the run's own mechanics layer uses all eight
    import simulator.validate_autoscaling as va

    cal_path = calibration(tmp_path / "cal.json")
    cal = Report.load(cal_path)
    t0 = cal.replicas.window[0]
    cal.replicas.timeline = [ReplicaSample(t=t0 + 0.25 * k, total_requests=0.0) for k in range(400)]
    cal.config.server = ServerConfig(autoscaling=dict(SETTINGS))     # a calibration on the Ray app, as recorded
    cal.save(cal_path)
    phases_seen = {}
    real_fit = va.fitted_count_after_slot_s

    def fit(measured, totals_of):
        phases_seen.setdefault(len(measured), len(totals_of(0.0)))
        return real_fit(measured, totals_of)

    monkeypatch.setattr(va, "fitted_count_after_slot_s", fit)
    out = tmp_path / "v.json"
    main(["validate", "--measured", ray_run(tmp_path / "ray.json"), "--calibration", cal_path, "--replications", "2",
          "--out", str(out)])
    assert phases_seen.get(400) == va.GRID_PHASES       # the calibration's 400 recorded totals
    assert Report.load(out).extra["replay"]["count_after_slot_from"].endswith("cal.json's controller total")
