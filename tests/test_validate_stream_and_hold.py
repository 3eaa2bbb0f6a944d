"""A validation replays a run's open-loop stages as the one stream the server met, and its prediction keeps
one worker busy for the server's own work after each job (the hold a calibration measured); repeated
calibrations give their speed from every job (simulator/validate.py, simulator/profiles.py)."""

from __future__ import annotations

import pytest

from loadlab.cases import ARTICLE_CASES
from loadlab.schema import JobRecord, LoadConfig, Report, RunConfig, ServerConfig, Stage
from simulator.profiles import from_reports
from simulator.validate import validate
from tests.test_drift import a_calibration
from tests.test_service_load import alone_jobs, calibration, queued_jobs

SERVICE_S, HOLD_S, OVERHEAD_S = 2.0, 0.3, 0.5      # the overhead after the model call includes the hold


def fifo(arrivals: list[float], hold_s: float = 0.0) -> list[JobRecord]:
    """One FIFO worker: each job's model time, then `hold_s` of the server's work before the next."""
    jobs, free = [], -1e9
    for t in arrivals:
        start = max(t, free)
        free = start + SERVICE_S + hold_s
        jobs.append(JobRecord(case="medium", status="completed", scheduled=t, submitted=t, started=start,
                              finished=start + SERVICE_S + OVERHEAD_S, queue_s=start - t, service_s=SERVICE_S,
                              e2e_s=start + SERVICE_S + OVERHEAD_S - t))
    return jobs


def run_report(stages: list[Stage], mode: str) -> Report:
    return Report(role="load", kind="measured", name="known", target="local", cases=[ARTICLE_CASES["medium"]],
                  stages=stages, config=RunConfig(driver="test", server=ServerConfig(workers=1, max_batch=1),
                                                  load=LoadConfig(mode=mode)))


def errors(report: Report, layer: str) -> dict[tuple[str, str], float]:
    return {(e.stage, e.metric): e.error for e in report.errors if e.layer == layer and e.stage is not None}


def test_a_trace_window_starts_with_the_queue_the_window_before_left():
    # four jobs at the end of the first window; the second window's one job waits for them (e2e 7.0 s,
    # alone it would take 2.5 s): replayed window by window from an empty queue it came out -64 %
    jobs = fifo([7.0, 7.1, 7.2, 7.3, 10.5])
    first = Stage(name="t=0-10s", started_at=0.0, duration_s=10.0, jobs=jobs[:4])
    second = Stage(name="t=10-20s", started_at=10.0, duration_s=10.0, jobs=jobs[4:])
    assert second.summary.mean == pytest.approx(7.0)
    measured = run_report([first, second], "trace")
    got = errors(validate(measured, from_reports([measured]), layers=("mechanics",)), "mechanics")
    assert got[("t=10-20s", "mean_s")] == pytest.approx(0.0, abs=1e-6)
    assert got[("t=0-10s", "mean_s")] == pytest.approx(0.0, abs=1e-6)


def test_the_prediction_keeps_the_worker_busy_for_the_calibrations_hold_after_each_job():
    # the calibration: jobs alone, then a closed loop whose next job starts 0.3 s after each model call
    loaded = fifo([1000.0 + 0.01 * k for k in range(8)], HOLD_S)
    cal = calibration({"medium [u=1]": fifo([0.0, 10.0, 20.0, 30.0, 40.0, 50.0]), "load [u=3]": loaded})
    profile = from_reports([cal])
    assert profile.hold_s("medium") == pytest.approx(HOLD_S)
    # 7 back-to-back pairs; the first's next job was sent 0.01 s after the first started, so its gap is
    # not read as a hold (simulator/mechanics.py measured_holds, waited_through)
    assert profile.describe()["hold_after_job_s"]["medium"]["n"] == 6
    burst = Stage(name="u=6", concurrency=6, jobs_per_user=1, jobs=fifo([0.0] * 6, HOLD_S))
    report = validate(run_report([burst], "burst"), profile, replications=3, layers=("prediction",))
    got = errors(report, "prediction")
    # worker 2.3 s a job, the client's result 0.2 s after the hold: as measured (without it -9 %)
    assert got[("u=6", "mean_s")] == pytest.approx(0.0, abs=1e-6)
    assert got[("u=6", "p95_s")] == pytest.approx(0.0, abs=1e-6)


def test_repeated_calibrations_give_their_speed_from_every_job_not_only_the_few_alone():
    # both measured 2.0 s on their two jobs alone; the second one's loaded jobs ran 25 % slower than the
    # first's at the same load: the machine slowed during it, which two jobs alone did not see
    before = calibration({"alone [u=1]": alone_jobs(2, service_s=2.0),
                          "load [u=3]": queued_jobs(3, 8, 2.4, t0=1000.0)})
    after = calibration({"alone [u=1]": alone_jobs(2, service_s=2.0),
                         "load [u=3]": queued_jobs(3, 8, 3.0, t0=1000.0)})
    drift = from_reports([before, after]).drift()["cases"]["light"]
    assert drift["alone_s"][0]["n"] == 10 and drift["last_over_first"] > 1.15
    # equal speeds stay equal
    same = from_reports([a_calibration(2.0, name="a"), a_calibration(2.0, name="b")]).drift()
    assert same["cases"]["light"]["last_over_first"] == pytest.approx(1.0)
