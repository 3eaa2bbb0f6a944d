"""`python -m bench calibrate`: its options' bounds (one-line errors, exit 2) and (slow) the local target end
to end on the tiny model: one calibration report with jobs alone and at two loads, that `simulator validate
--calibration` and `simulator run --profile` take, with the fitted load model in the profile."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.calibrate import alone_service_s, main, parse_args
from loadlab.schema import COMPLETED, JobRecord, Report, Stage
from simulator.profiles import load_profile


@pytest.mark.parametrize("argv, message", [
    (["--loads", "3"], "at least two loads"),
    (["--loads", "1,3"], "at least two loads"),
    (["--loads", "3,99"], "at least two loads"),
    (["--loads", "a,b"], "comma-separated"),
    (["--jobs", "0"], "outside"),
    (["--runs", "100000"], "outside"),
    (["--target", "local", "--max-replicas", "2"], "unrecognized arguments: --max-replicas 2"),
    (["--target", "rayserve", "--server-pid", "12"], "--server-pid is for the job server"),
    (["--target", "gpu"], "invalid choice"),
])
def test_bad_options_are_one_line_errors_with_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_defaults_calibrate_two_loads_and_rayserve_takes_the_autoscale_settings(tmp_path):
    args = parse_args([])
    assert args.target == "local" and args.loads == [3, 5] and args.out.name == "calibration-local.json"
    ray = parse_args(["--target", "rayserve", "--max-replicas", "3", "--upscale-delay-s", "4"])
    assert ray.autoscale == ["--max-replicas", "3", "--upscale-delay-s", "4"]


def test_the_time_alone_leaves_first_jobs_out():
    jobs = [JobRecord(case="light", status=COMPLETED, submitted=0.0, service_s=s, cold_start=c)
            for s, c in ((9.0, True), (2.0, False), (4.0, False))]
    assert alone_service_s([Stage(name="light [u=1]", jobs=jobs)]) == 3.0


@pytest.mark.slow
def test_local_calibration_end_to_end_gives_a_load_model_the_simulator_takes(tmp_path):
    out = tmp_path / "measured" / "calibration-local.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "calibrate", "--target", "local", "--runs", "3",
                           "--loads", "3,4", "--jobs", "3", "--out", str(out), "--locust-dir", str(tmp_path / "locust")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = Report.load(out)
    assert report.role == "calibration" and report.kind == "measured"
    assert [s.concurrency for s in report.stages] == [1, 3, 4]
    assert all(j.status == COMPLETED for s in report.stages for j in s.jobs)
    profile = load_profile(str(out))
    assert profile.load is not None and profile.load.in_system.levels        # jobs met loads above 1
    assert profile.load.factor(1, 1) == 1.0
    described = profile.describe()["service_load"]
    assert described["n"] >= 3 and described["fit_error"]["levels"]
    # the simulator takes it: a validation of another run, and a month
    run = tmp_path / "run.json"
    Report(role="load", kind="measured", name="run", target="local", config=report.config,
           stages=report.stages[1:]).save(run)
    val = subprocess.run([sys.executable, "-m", "simulator", "validate", "--measured", str(run), "--calibration",
                          str(out), "--replications", "2", "--out", str(tmp_path / "v.json")],
                         capture_output=True, text=True, timeout=300)
    assert val.returncode == 0, val.stdout + val.stderr
    model = json.loads((tmp_path / "v.json").read_text())["model"]
    assert model["service_load"]["calibration"].startswith("calibration-local")
    month = subprocess.run([sys.executable, "-m", "simulator", "run", "--profile", str(out), "--monthly", "200",
                            "--case-mix", "light=1", "--days", "1", "--out", str(tmp_path / "m.json")],
                           capture_output=True, text=True, timeout=300)
    assert month.returncode == 0, month.stdout + month.stderr
