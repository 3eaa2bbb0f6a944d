"""Locust against the tiny-model server, end to end (slow): headless stages 1 and 5, the web UI
driven through its HTTP API with a Chromium screenshot, and master + two workers on loopback.
Locust runs in subprocesses only (see conftest.py)."""

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from loadlab.schema import Report
from server.process import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "decompose.py")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    from clients.local import LocalClient
    from loadlab.cases import LIGHT_CASES, test_image
    from server.process import ServerProcess

    with ServerProcess(max_batch=1, cache_ttl=0) as server:  # every job runs the model
        # one warm-up job: the first inference after start is several times slower
        case = LIGHT_CASES["light"]
        client = LocalClient(server.url)
        client.decompose_image(str(test_image(case, tmp_path_factory.mktemp("warm"))), case.layers, case.resolution)
        client.close()
        yield server.url


def job_entries(json_file):
    return {e["name"]: e for e in json.loads(Path(json_file).read_text()) if e["method"] == "job"}


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_headless_stages_1_and_5_give_job_entries_and_a_measured_report(server_url, tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--host", server_url,
         "--stages", "1,5", "--jobs-per-user", "1", "--cases", "light", "--report-out", str(out),
         "--json-file", str(tmp_path / "run"), "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "run.html")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    stats = job_entries(tmp_path / "run.json")
    assert {n: (e["num_requests"], e["num_failures"]) for n, e in stats.items()} == {
        "light [u=1]": (1, 0), "light [u=5]": (5, 0)}
    assert "light [u=5]" in (tmp_path / "run.html").read_text()
    report = Report.load(out)
    assert report.kind == "measured" and report.config.load.mode == "burst"
    assert [(s.name, s.concurrency, len(s.jobs)) for s in report.stages] == [("u=1", 1, 1), ("u=5", 5, 5)]
    for stage in report.stages:
        for job in stage.jobs:
            assert job.status == "completed", job.error
            assert job.service_s > 0 and job.queue_s is not None and job.e2e_s >= job.service_s
            assert job.extra["layers"] == 2
    s1 = report.stage("u=1").summary
    s5 = report.stage("u=5").summary
    assert s5.success_rate == 1.0
    # five jobs at once on one model worker queue: the last to start waited for the other four's model time
    # (each stage's own times: a machine slower in one stage than in the other cannot break it)
    assert s1.count == 1
    burst = sorted(report.stage("u=5").jobs, key=lambda j: j.started)
    assert burst[-1].queue_s >= 0.9 * sum(j.service_s for j in burst[:-1])
    # the report keeps exact times; Locust's own figure agrees to within its rounding
    assert stats["light [u=5]"]["total_response_time"] / 1000 == pytest.approx(
        sum(j.e2e_s for j in report.stage("u=5").jobs), rel=0.05)


def test_web_ui_run_started_over_http_shows_job_stats_and_screenshot(server_url, tmp_path):
    port = free_port()
    out = tmp_path / "report.json"
    ui = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-host", "127.0.0.1", "--web-port", str(port),
         "--host", server_url, "--report-out", str(out)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "ui.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                assert "locust" in urllib.request.urlopen(base + "/", timeout=2).read().decode().lower()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("web UI did not come up: " + (tmp_path / "ui.log").read_text()[-3000:])
        form = urllib.parse.urlencode({"user_count": 1, "spawn_rate": 1, "host": server_url, "stages": "3",
                                       "jobs_per_user": 1, "cases": "light"}).encode()
        answer = json.loads(urllib.request.urlopen(base + "/swarm", data=form, timeout=10).read())
        assert answer["success"], answer
        # wait for the first finished job, then photograph the UI while the other two still run
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stats = get_json(base + "/stats/requests")
            rows = {r["name"]: r for r in stats["stats"]}
            if rows.get("light [u=3]", {}).get("num_requests", 0) >= 1:
                break
            time.sleep(0.5)
        else:
            pytest.fail("no job statistics in the web UI: " + (tmp_path / "ui.log").read_text()[-3000:])
        assert stats["state"] in ("running", "spawning")
        shot = tmp_path / "webui.png"
        if CHROMIUM:
            subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,900",
                            f"--screenshot={shot}", base + "/"], capture_output=True, timeout=90)
            assert shot.exists() and shot.stat().st_size > 10_000
            keep = ROOT / "reports" / "locust"
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, keep / "webui-during-run.png")
        while time.monotonic() < deadline and get_json(base + "/stats/requests")["state"] != "stopped":
            time.sleep(0.5)
        rows = {r["name"]: r for r in get_json(base + "/stats/requests")["stats"]}
        assert rows["light [u=3]"]["num_requests"] == 3 and rows["light [u=3]"]["num_failures"] == 0
        for _ in range(20):  # the report is written at test stop
            if out.exists():
                break
            time.sleep(0.5)
        assert [(s.name, len(s.jobs)) for s in Report.load(out).stages] == [("u=3", 3)]
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    if not CHROMIUM:
        pytest.skip("chromium not installed (apt-get install -y chromium): web UI checked, screenshot not taken")


def test_distributed_master_and_two_workers_on_loopback(server_url, tmp_path):
    port = free_port()
    out = tmp_path / "report.json"
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--master", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(port), "--expect-workers", "2", "--headless", "--host", server_url,
         "--stages", "2", "--jobs-per-user", "1", "--cases", "light", "--report-out", str(out),
         "--json-file", str(tmp_path / "run")],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    workers = [subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--worker", "--master-host", "127.0.0.1",
         "--master-port", str(port)], cwd=tmp_path, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        _, err = master.communicate(timeout=180)
        assert master.returncode == 0, err[-4000:]
    finally:
        for p in [master, *workers]:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
    stats = job_entries(tmp_path / "run.json")
    assert stats["light [u=2]"]["num_requests"] == 2 and stats["light [u=2]"]["num_failures"] == 0
    report = Report.load(out)
    jobs = report.stage("u=2").jobs
    assert len(jobs) == 2 and all(j.status == "completed" for j in jobs)
    assert len({j.extra["generator"] for j in jobs}) == 2  # one user on each worker


def test_open_loop_poisson_against_the_server_records_every_arrival(server_url, tmp_path):
    """Open loop with the real LocalClient: a client per job in flight, every planned arrival
    recorded from its scheduled time, raw HTTP calls as their own entries."""
    from locustfiles.arrivals import OpenLoopPlan

    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--host", server_url,
         "--arrival", "poisson", "--rates", "1.5", "--stage-seconds", "4", "--seed", "4", "--cases", "light",
         "--slo-e2e", "30", "--report-out", str(out), "--json-file", str(tmp_path / "run")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    plan = OpenLoopPlan(arrival="poisson", rates=[1.5], stage_seconds=4, cases=["light"], seed=4)
    report = Report.load(out)
    stage = report.stage("r=1.5/s")
    assert len(stage.jobs) == len(plan.arrivals()) >= 2
    for job in stage.jobs:
        assert job.status == "completed", job.error
        assert job.scheduled is not None and 0 <= job.lateness_s < 0.5 and job.service_s > 0
        assert job.e2e_s == pytest.approx(job.finished - job.scheduled, abs=1e-3)
    assert stage.summary.slo_attainment is not None and stage.arrival_rate_per_s == 1.5
    names = {(e["method"], e["name"]) for e in json.loads((tmp_path / "run.json").read_text())}
    assert ("job", "light [r=1.5/s]") in names and ("http", "POST /api/decompose") in names
