"""Open-loop arrivals through Locust with the stand-in client (tests/fakeclient.py: one FIFO
worker per process, `LOADLAB_FAKE_SERVICE_S` each): the arrival sequence sent is the planned one,
arrivals do not wait for responses, the cap drops instead of delaying, a trace is replayed, the
master splits the sequence among workers, and the web UI form starts an open-loop run. Locust runs
in subprocesses only (see conftest.py)."""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from loadlab.schema import Report
from locustfiles.arrivals import OpenLoopPlan
from server.process import free_port
from tests.locust_helpers import FAKE, LOCUSTFILE, run_distributed


def locust(args, tmp_path, service_s, timeout=90):
    env = {**os.environ, "LOADLAB_FAKE_SERVICE_S": str(service_s)}
    cmd = [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--host", "http://fake", *FAKE, *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def stats(json_file):
    return {(e["method"], e["name"]): e for e in json.loads(Path(json_file).read_text())}


def assert_sent(report, expected):
    """The recorded arrivals, in arrival order, are `expected` [(seconds from the run's origin, case)]
    (to the microsecond: epoch seconds carry about 0.2 us of float resolution)."""
    origin = report.stages[0].started_at
    jobs = sorted((j for s in report.stages for j in s.jobs), key=lambda j: j.extra["arrival"])
    assert [j.extra["arrival"] for j in jobs] == list(range(len(expected)))
    assert [j.case for j in jobs] == [c for _, c in expected]
    assert [j.scheduled - origin for j in jobs] == pytest.approx([t for t, _ in expected], abs=1e-5)


def planned(plan):
    return [(a.t_s, a.case) for a in plan.arrivals()]


def test_open_loop_sends_the_planned_arrivals_on_time_whatever_the_responses(tmp_path):
    """2/s then 6/s against one FIFO worker of 0.3 s (capacity 3.3/s): the second stage overloads it,
    yet every arrival is submitted when it is due (a closed loop would slow down with the server)."""
    out = tmp_path / "report.json"
    proc = locust(["--arrival", "poisson", "--rates", "2,6", "--stage-seconds", "3", "--seed", "5",
                   "--cases", "light,small", "--slo-e2e", "1", "--report-out", str(out),
                   "--json-file", str(tmp_path / "run")], tmp_path, service_s=0.3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = Report.load(out)
    plan = OpenLoopPlan(arrival="poisson", rates=[2, 6], stage_seconds=3, cases=["light", "small"], seed=5)
    assert report.config.load.mode == "open" and report.config.load.arrival == "poisson"
    assert report.config.load.rates_per_s == [2.0, 6.0] and report.config.load.seed == 5
    assert [(s.name, s.arrival_rate_per_s, s.duration_s) for s in report.stages] == [("r=2/s", 2.0, 3.0), ("r=6/s", 6.0, 3.0)]
    assert report.stages[1].started_at - report.stages[0].started_at == pytest.approx(3.0)
    assert_sent(report, planned(plan))
    jobs = [j for s in report.stages for j in s.jobs]
    assert all(j.status == "completed" for j in jobs)
    for stage in report.stages:
        late = stage.summary.lateness_s
        assert late.count == len(stage.jobs) and late.min >= 0
        assert late.max < 0.5      # submitted when due, not when the worker was free (queueing adds seconds)
    for j in jobs:                    # latency counts from the scheduled time
        assert j.e2e_s == pytest.approx(j.finished - j.scheduled, abs=1e-3)
    # the overload shows as queueing: the last arrivals waited behind many others
    assert report.stage("r=6/s").summary.max > 5 * 0.3
    # --slo-e2e: every stage scores attainment and goodput; the end-of-run log prints them with the tail
    assert report.config.slo_e2e_s == 1.0
    for stage in report.stages:
        s = stage.summary
        assert stage.slo_e2e_s == 1.0
        assert s.slo_attainment == sum(j.e2e_s <= 1.0 for j in stage.jobs) / len(stage.jobs)
        assert f"[loadlab] {stage.name}: {s.completed}/{s.jobs} completed" in proc.stderr
        assert f"p99.9 {s.p99_9:.2f}" in proc.stderr
        assert f"SLO 1 s: {s.slo_attainment * 100:.1f} % attained, goodput {s.goodput_per_s:.3f}/s" in proc.stderr
    assert report.stage("r=6/s").summary.slo_attainment < 1.0   # the overload missed the SLO
    rows = stats(tmp_path / "run.json")
    assert sum(e["num_requests"] for (m, n), e in rows.items() if m == "job" and n.endswith("[r=6/s]")) == \
        len(report.stage("r=6/s").jobs)


def test_max_in_flight_drops_arrivals_and_never_delays_them(tmp_path):
    out = tmp_path / "report.json"
    proc = locust(["--arrival", "constant", "--rates", "10", "--stage-seconds", "2", "--max-in-flight", "2",
                   "--report-out", str(out), "--json-file", str(tmp_path / "run")], tmp_path, service_s=0.5)
    assert proc.returncode == 1, proc.stderr[-3000:]   # drops are Locust failures
    report = Report.load(out)
    assert report.config.load.max_in_flight == 2
    jobs = report.stage("r=10/s").jobs
    assert len(jobs) == 20                               # every arrival has a record
    dropped = [j for j in jobs if j.status == "dropped"]
    done = [j for j in jobs if j.status == "completed"]
    assert len(dropped) + len(done) == 20 and len(dropped) >= 10
    assert all(j.scheduled is not None and "cap 2" in j.error for j in dropped)
    assert max(j.lateness_s for j in done) < 0.25        # the ones sent were sent on time
    # never more than 2 jobs in flight
    events = sorted([(j.submitted, 1) for j in done] + [(j.finished, -1) for j in done])
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert peak <= 2
    assert report.stage("r=10/s").summary.dropped == len(dropped)
    assert stats(tmp_path / "run.json")[("dropped", "light [r=10/s]")]["num_failures"] == len(dropped)


def test_trace_replay_sends_exactly_the_traces_arrivals(tmp_path):
    trace = tmp_path / "trace.csv"
    rows = [(0.0, "light"), (0.4, "small"), (1.0, "light"), (2.2, "light"), (2.2, "small"), (5.0, "light")]
    trace.write_text("t_s,case\n" + "".join(f"{t},{c}\n" for t, c in rows))
    out = tmp_path / "report.json"
    proc = locust(["--arrival", "trace", "--trace", str(trace), "--time-scale", "2", "--stage-seconds", "1",
                   "--report-out", str(out)], tmp_path, service_s=0.05)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = Report.load(out)
    assert report.config.load.mode == "trace" and report.config.load.trace == str(trace)
    assert report.config.load.time_scale == 2.0
    assert_sent(report, [(t / 2, c) for t, c in rows])
    assert [(s.name, s.arrival_rate_per_s, len(s.jobs)) for s in report.stages] == [
        ("t=0-1s", 3.0, 3), ("t=1-2s", 2.0, 2), ("t=2-3s", 1.0, 1)]
    assert sorted(c.name for c in report.cases) == ["light", "small"]


def test_distributed_master_splits_the_sequence_one_process_would_send(tmp_path):
    out = tmp_path / "report.json"
    run_distributed(["--host", "http://fake", *FAKE, "--arrival", "gamma", "--burstiness", "0.5", "--rates", "8",
                     "--stage-seconds", "3", "--seed", "9", "--report-out", str(out)],
                    tmp_path, {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0.05"})
    report = Report.load(out)
    plan = OpenLoopPlan(arrival="gamma", burstiness=0.5, rates=[8], stage_seconds=3, cases=["light"], seed=9)
    assert_sent(report, planned(plan))
    jobs = report.stage("r=8/s").jobs
    by_parity = {}
    for j in jobs:   # arrival i went to worker i mod 2
        by_parity.setdefault(j.extra["arrival"] % 2, set()).add(j.extra["generator"])
    assert len(by_parity[0]) == len(by_parity[1]) == 1 and by_parity[0] != by_parity[1]


def test_web_ui_form_starts_an_open_loop_run_and_stop_ends_it(tmp_path):
    """Arrival fields in the web UI form start an open-loop run; Stop sends no further arrival, lets
    the jobs in flight finish, and the stage ends at the stop (not after the jobs then in flight)."""
    port = free_port()
    out = tmp_path / "report.json"
    ui = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-port", str(port), "--host", "http://fake",
         "--report-out", str(out), *FAKE],
        cwd=tmp_path, env={**os.environ, "LOADLAB_FAKE_SERVICE_S": "0.3"}, stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "ui.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        form = urllib.parse.urlencode({"user_count": 1, "spawn_rate": 1, "host": "http://fake", "arrival": "constant",
                                       "rates": "5", "stage_seconds": 30}).encode()
        assert json.loads(urllib.request.urlopen(base + "/swarm", data=form, timeout=10).read())["success"]
        time.sleep(4)
        stopped = time.time()
        urllib.request.urlopen(urllib.request.Request(base + "/stop", method="POST"), timeout=30)
        for _ in range(60):
            if out.exists():
                break
            time.sleep(0.5)
        report = Report.load(out)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    assert report.config.load.mode == "open" and report.config.load.arrival == "constant"
    stage = report.stage("r=5/s")
    end = stage.started_at + stage.duration_s
    assert end == pytest.approx(stopped, abs=1.0)
    jobs = stage.jobs
    # 5/s for about 3 s, one FIFO worker of 0.3 s: a queue was in flight at the stop, and it finished
    assert len(jobs) >= 10 and all(j.status == "completed" for j in jobs)
    assert sorted(j.extra["arrival"] for j in jobs) == list(range(len(jobs)))
    assert max(j.scheduled for j in jobs) <= end < max(j.finished for j in jobs)
