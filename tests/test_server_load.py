"""The server under load, on real processes (tiny CPU model): health and uploads stay responsive while
200 clients long-poll with the model busy (bench/longpoll.py prints the figures), and a SIGKILL in the
middle of a burst of 20 jobs, then a restart, ends with every job completed exactly once."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests
from PIL import Image

from clients.base import TargetTimeoutError, TargetUnavailableError
from clients.local import LocalClient
from server.process import ServerProcess

pytestmark = pytest.mark.slow


def test_health_and_upload_answer_while_200_clients_long_poll():
    from bench.longpoll import report, run

    result = run(clients=200, seconds=8)
    print(report(result))
    assert result["pollers_in_flight_min"] == 200  # every poll parked at the server the whole time
    assert result["model_busy_job_status"] == "running"
    assert result["statuses"] == [200, 201]
    for name in ("healthz", "upload"):
        assert result[name]["count"] >= 20
        # The goal (p99 <= 100 ms) is for a quiet machine, printed above; a stalled event loop would put
        # these at the 60 s long-poll window instead.
        assert result[name]["p99"] < 1.0, result[name]


def _completed_total(url: str) -> int:
    text = requests.get(url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('decomposer_jobs_finished_total{status="completed"}'):
            return int(float(line.split()[-1]))
    return 0


def test_sigkill_during_a_burst_of_20_then_restart_completes_every_job_once(tmp_path):
    image = tmp_path / "poster.png"
    Image.new("RGB", (64, 64), (20, 120, 200)).save(image)
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir=data_dir, cache_ttl=0, queue_limit=32).start()
    users = 20
    job_ids: list[str | None] = [None] * users
    outcomes: list[str | None] = [None] * users
    retries = [0] * users
    submitted = threading.Barrier(users + 1)

    def user(i: int) -> None:
        client = LocalClient(server.url, deadline_s=600, read_timeout_s=30, poll_wait_s=10)
        try:
            deadline = time.monotonic() + 600
            file_id = client.upload(str(image), deadline)
            job_ids[i] = client.submit(file_id, 1, 640, deadline)[0]["job_id"]
            submitted.wait(60)
            while True:  # the client's retry across the outage: resume long-polling the same job
                try:
                    outcomes[i] = client.wait_for(job_ids[i], deadline)["status"]
                    return
                except (TargetUnavailableError, TargetTimeoutError):
                    retries[i] += 1
                    time.sleep(0.5)
        finally:
            client.close()

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    try:
        submitted.wait(120)  # all 20 jobs accepted
        while _completed_total(server.url) < 3:  # a few done, one running, the rest queued
            time.sleep(0.05)
        t_kill = time.monotonic()
        server.kill()
        # what the killed process left behind, from its durable store
        at_kill = _statuses(data_dir)
        time.sleep(1.0)
        server.start()  # same data directory: the running job is re-queued, the queue reloaded
        restart_s = time.monotonic() - t_kill
        for t in threads:
            t.join(600)
        completed_after = _completed_total(server.url)
    finally:
        server.stop()

    rows = _statuses(data_dir)
    completed_before = sum(r["status"] == "completed" for r in at_kill.values())
    running_at_kill = [j for j, r in at_kill.items() if r["status"] == "running"]
    print(f"burst of {users}: {completed_before} completed before the SIGKILL, {len(running_at_kill)} running, "
          f"{completed_after} completed after the restart ({restart_s:.1f} s from kill to ready); client "
          f"retries across the outage: {sum(retries)}; runs per job: {sorted(r['runs'] for r in rows.values())}")
    assert all(job_ids) and len(set(job_ids)) == users
    assert set(rows) == set(job_ids)  # none lost, none added
    assert outcomes == ["completed"] * users
    assert all(rows[j]["status"] == "completed" and rows[j]["finished_at"] for j in job_ids)
    # completed exactly once: what the killed process had completed plus what the new one completed
    assert completed_before + completed_after == users
    # a job was started twice only if it was running at the kill; it still completed once
    assert {j for j, r in rows.items() if r["runs"] == 2} == set(running_at_kill)
    assert all(r["runs"] in (1, 2) for r in rows.values())
    assert sum(retries) > 0  # the clients did see the outage


def _statuses(data_dir) -> dict[str, dict]:
    db = sqlite3.connect(str(data_dir / "jobs.sqlite3"))
    db.row_factory = sqlite3.Row
    rows = {r["job_id"]: dict(r) for r in db.execute("SELECT job_id, status, runs, finished_at FROM jobs")}
    db.close()
    return rows
