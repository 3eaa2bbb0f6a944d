"""Issue 12 on the load generator: the web UI and the master listen on loopback unless told
otherwise; an exception inside a user's job is a failed job (a web-UI re-run with other cases, a
client that cannot be built), never a stage that waits forever. Locust runs in subprocesses only."""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from loadlab.schema import Report
from locustfiles.stages import DEFAULT_MAX_STAGE_S, StagePlan
from server.process import free_port

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "decompose.py")
FAKE = ["--client-factory", "tests.fakeclient:make_client"]
ENV = {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0.1"}


def listening(pid: int, port: int, timeout: float = 30.0) -> str:
    """The local address process `pid` listens on at `port` (waits for the socket to appear)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                return conn.laddr.ip
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}")


def start_ui(tmp_path, *args):
    log = open(tmp_path / f"ui-{time.monotonic_ns()}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args],
                            cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=log)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def test_web_ui_and_master_bind_loopback_by_default_and_the_user_can_override(tmp_path):
    web, master = free_port(), free_port()
    proc = start_ui(tmp_path, "--master", "--master-bind-port", str(master), "--web-port", str(web),
                    "--host", "http://fake", *FAKE)
    try:
        assert listening(proc.pid, web) == "127.0.0.1"
        assert listening(proc.pid, master) == "127.0.0.1"
    finally:
        stop(proc)
    # an explicit --web-host / --master-bind-host still wins (127.0.0.2: another loopback address)
    web, master = free_port(), free_port()
    proc = start_ui(tmp_path, "--master", "--master-bind-host", "127.0.0.2", "--master-bind-port", str(master),
                    "--web-host", "127.0.0.2", "--web-port", str(web), "--host", "http://fake", *FAKE)
    try:
        assert listening(proc.pid, web) == "127.0.0.2"
        assert listening(proc.pid, master) == "127.0.0.2"
    finally:
        stop(proc)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def swarm_and_wait(base, form, entry, timeout=60):
    """Start a run from the web UI's form; the stats rows once it stopped with `entry` among them
    (the UI caches /stats/requests for a moment, so the previous run's rows may show first)."""
    data = urllib.parse.urlencode({"user_count": 1, "spawn_rate": 1, **form}).encode()
    answer = json.loads(urllib.request.urlopen(base + "/swarm", data=data, timeout=10).read())
    assert answer["success"], answer
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = get_json(base + "/stats/requests")
        rows = {r["name"]: r for r in stats["stats"]}
        if stats["state"] == "stopped" and entry in rows:
            return rows
        time.sleep(0.3)
    raise AssertionError(f"run {form} did not stop with an entry {entry!r} within {timeout} s")


def test_web_ui_rerun_with_other_cases_runs_and_records_every_job(tmp_path):
    """Test images were built once per process: a second web-UI run with other --cases raised
    KeyError inside the user and its burst stage waited for the lost jobs forever."""
    port = free_port()
    out = tmp_path / "report.json"
    ui = start_ui(tmp_path, "--web-port", str(port), "--host", "http://fake", "--report-out", str(out), *FAKE)
    base = f"http://127.0.0.1:{port}"
    try:
        listening(ui.pid, port)
        form = {"host": "http://fake", "stages": "2", "jobs_per_user": 1}
        rows = swarm_and_wait(base, {**form, "cases": "light"}, "light [u=2]")
        assert rows["light [u=2]"]["num_requests"] == 2
        rows = swarm_and_wait(base, {**form, "cases": "small"}, "small [u=2]")
        assert rows["small [u=2]"]["num_requests"] == 2 and rows["small [u=2]"]["num_failures"] == 0
        for _ in range(20):  # the report is written at test stop
            report = Report.load(out) if out.exists() else None
            if report and report.config.cases == "small":
                break
            time.sleep(0.5)
        assert [(s.name, [j.case for j in s.jobs], s.summary.completed) for s in report.stages] == [
            ("u=2", ["small", "small"], 2)]
    finally:
        stop(ui)


@pytest.mark.parametrize("load, stage", [
    (["--stages", "2", "--jobs-per-user", "1"], "u=2"),
    (["--arrival", "constant", "--rates", "2", "--stage-seconds", "1"], "r=2/s"),
], ids=["burst", "open-loop"])
def test_a_job_that_raises_outside_the_client_call_is_a_failed_job(tmp_path, load, stage):
    """`--target fallback` with no URL makes building the client raise (ValueError): each job is
    recorded as failed with the reason, and the stage ends instead of waiting forever."""
    out = tmp_path / "report.json"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--host", " , ", "--target", "fallback",
             *load, "--cases", "light", "--report-out", str(out), "--json-file", str(tmp_path / "run")],
            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the stage waited for jobs that were never recorded")
    assert proc.returncode == 1, proc.stderr[-3000:]  # Locust's exit code when requests failed
    jobs = Report.load(out).stage(stage).jobs
    assert len(jobs) == 2 and all(j.status == "failed" and "fallback needs" in j.error for j in jobs)
    stats = {e["name"]: e for e in json.loads((tmp_path / "run.json").read_text())}
    assert stats[f"light [{stage}]"]["num_failures"] == 2


def test_a_burst_stage_has_an_upper_bound_by_default():
    plan = StagePlan(users=[3], jobs_per_user=1)
    assert plan.max_stage_seconds == DEFAULT_MAX_STAGE_S > 0
    assert plan.step(0, DEFAULT_MAX_STAGE_S - 1, jobs_ended=0) == 0
    assert plan.step(0, DEFAULT_MAX_STAGE_S, jobs_ended=0) is None   # no job ended, the stage still ends
    assert StagePlan(users=[3], jobs_per_user=1, max_stage_seconds=None).step(0, 1e9, 0) == 0  # 0/None = unbounded
