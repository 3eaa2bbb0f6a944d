"""`simulator validate` on open-loop runs with a separate calibration run, SLO attainment rows, and
`simulator run --slo-e2e`. The measured reports are generated from a known FIFO process."""

from __future__ import annotations

import random

import pytest

from loadlab.cases import ARTICLE_CASES
from loadlab.schema import JobRecord, LoadConfig, Report, RunConfig, ServerConfig, Stage
from simulator.cli import main

OVERHEAD_S = 0.2


def service(rng: random.Random) -> float:
    return rng.uniform(1.8, 2.2)


def calibration_report(path, seed: int = 3, runs: int = 60) -> str:
    """A `bench single`-like run: one job at a time, no queue."""
    rng = random.Random(seed)
    stage = Stage(name="medium [u=1]", concurrency=1, jobs_per_user=runs)
    t = 50.0
    for _ in range(runs):
        s = service(rng)
        stage.jobs.append(JobRecord(case="medium", status="completed", submitted=t, started=t,
                                    finished=t + s + OVERHEAD_S, queue_s=0.0, service_s=s, e2e_s=s + OVERHEAD_S))
        t += s + OVERHEAD_S + 1
    Report(role="single", kind="measured", name="single-known", target="local", cases=[ARTICLE_CASES["medium"]],
           stages=[stage], config=RunConfig(driver="test", load=LoadConfig(mode="single", runs=runs))).save(path)
    return str(path)


def open_report(path, rates=(0.25, 0.425), jobs: int = 400, seed: int = 8, slo: float | None = None,
                scale: float = 1.0, dropped_every: int = 0) -> str:
    """An open-loop run on one FIFO worker: Poisson arrivals at each rate (rho = rate x 2 s), latency from
    the scheduled time; `scale` multiplies every latency (a server no FIFO model explains)."""
    rng = random.Random(seed)
    stages = []
    t0 = 10_000.0
    for rate in rates:
        stage = Stage(name=f"rate={rate:g}/s", arrival_rate_per_s=rate, started_at=t0, slo_e2e_s=slo)
        free = t0
        t = t0
        for i in range(jobs):
            t += rng.expovariate(rate)
            if dropped_every and i % dropped_every == 0:
                stage.jobs.append(JobRecord(case="medium", status="dropped", submitted=t, scheduled=t,
                                            error="over max in flight"))
                continue
            s = service(rng)
            start = max(t, free)
            free = start + s
            e2e = (free + OVERHEAD_S - t) * scale
            stage.jobs.append(JobRecord(case="medium", status="completed", scheduled=t, submitted=t + 0.001,
                                        started=start, finished=t + e2e, queue_s=start - t, service_s=s, e2e_s=e2e))
        stages.append(stage)
        t0 = free + 100
    Report(role="load", kind="measured", name="open-known", target="local", cases=[ARTICLE_CASES["medium"]],
           stages=stages, config=RunConfig(driver="test", server=ServerConfig(workers=1, max_batch=1),
                                           load=LoadConfig(mode="open", arrival="poisson",
                                                           rates_per_s=list(rates)))).save(path)
    return str(path)


def rows(path, layer: str = "prediction") -> dict[tuple[str | None, str], object]:
    report = Report.load(path)
    assert report.role == "validation"
    return {(e.stage, e.metric): e for e in report.errors if e.layer == layer}


