"""`python -m bench capacity`: the search, the SLO verdict of a probe, the simulated probe against
M/D/1 queueing theory, and the command end to end (in process with a simulated stand-in for the
measured probe; with Locust and the fake client in a slow test)."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.capacity import judge, run, search, simulated_stage
from loadlab.schema import JobRecord, LoadConfig, Report, RunConfig, Stage

ROOT = Path(__file__).resolve().parent.parent
S = 0.2  # the fake's fixed service time


def md1_wait_cdf(t: float, rate: float, service_s: float) -> float:
    """P(wait <= t) in an M/D/1 FIFO queue (Erlang's formula)."""
    rho = rate * service_s
    return (1 - rho) * sum((rate * (k * service_s - t)) ** k / math.factorial(k) * math.exp(-rate * (k * service_s - t))
                           for k in range(int(t // service_s) + 1))


def md1_capacity(slo_s: float, percentile: float, service_s: float) -> float:
    """The highest rate whose sojourn time (wait + service) meets the SLO at the percentile."""
    lo, hi = 1e-6, 1 / service_s - 1e-9
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if md1_wait_cdf(slo_s - service_s, mid, service_s) >= percentile / 100 else (lo, mid)
    return lo


def fixed_calibration(service_s: float = S) -> Report:
    """A calibration report whose jobs took exactly `service_s` of model time and nothing else."""
    jobs = [JobRecord(case="light", status="completed", submitted=i, finished=i + service_s, started=i,
                      queue_s=0.0, service_s=service_s, e2e_s=service_s) for i in range(5)]
    return Report(role="single", kind="measured", name="fixed", target="local",
                  config=RunConfig(driver="test", load=LoadConfig(mode="single")),
                  stages=[Stage(name="light [u=1]", concurrency=1, jobs=jobs)])


def threshold_probe(capacity: float, log: list[float]):
    def probe(rate: float):
        log.append(rate)
        stage = Stage(name=f"{rate}", jobs=[JobRecord(case="light", status="completed", submitted=0, finished=1,
                                                      e2e_s=1.0 if rate <= capacity else 9.0)])
        return judge(rate, stage, slo_e2e_s=2.0, percentile=95)
    return probe


def test_search_doubles_then_bisects_to_the_tolerance():
    log: list[float] = []
    result = search(threshold_probe(3.7, log), start_per_s=1.0, max_per_s=100, tolerance=0.05, max_probes=20)
    assert log[:3] == [1.0, 2.0, 4.0]  # doubling until a miss, then bisection inside [2, 4]
    assert all(2.0 < r < 4.0 for r in log[3:])
    assert result.status == "bracketed" and result.capacity_per_s <= 3.7 < result.missed_at_per_s
    assert result.missed_at_per_s - result.capacity_per_s <= 0.05 * result.capacity_per_s


def test_search_halves_from_a_start_that_misses():
    log: list[float] = []
    result = search(threshold_probe(1.3, log), start_per_s=10.0, max_per_s=100, tolerance=0.1, max_probes=20)
    assert log[:4] == [10.0, 5.0, 2.5, 1.25]
    assert result.status == "bracketed" and result.capacity_per_s <= 1.3 < result.missed_at_per_s


def test_search_ends_at_the_maximum_rate_or_when_nothing_meets():
    log: list[float] = []
    assert search(threshold_probe(1e9, log), 1.0, 5.0).capacity_per_s == 5.0 and log == [1.0, 2.0, 4.0, 5.0]
    log.clear()
    none = search(threshold_probe(0.0, log), 1.0, 5.0, max_halvings=3)
    assert none.status == "none_met" and none.capacity_per_s is None and log == [1.0, 0.5, 0.25, 0.125]


def test_a_dropped_arrival_misses_the_slo():
    ok = [JobRecord(case="light", status="completed", submitted=i, finished=i + 1, e2e_s=1.0) for i in range(19)]
    drop = JobRecord(case="light", status="dropped", submitted=0)
    assert judge(1.0, Stage(name="a", jobs=[*ok, drop]), 2.0, 95).meets           # 19/20 = 95 %
    assert not judge(1.0, Stage(name="b", jobs=[*ok[:18], drop, drop]), 2.0, 95).meets  # 18/20


def test_simulated_probe_is_an_md1_queue():
    rate = 3.0
    stage = simulated_stage(fixed_calibration(), rate, seconds=4000, seed=3, max_in_flight=10**6,
                            case_names=["light"], replications=1)
    s = stage.summary
    assert s.jobs / 4000 == pytest.approx(rate, rel=0.03)
    rho = rate * S
    assert s.mean == pytest.approx(S + rho * S / (2 * (1 - rho)), rel=0.04)  # Pollaczek-Khinchine
    waits = [j.e2e_s - S for j in stage.jobs]
    for t in (0.1, 0.3, 0.8):
        assert sum(w <= t + 1e-9 for w in waits) / len(waits) == pytest.approx(md1_wait_cdf(t, rate, S), abs=0.02)


def test_simulated_probe_drops_over_max_in_flight():
    stage = simulated_stage(fixed_calibration(), 20.0, seconds=50, seed=1, max_in_flight=3, case_names=["light"],
                            replications=1)
    s = stage.summary
    assert s.dropped > 0.5 * s.jobs           # 4x what the worker serves: most arrivals dropped
    assert s.max <= 3 * S + 1e-9                  # never more than 3 in flight: at most 2 ahead of a job


def test_simulated_capacity_is_the_md1_capacity():
    expected = md1_capacity(1.0, 95, S)                  # 3.47/s
    def probe(rate):
        stage = simulated_stage(fixed_calibration(), rate, 300, 1, 10**6, ["light"], replications=20)
        return judge(rate, stage, 1.0, 95)
    result = search(probe, 0.5 / S, 2 / S, tolerance=0.02, max_probes=30)
    assert result.capacity_per_s == pytest.approx(expected, rel=0.05)


def capacity_args(tmp_path, **kw) -> argparse.Namespace:
    args = dict(slo_e2e=1.0, percentile=95.0, cases="light", probe_seconds=300.0, max_rate=0.0, tolerance=0.03,
                max_probes=12, max_in_flight=0, seed=1, calibration=None, calibration_runs=3, replications=10,
                stop_timeout=0, out=tmp_path / "capacity.json", probe_dir=tmp_path / "probes", target="local",
                url="http://fake", server_pid=0, model="tiny", server_workers=1, server_max_batch=1,
                server_cache_ttl=0, no_pin=False, client_factory="tests.fakeclient:make_client")
    return argparse.Namespace(**{**args, **kw})


def test_capacity_command_report_and_table(tmp_path, monkeypatch, capsys):
    """The command with the fake client for the calibration and, as the measured probe, the simulator
    replaying that calibration with other seeds: the report holds every probe as a stage, and the
    measured and simulated capacities are the M/D/1 capacity."""
    monkeypatch.setenv("LOADLAB_FAKE_SERVICE_S", str(S))
    seen = []

    def make_probe(args, url, max_in_flight, folder):
        calibration = Report.load(folder / "calibration.json")  # measured by the command just before
        seen.append(max_in_flight)

        def probe(rate):
            stage = simulated_stage(calibration, rate, args.probe_seconds, 100, max_in_flight, ["light"], 1, 10)
            return judge(rate, stage, args.slo_e2e, args.percentile, "stand-in")
        return probe

    assert run(capacity_args(tmp_path), make_probe=make_probe) == 0
    report = Report.load(tmp_path / "capacity.json")
    cap = report.extra["capacity"]
    assert report.role == "capacity" and report.config.load.mode == "open" and report.config.slo_e2e_s == 1.0
    assert report.config.load.rates_per_s == [p["rate_per_s"] for p in report.extra["probes"]]
    assert len(report.stages) == len(report.extra["probes"]) >= 4
    assert cap["alone_e2e_s"] == pytest.approx(S, abs=0.02) and seen == [report.config.load.max_in_flight]
    assert cap["start_per_s"] == pytest.approx(0.5 / cap["alone_e2e_s"])
    expected = md1_capacity(1.0, 95, S)
    assert cap["measured_per_s"] == pytest.approx(expected, rel=0.08)
    assert cap["simulated_per_s"] == pytest.approx(expected, rel=0.08)
    assert cap["error"] == pytest.approx((cap["simulated_per_s"] - cap["measured_per_s"]) / cap["measured_per_s"])
    out = capsys.readouterr().out
    assert f"measured {cap['measured_per_s']:.4g}/s" in out and f"simulated {cap['simulated_per_s']:.4g}/s" in out
    assert Report.load(cap["calibration"]).role == "single"


def test_capacity_slo_below_a_job_alone_probes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LOADLAB_FAKE_SERVICE_S", str(S))

    def make_probe(*a):
        raise AssertionError("no probe should run")

    assert run(capacity_args(tmp_path, slo_e2e=0.1), make_probe=make_probe) == 0
    cap = Report.load(tmp_path / "capacity.json").extra["capacity"]
    assert cap["measured_status"] == "slo_below_service_time" and cap["measured_per_s"] is None


LOCUSTFILE = ROOT / "locustfiles" / "decompose.py"


@pytest.mark.slow
@pytest.mark.skipif("--arrival" not in LOCUSTFILE.read_text(),
                    reason="the locustfile's open-loop options (--arrival/--rates) are on another branch")
def test_capacity_with_locust_and_the_fake_client(tmp_path):
    """Each probe a real Locust open-loop stage against the fake (one worker, 0.2 s per job): the
    capacity found is the M/D/1 one, within what 40-s probes can resolve."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "LOADLAB_FAKE_SERVICE_S": str(S), "PYTHONPATH": path}
    out = tmp_path / "capacity.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "capacity", "--slo-e2e", "1.0", "--cases", "light",
                           "--probe-seconds", "40", "--tolerance", "0.15", "--out", str(out),
                           "--probe-dir", str(tmp_path / "probes"), "--url", "http://fake",
                           "--client-factory", "tests.fakeclient:make_client"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = Report.load(out)
    assert all(j.scheduled is not None for s in report.stages for j in s.jobs)
    assert [s.arrival_rate_per_s for s in report.stages] == pytest.approx(report.config.load.rates_per_s)
    cap = report.extra["capacity"]
    assert cap["measured_per_s"] == pytest.approx(md1_capacity(1.0, 95, S), rel=0.25)
    assert abs(cap["error"]) < 0.25
