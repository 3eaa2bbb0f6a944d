"""`python -m bench single|concurrency` end to end with the stand-in client (no server, no model):
argument handling, the report they write and the FIFO-ideal ratio."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.concurrency import ideal_mean
from loadlab import article
from loadlab.schema import Report

ROOT = Path(__file__).resolve().parent.parent
FAKE = ["--url", "http://fake", "--client-factory", "tests.fakeclient:make_client"]


def bench(args, tmp_path, service_s=0.2, timeout=120):
    # the repository root first: `tests.fakeclient` and this worktree's packages, whatever the cwd
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "LOADLAB_FAKE_SERVICE_S": str(service_s), "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_fifo_ideal():
    assert ideal_mean(5, 1, 28.7) == pytest.approx(86.1)      # the article's N=5 on one GPU
    assert ideal_mean(10, 1, 28.7) == pytest.approx(157.85)
    assert ideal_mean(4, None, 2.0) == 8.0                     # closed loop: N in flight
    assert ideal_mean(4, 2, 2.0) is None
    assert ideal_mean(4, 1, 2.0, workers=2) is None


def test_single_writes_one_stage_per_case(tmp_path):
    out = tmp_path / "single.json"
    proc = bench(["single", "--cases", "light,small", "--runs", "3", "--warmup", "1", "--out", str(out), *FAKE], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = Report.load(out)
    assert report.kind == "measured" and report.config.load.mode == "single" and report.config.server.workers == 1
    assert [(s.name, s.concurrency, len(s.jobs)) for s in report.stages] == [("light [u=1]", 1, 3), ("small [u=1]", 1, 3)]
    split = report.extra["split"]["small [u=1]"]
    assert split["inference_s"]["mean"] == pytest.approx(0.2)
    # the table: our figures per case, the article's mean ± std beside the case it measured
    rows = {r.split()[0]: r for r in proc.stdout.splitlines() if r.split()[:1] in (["light"], ["small"])
            and "/" in r.split()[1]}
    assert rows["small"].split()[1:3] == ["3/3", f"{report.stage('small [u=1]').summary.mean:.2f}"]
    assert rows["small"].endswith(f"| {article.SINGLE['local-3090']['small'][0]} ± "
                                  f"{article.SINGLE['local-3090']['small'][1]} s")
    assert rows["light"].endswith("| -")  # not an article case


def test_concurrency_burst_reports_fifo_ratio(tmp_path):
    out = tmp_path / "conc.json"
    proc = bench(["concurrency", "--stages", "1,4", "--jobs-per-user", "1", "--cases", "light", "--out", str(out),
                  "--locust-dir", str(tmp_path / "locust"), *FAKE], tmp_path, service_s=0.3)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "stage u=4 started" in proc.stdout  # progress shown
    report = Report.load(out)
    assert [(s.name, len(s.jobs)) for s in report.stages] == [("u=1", 1), ("u=4", 4)]
    fifo = report.extra["fifo_ideal"]
    assert fifo["service_s"] == pytest.approx(0.3, rel=0.2)
    # the stand-in is one FIFO worker: the ratio is near 1 (spawning spreads submits a little)
    assert 0.7 < fifo["stages"]["u=4"]["ratio"] < 1.3
    assert list((tmp_path / "locust").glob("*.html")) and list((tmp_path / "locust").glob("*_stats.csv"))


def test_server_bench_burst_is_one_fifo_queue(monkeypatch, tmp_path):
    from bench.server_bench import JobServerBench, until_done_s
    from loadlab.cases import ALL_CASES

    monkeypatch.setenv("LOADLAB_FAKE_SERVICE_S", "0.1")
    bench_ = JobServerBench("http://fake", ALL_CASES["light"], str(tmp_path / "x.png"), "tests.fakeclient:make_client")
    records, makespan = bench_.burst(4)
    done = sorted(until_done_s(r) for r in records)
    # one worker, 4 jobs released together: they end 0.1, 0.2, 0.3, 0.4 s after the gate
    assert done == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.05)
    assert makespan == pytest.approx(0.4, abs=0.05)


def test_server_command_prints_the_fifo_ratio(tmp_path):
    proc = bench(["server", "--concurrency", "1,4", "--single-runs", "2", *FAKE], tmp_path, service_s=0.1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "S = 0.10" in proc.stdout
    # N, ok, mean, p95, ideal, mean/ideal, ...: 4 jobs at once on one worker average (4+1)/2 x S
    n, ok, mean, _, ideal, ratio = next(r for r in map(str.split, proc.stdout.splitlines()) if r[:1] == ["4"])[:6]
    assert ok == "4/4" and float(mean) == pytest.approx(0.25, abs=0.04) and float(ideal) == pytest.approx(0.25, abs=0.02)
    assert 0.85 < float(ratio) < 1.15, proc.stdout
