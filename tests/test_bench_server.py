"""`python -m bench single|coldstart|concurrency --short` against the tiny-model server each starts
and stops itself (slow)."""

import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.schema import Report

pytestmark = pytest.mark.slow


def bench(args, tmp_path, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "bench", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def assert_pinning_recorded(report):
    """The server and the load generator ran on separate CPUs, and the report says which."""
    from bench.pinning import plan

    cpus = plan()
    if cpus is None:
        assert report.config.server.cpus is None and report.config.load.cpus is None
    else:
        assert report.config.server.cpus == sorted(cpus.server) and report.config.load.cpus == sorted(cpus.load)


def test_single_short(tmp_path):
    out = tmp_path / "single.json"
    bench(["single", "--short", "--out", str(out)], tmp_path)
    report = Report.load(out)
    (stage,) = report.stages
    assert stage.name == "light [u=1]" and len(stage.jobs) == 2
    assert all(j.status == "completed" and j.service_s > 0 and j.e2e_s >= j.service_s for j in stage.jobs)
    split = report.extra["split"][stage.name]
    assert split["inference_s"]["count"] == 2 and split["queue_s"]["count"] == 2
    assert report.model.get("load_s") is not None
    assert_pinning_recorded(report)


def test_coldstart_short(tmp_path):
    out = tmp_path / "cold.json"
    proc = bench(["coldstart", "--short", "--out", str(out)], tmp_path)
    report = Report.load(out)
    st = report.coldstart.stages_s
    assert st["ready"] > 0 and st["model_load"] > 0 and st["ready"] >= st["model_load"]
    assert st["first_inference"] > 0 and st["warm_inference"] > 0
    # the first job is the stage's cold one; cold total = spawn → ready + the first job
    (stage,) = report.stages
    assert [j.cold_start for j in stage.jobs] == [True, False]
    assert report.coldstart.cold_total_s == pytest.approx(st["ready"] + st["first_inference"])
    total = next(line.split() for line in proc.stdout.splitlines() if line.startswith("cold total"))
    assert float(total[2]) == pytest.approx(report.coldstart.cold_total_s, abs=0.01)


def test_concurrency_short_burst_is_a_fifo_queue(tmp_path):
    out = tmp_path / "conc.json"
    proc = bench(["concurrency", "--short", "--out", str(out), "--locust-dir", str(tmp_path / "locust")], tmp_path)
    assert "stage u=5 started" in proc.stdout
    report = Report.load(out)
    assert [(s.name, len(s.jobs)) for s in report.stages] == [("u=1", 1), ("u=5", 5)]
    assert all(j.status == "completed" for s in report.stages for j in s.jobs)
    ratio = report.extra["fifo_ideal"]["stages"]["u=5"]["ratio"]
    # one model worker: the mean of 5 jobs at once is about (5+1)/2 x S, not 5 x S
    assert 0.6 < ratio < 1.4, ratio
    assert Path(report.config.outputs["html"]).exists()
    assert_pinning_recorded(report)
    assert set(report.extra["service_inflation"]["stages"]) == {"u=1", "u=5"}
