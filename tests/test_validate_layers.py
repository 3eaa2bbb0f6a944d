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
    assert rows[(None, "replica_seconds")].error == pytest.approx(0.0, abs=0.01)
    for metric in ("scale_ups", "scale_downs", "cold_starts"):
        assert rows[(None, metric)].simulated == rows[(None, metric)].measured, metric
    decisions = [e for (s, m), e in rows.items() if s is None and m.endswith("_t_s")]
    assert len(decisions) == 6 and all(abs(e.difference) < 1.0 for e in decisions)


def test_ray_measured_start_ups_drive_the_replay(tmp_path):
    """The second replica's recorded start-up is 12 s instead of 2 s: its scale-up decision is the same,
    the replay's replica-seconds follow the measured intervals."""
    path = ray_run(tmp_path / "ray.json")
    report = Report.load(path)
    report.replicas.intervals[1].start -= 10.0
    report.save(path)
    out = tmp_path / "v.json"
    main(["validate", "--measured", path, "--service", "measured", "--out", str(out)])
    assert Report.load(out).extra["replay"]["measured_startups_s"][1] == pytest.approx(12.0)


def test_discrete_outcomes_are_a_distribution_over_replications(tmp_path):
    out = tmp_path / "v.json"
    main(["validate", "--measured", ray_run(tmp_path / "ray.json", {**SETTINGS}), "--calibration",
          calibration(tmp_path / "cal.json"), "--replications", "4", "--service", "calibrated", "--out", str(out)])
    rows = layer_rows(out, "prediction")
    ups = rows[(None, "scale_ups")]
    assert ups.distribution == "3 in 4 of 4" and ups.quantile == pytest.approx(0.5)
    first = rows[(None, "scale_up_1_t_s")]
    assert first.distribution.endswith(" s in 4 of 4") and first.quantile is not None
    assert rows[(None, "replica_seconds")].simulated_pi is not None
