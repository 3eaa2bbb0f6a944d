"""The Locust plumbing (shape, stage tags, job ledger, measured report, distributed messages) with the
stand-in client of tests/fakeclient.py: seconds, no server, no model. Locust runs in
subprocesses only (see conftest.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from loadlab.schema import Report
from tests.locust_helpers import FAKE, LOCUSTFILE, ROOT, run_distributed


def locust(args, tmp_path, service_s=0.2, timeout=120):
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)  # tests.fakeclient
    env = {**os.environ, "LOADLAB_FAKE_SERVICE_S": str(service_s), "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def entries(json_file):
    return {e["name"]: e for e in json.loads(Path(json_file).read_text()) if e["method"] == "job"}


def test_burst_stages_give_one_entry_per_stage_and_a_measured_report(tmp_path):
    out = tmp_path / "report.json"
    proc = locust(["--headless", "--host", "http://fake", "--stages", "1,3", "--jobs-per-user", "2",
                   "--cases", "light", "--report-out", str(out), "--json-file", str(tmp_path / "run"),
                   "--csv", str(tmp_path / "run"), *FAKE], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = Report.load(out)
    assert report.kind == "measured" and report.target == "local"
    assert report.config.load.mode == "burst" and report.config.load.users == [1, 3] and report.config.cases == "light"
    assert [(s.name, s.concurrency, s.jobs_per_user, len(s.jobs)) for s in report.stages] == [
        ("u=1", 1, 2, 2), ("u=3", 3, 2, 6)]
    assert all(j.status == "completed" and j.e2e_s >= 0.2 and j.service_s == 0.2 for s in report.stages for j in s.jobs)
    # one FIFO stand-in worker: a job waits for the other 2 users' jobs; the stage takes 6 x S
    u3 = report.stage("u=3")
    assert u3.summary.completed == 6 and u3.summary.max >= 3 * 0.2 * 0.9
    assert u3.summary.wall_s >= 6 * 0.2 * 0.9
    stats = entries(tmp_path / "run.json")
    assert {n: e["num_requests"] for n, e in stats.items()} == {"light [u=1]": 2, "light [u=3]": 6}
    assert "light [u=3]" in (tmp_path / "run_stats.csv").read_text()


def test_closed_loop_holds_each_stage_and_stops_by_itself(tmp_path):
    out = tmp_path / "report.json"
    proc = locust(["--headless", "--host", "http://fake", "--stages", "1,2", "--stage-seconds", "2",
                   "--cases", "light", "--report-out", str(out), *FAKE], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "all stages done" in proc.stderr
    report = Report.load(out)
    assert report.config.load.mode == "closed"
    for stage in report.stages:
        assert stage.duration_s is not None and 1.5 <= stage.duration_s <= 2.5
        assert len(stage.jobs) >= 5
    # closed loop on one FIFO stand-in: 2 users in flight -> about 2 x S each
    assert report.stage("u=2").summary.mean > 1.5 * 0.2


def test_rejections_and_failures_are_locust_failures_with_reason(tmp_path):
    out = tmp_path / "report.json"
    proc = locust(["--headless", "--host", "http://fake", "--stages", "2", "--jobs-per-user", "2",
                   "--cases", "light", "--report-out", str(out), "--json-file", str(tmp_path / "run"), *FAKE],
                  tmp_path, service_s=-1)  # the stand-in rejects every job when S < 0
    assert proc.returncode == 1  # Locust's exit code when any request failed
    report = Report.load(out)
    jobs = report.stage("u=2").jobs
    assert len(jobs) == 4 and all(j.status == "rejected" and "RejectedError" in j.error for j in jobs)
    assert report.stage("u=2").summary.success_rate == 0.0
    stats = entries(tmp_path / "run.json")
    assert stats["light [u=2]"]["num_failures"] == 4


def test_distributed_master_aggregates_two_workers(tmp_path):
    out = tmp_path / "report.json"
    run_distributed(["--host", "http://fake", "--stages", "2,4", "--jobs-per-user", "1", "--cases", "light",
                     "--report-out", str(out), "--json-file", str(tmp_path / "run"), *FAKE],
                    tmp_path, {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0.3"})
    report = Report.load(out)
    assert [(s.name, len(s.jobs)) for s in report.stages] == [("u=2", 2), ("u=4", 4)]
    assert len({j.extra["generator"] for s in report.stages for j in s.jobs}) == 2  # both workers ran jobs
    stats = entries(tmp_path / "run.json")
    assert {n: e["num_requests"] for n, e in stats.items()} == {"light [u=2]": 2, "light [u=4]": 4}