def test_open_loop_run_validates_against_a_separate_calibration(tmp_path, capsys):
    measured = open_report(tmp_path / "open.json")
    cal = calibration_report(tmp_path / "single.json")
    out = tmp_path / "v.json"
    rc = main(["validate", "--measured", measured, "--calibration", cal, "--replications", "20",
               "--max-error", "10", "--out", str(out)])
    assert rc == 0, capsys.readouterr().out
    errors = rows(out)
    for stage in ("rate=0.25/s", "rate=0.425/s"):
        assert errors[(stage, "mean_s")].scored          # nothing was fitted on the validated run
        assert abs(errors[(stage, "mean_s")].error) < 0.10
        assert abs(errors[(stage, "p95_s")].error) < 0.10
        assert (stage, "p99_s") in errors and (stage, "slo_attainment") not in errors
    # the replay sent the measured arrivals, at their times from the stage start, with their cases
    sim = Report.load(out)
    got = [(j.scheduled, j.case) for j in sim.stage("rate=0.25/s").jobs]
    m = Report.load(measured).stage("rate=0.25/s")
    assert [g[0] for g in got] == pytest.approx([j.scheduled - m.started_at for j in m.jobs], abs=1e-9)
    assert [g[1] for g in got] == [j.case for j in m.jobs]
    assert sim.config.simulation.calibration == cal
    assert sim.model["fitted_on"] == [{"report": "single-known", "stages": ["medium [u=1]"]}]


def test_latencies_no_fifo_server_gives_fail_the_gate(tmp_path, capsys):
    measured = open_report(tmp_path / "slow.json", scale=1.5)
    cal = calibration_report(tmp_path / "single.json")
    assert main(["validate", "--measured", measured, "--calibration", cal, "--max-error", "10",
                 "--out", str(tmp_path / "v.json")]) == 1
    errors = rows(tmp_path / "v.json")
    assert errors[("rate=0.25/s", "mean_s")].error < -0.25
    assert "FAIL" in capsys.readouterr().out


def test_without_calibration_the_stages_fitted_on_are_not_scored(tmp_path, capsys):
    measured = open_report(tmp_path / "open.json", jobs=100)
    assert main(["validate", "--measured", measured, "--max-error", "10", "--out", str(tmp_path / "v.json")]) == 1
    assert not any(e.scored for e in Report.load(tmp_path / "v.json").errors if e.layer == "prediction")
    assert "no scored stage" in capsys.readouterr().out


def test_the_run_being_validated_is_refused_as_its_own_calibration(tmp_path, capsys):
    measured = open_report(tmp_path / "open.json", jobs=20)
    assert main(["validate", "--measured", measured, "--calibration", measured]) == 2
    assert "separate run" in capsys.readouterr().err


def test_slo_attainment_rows_and_dropped_requests(tmp_path):
    measured = open_report(tmp_path / "open.json", slo=6.0, dropped_every=10)
    cal = calibration_report(tmp_path / "single.json")
    out = tmp_path / "v.json"
    assert main(["validate", "--measured", measured, "--calibration", cal, "--replications", "10",
                 "--out", str(out)]) == 0
    errors = rows(out)
    m = Report.load(measured).stage("rate=0.425/s")
    row = errors[("rate=0.425/s", "slo_attainment")]
    assert row.measured == pytest.approx(m.summary.slo_attainment)
    assert row.measured <= 0.9                                 # the dropped 10 % count as missed
    assert abs(row.error) < 0.1
    sim = Report.load(out).stage("rate=0.425/s")
    assert sim.summary.dropped == m.summary.dropped == 40
    # --slo-e2e overrides the stages' own
    assert main(["validate", "--measured", measured, "--calibration", cal, "--slo-e2e", "3",
                 "--out", str(out)]) == 0
    assert rows(out)[("rate=0.425/s", "slo_attainment")].measured < row.measured


def test_run_slo_columns_match_the_report_stages(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["--monthly", "3000", "--days", "2", "--deployments", "local,vertex", "--slo-e2e", "60",
                 "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "SLO %" in text and "goodput /h" in text
    report = Report.load(out)
    assert report.config.slo_e2e_s == 60
    for stage, result in zip(report.stages, report.extra["results"], strict=True):
        assert stage.slo_e2e_s == 60
        assert stage.summary.slo_attainment == pytest.approx(result["slo_attainment"])
        assert stage.summary.goodput_per_s == pytest.approx(result["goodput_per_s"])
        assert 0 < result["slo_attainment"] < 1
