"""The machine's drift: repeated calibrations each give the load model a ratio to their own time alone,
a prediction's replications draw a speed within their span, and the service check says when a run's own
model time is not the calibrated one (simulator/service_load.py, simulator/validate.py, simulator/service_check.py)."""

from __future__ import annotations

import random

import pytest

from loadlab.schema import FAILED, Report
from loadlab.stats import mean
from simulator.profiles import from_reports
from simulator.service_check import service_checks
from simulator.service_load import fit, report_loads
from simulator.validate import calibration_draw
from tests.test_service_load import alone_jobs, calibration, queued_jobs, record


def a_calibration(alone_s: float, factor: float = 1.2, name: str = "cal", alone: int = 6) -> Report:
    """`alone` jobs alone at `alone_s`, then a loaded stage `factor` slower with two requests queued."""
    report = calibration({"alone [u=1]": alone_jobs(alone, service_s=alone_s),
                          "load [u=3]": queued_jobs(3, 6, alone_s * factor, t0=1000.0)})
    report.name = name
    return report


def test_each_calibration_s_load_is_a_ratio_to_its_own_time_alone():
    # the machine ran 25 % slower in the second calibration; both measured x1.2 under load
    before, after = a_calibration(2.0, name="before"), a_calibration(2.5, name="after", alone=2)
    loads = [x for k, r in enumerate([before, after]) for x in report_loads(r, k)]
    model = fit(loads)
    (level,) = model.in_system.levels
    assert level.factor == pytest.approx(1.2, abs=1e-6)      # a pooled time alone (2.125 s) would give 1.27
    assert model.alone_s["light"] == pytest.approx(2.125)


def test_a_prediction_from_two_calibrations_draws_speeds_across_their_span():
    before, after = a_calibration(2.0, name="before"), a_calibration(2.5, name="after")
    profile = from_reports([before, after])
    assert len(profile.calibration_groups) == 2
    rng = random.Random(3)
    means = [mean(calibration_draw(profile, rng).service_samples["light"]) for _ in range(400)]
    assert min(means) >= 2.0 - 1e-9 and max(means) <= 2.5 + 1e-9
    # uniform between them: a tenth of the draws within 0.05 s of each end (a bootstrap of the two
    # calibrations' jobs pooled would put its 10th percentile near 2.16 s)
    assert sorted(means)[40] < 2.08 and sorted(means)[360] > 2.42 and 2.2 < mean(means) < 2.3
    drift = profile.drift()
    assert drift["calibrations"] == 2 and drift["cases"]["light"]["last_over_first"] == pytest.approx(1.25)
    # one calibration: the bootstrap of its own jobs, nothing between
    single = from_reports([before])
    assert len(single.calibration_groups) == 1 and single.drift()["calibrations"] == 1
    assert all(mean(calibration_draw(single, rng).service_samples["light"]) == pytest.approx(2.0)
               for _ in range(20))


def test_the_service_check_flags_a_run_slower_than_its_calibration_and_passes_a_calibrated_one():
    profile = from_reports([a_calibration(2.0)])

    def run(alone_s: float) -> Report:
        # 8 jobs at in_system 3 (predicted 2.0 x 1.2) with a little noise, one stage
        jobs = queued_jobs(3, 8, alone_s * 1.2, t0=50.0)
        for k, j in enumerate(x for x in jobs if x.status != FAILED):
            j.service_s *= 1 + 0.01 * (k % 3 - 1)
        return calibration({"open": jobs}, role="load")

    slow = service_checks(run(2.4), profile)[-1]
    assert slow.ratio == pytest.approx(1.2, abs=0.02) and slow.verdict == "slower than calibrated"
    same = service_checks(run(2.0), profile)[-1]
    assert same.ratio == pytest.approx(1.0, abs=0.02) and same.verdict == "as calibrated"
    few = service_checks(calibration({"open": [record(0.0, 0.0, 3.0)]}, role="load"), profile)[-1]
    assert few.n == 1 and few.verdict == "too few jobs"


def test_each_replication_draws_the_load_factors_within_their_intervals():
    report = a_calibration(2.0)
    for k, job in enumerate(j for j in report.stages[1].jobs if j.status != FAILED):
        job.service_s *= 1 + 0.05 * (k % 3 - 1)             # a loaded stage with spread: an interval
    profile = from_reports([report])
    (level,) = profile.load.in_system.levels
    assert level.ci95 and level.ci95 > 0.02
    rng = random.Random(5)
    factors = [calibration_draw(profile, rng).load.in_system.levels[0].factor for _ in range(2000)]
    assert mean(factors) == pytest.approx(level.factor, abs=0.01)
    sd = (sum((f - mean(factors)) ** 2 for f in factors) / len(factors)) ** 0.5
    assert sd == pytest.approx(level.ci95 / 1.96, rel=0.1)
    assert profile.load.in_system.levels[0].factor == level.factor       # the profile itself is left as it was


def test_the_speed_wander_between_blocks_of_two_calibrations_widens_the_draws_beyond_their_span():
    # both alone at 2.0 s; the loaded block of one ran 5 % slow, the other's 5 % fast (the machine wandering
    # within minutes): at one load factor, their blocks lie ~3 % off their calibrations
    before = calibration({"alone [u=1]": alone_jobs(6, service_s=2.0),
                          "load [u=3]": queued_jobs(3, 8, 2.0 * 1.2 * 1.05, t0=1000.0)})
    after = calibration({"alone [u=1]": alone_jobs(6, service_s=2.0),
                         "load [u=3]": queued_jobs(3, 8, 2.0 * 1.2 * 0.95, t0=1000.0)})
    profile = from_reports([before, after])
    wander = profile.speed_wander
    assert wander is not None and wander["blocks"] == 4 and 0.02 < wander["sd"] < 0.05
    rng = random.Random(5)
    means = sorted(mean(calibration_draw(profile, rng).service_samples["light"]) for _ in range(400))
    lo, hi = min(mean(g["light"]) for g in profile.calibration_groups), max(
        mean(g["light"]) for g in profile.calibration_groups)
    assert means[10] < lo - 0.02 and means[-10] > hi + 0.02          # the run may lie off both
    steady = from_reports([a_calibration(2.0, name="a"), a_calibration(2.0, name="b")])
    assert steady.speed_wander["sd"] == 0.0                          # blocks at one speed: no wander
