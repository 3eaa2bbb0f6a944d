"""`python -m simulator trace fit`: the workload model's inputs recovered from a log drawn with known ones."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.cli import main
from simulator.traffic.fit import find_bursts, fit
from simulator.traffic.load import load
from tests.traffic_logs import HOUR_WEIGHTS, epoch_ms_csv, iso_csv, realistic_times


@pytest.fixture(scope="module")
def four_weeks():
    return realistic_times(days=28, per_day=2000, bursts_per_day=2, burst_size=30, seed=5)


def test_hour_and_day_weights_bursts_and_volume_recovered(tmp_path, four_weeks):
    data = load(epoch_ms_csv(tmp_path / "ms.csv", four_weeks))
    f = fit(data.epoch, data.wall, data.cases, data.start_wall, data.window.span_s)
    true_h = np.asarray(HOUR_WEIGHTS) / max(HOUR_WEIGHTS)
    np.testing.assert_allclose(f.hour_weights, true_h, atol=0.08)
    np.testing.assert_allclose(f.day_weights, [1, 1, 1, 1, 1, 0.3, 0.3], atol=0.08)
    # the generator's bursts: 30 arrivals in one second each
    seconds, counts = np.unique(four_weeks, return_counts=True)
    true_bursts = int((counts >= 30).sum())
    assert f.bursts == pytest.approx(true_bursts, abs=2)
    assert f.burst_size == pytest.approx(30, abs=1)
    assert f.bursts_per_day == pytest.approx(true_bursts / f.span_days, rel=0.1)
    # 2,000 smooth arrivals a day: a 30-day month of the same weights holds ~ 2000 x 30 x its weight ratio
    assert f.monthly == pytest.approx(2000 * 28 * _month_over_span(true_h, data.start_wall, 28), rel=0.03)
    assert f.case_mix == {"medium": 1.0}


def _month_over_span(hw, start_wall, days):
    dw = np.asarray([1, 1, 1, 1, 1, 0.3, 0.3])
    month = sum(hw[h % 24] * dw[(h // 24) % 7] for h in range(720))
    span = sum(hw[h % 24] * dw[(h // 24) % 7] for h in range(days * 24))
    return month / span / days * days


def test_no_bursts_in_poisson_traffic():
    t = np.sort(np.random.default_rng(2).random(20_000) * 7 * 86400)
    assert find_bursts(t).sum() <= 4          # at most a chance pair or two at night


def test_fit_command_prints_run_flags_and_the_comparison(tmp_path, capsys):
    seconds = realistic_times(days=7, per_day=500, seed=1)
    log = iso_csv(tmp_path / "log.csv", seconds, cases=["512", "1024"])
    assert main(["trace", "fit", str(log), "--case-column", "resolution", "--case-map", "512=small,1024=medium",
                 "--draws", "2"]) == 0
    out = capsys.readouterr().out
    flags = out.split("simulator run flags:\n  ")[1].splitlines()[0].split()
    assert flags[0] == "--monthly" and int(flags[1]) > 0 and "--hour-weights" in flags
    assert flags[flags.index("--case-mix") + 1] == "medium=0.500,small=0.500"
    assert "interarrival CV" in out and "peak minute" in out and "hourly p90" in out
    # the flags are accepted by `simulator run` as printed
    assert main(["run", *flags, "--days", "1", "--deployments", "local", "--no-progress",
                 "--out", str(tmp_path / "r.json")]) == 0


def test_fit_refuses_less_than_an_hour(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("time\n" + "".join(f"{i}\n" for i in range(100)))
    assert main(["trace", "fit", str(log)]) == 2
    assert "at least an hour" in capsys.readouterr().err
