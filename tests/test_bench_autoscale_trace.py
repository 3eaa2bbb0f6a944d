"""`bench autoscale --trace`: any arrival trace replayed against Ray Serve, its own cases and times / K,
one stage per window; bounded and checked before Ray starts."""

from __future__ import annotations

import pytest

from bench.autoscale.cli import parse_args
from bench.autoscale.scenario import SCENARIOS, phase_stages, trace_scenario, write_scenario
from loadlab.schema import JobRecord
from loadlab.trace import read_trace, write_trace
from locustfiles.arrivals import OpenLoopPlan


@pytest.fixture
def trace(tmp_path):
    rows = [(0.0, "light"), (10.0, "small"), (20.0, "light")] + [(95.0, "light")] * 6 + [(170.0, "small")]
    return write_trace(tmp_path / "t.csv", rows, provenance={"source": "gateway.log", "time_scale": 1})


def test_a_trace_becomes_windows_with_its_own_cases_and_times_scaled(trace, tmp_path):
    sc = trace_scenario(trace, 2.0, 30.0, SCENARIOS["short"])
    assert [(t, c) for t, c, _ in sc.rows()] == [(t / 2, c) for t, c in read_trace(trace)]
    assert [p.name for p in sc.phases] == ["window 1 [0, 30) s", "window 2 [30, 60) s", "window 3 [60, 90) s"]
    assert [len(p.times) for p in sc.phases] == [3, 6, 1]
    assert sc.cases == ["light", "small"] and sc.shape.step_s == 30.0
    assert sc.to_dict()["trace"]["provenance"]["source"] == "gateway.log"
    # written for Locust and regrouped by arrival index, as the scripted scenario is
    rows = read_trace(write_scenario(sc, tmp_path / "replay.csv"))
    plan = OpenLoopPlan(arrival="trace", stage_seconds=sc.shape.step_s, trace=rows, time_scale=1.0)
    jobs = [JobRecord(case=a.case, status="completed", scheduled=100 + a.t_s, submitted=100 + a.t_s,
                      finished=101 + a.t_s, e2e_s=1.0, extra={"arrival": a.index}) for a in plan.arrivals()]
    stages = phase_stages(jobs, sc, 100.0, None)
    assert [len(s.jobs) for s in stages] == [3, 6, 1]
    assert [j.case for j in stages[0].jobs] == ["light", "small", "light"]
    assert stages[1].arrival_rate_per_s == pytest.approx(6 / 30)


def test_default_windows_and_the_cli(trace):
    args = parse_args(["--trace", str(trace)])
    assert len(args.trace_scenario.phases) == 6 and args.cases == "light,small"
    assert args.scenario == "trace-t"


@pytest.mark.parametrize("flags,message", [
    (["--time-scale", "0"], "--time-scale must be"),
    (["--time-scale", "0.01"], "bounded to 2,000 arrivals over 3,600 s"),
    (["--window-s", "0.5"], "at most 100"),
])
def test_bad_traces_are_refused_before_ray_starts(trace, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--trace", str(trace), *flags])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_unknown_cases_and_unreadable_traces(tmp_path, capsys):
    bad = write_trace(tmp_path / "b.csv", [(0.0, "huge")])
    missing = tmp_path / "missing.csv"
    for path, message in [(bad, "unknown case"), (missing, "does not exist")]:
        with pytest.raises(SystemExit):
            parse_args(["--trace", str(path)])
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_trace_replays_against_ray_serve_and_validate_scores_it(tmp_path):
    import os
    import subprocess
    import sys

    from loadlab.schema import Report
    from tests.test_bench_autoscale import ROOT, _alive

    trace = write_trace(tmp_path / "t.csv", [(0.0, "light"), (1.0, "light"), (1.0, "light"), (12.0, "light")],
                        provenance={"source": "gateway.log", "time_scale": 1})
    out = tmp_path / "R.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "bench", "autoscale", "--trace", str(trace), "--window-s", "6", "--scenario", "short",
           "--out", str(out), "--locust-dir", str(tmp_path / "locust"), "--downscale-delay-s", "5",
           "--downscale-to-zero-delay-s", "5", "--look-back-period-s", "10"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = Report.load(out)
    assert [s.name for s in report.stages] == ["window 1 [0, 6) s", "window 2 [6, 12) s", "window 3 [12, 18) s"]
    assert [len(s.jobs) for s in report.stages] == [3, 0, 1]
    assert all(j.status == "completed" for s in report.stages for j in s.jobs)
    assert report.extra["scenario"]["trace"]["provenance"]["source"] == "gateway.log"
    assert report.replicas.events[0].from_replicas == 0 and report.extra["back_at_rest"] is True
    assert _alive(report.extra["rayserve"]["pids"]) == []
    calibration = tmp_path / "R-calibration.json"
    validate = subprocess.run([sys.executable, "-m", "simulator", "validate", "--measured", str(out), "--calibration",
                               str(calibration), "--out", str(tmp_path / "V.json")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    assert validate.returncode == 0, validate.stderr[-2000:]
    assert "window 1 [0, 6) s" in validate.stdout and "replica_seconds" in validate.stdout
