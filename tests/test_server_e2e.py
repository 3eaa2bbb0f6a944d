"""The job server as a real process (`python -m server` under uvicorn, tiny CPU pipeline) through
`ServerProcess`: the contract end to end, long-poll latency, kill -9 and restart with nothing lost,
graceful SIGTERM. Plus one in-process real pipeline call that runs in the default (fast) suite."""

from __future__ import annotations

import base64
import io
import sqlite3
import time
import zipfile

import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from server.app import create_app
from server.process import ServerProcess
from server.settings import Settings


def png(color=(255, 255, 255), px=64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (px, px), color).save(buf, "PNG")
    return buf.getvalue()


def upload(url, data) -> str:
    r = requests.post(f"{url}/api/upload", files={"file": ("x.png", data, "image/png")}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["file_id"]


def submit(url, file_id, layers, resolution=640) -> str:
    r = requests.post(f"{url}/api/decompose", json={"file_id": file_id, "num_layers": layers,
                                                    "resolution": resolution}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def long_poll(url, job_id, timeout=120.0) -> tuple[dict, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = requests.get(f"{url}/api/status/{job_id}", params={"wait": 30}, timeout=40)
        received = time.time()
        body = r.json()
        if body["status"] in ("completed", "failed"):
            return body, received
    raise AssertionError(f"job {job_id} not finished in {timeout} s")


def test_real_pipeline_in_process(tiny_model, tmp_path):
    """Default suite: one real pipeline call through the app (no subprocess)."""
    app = create_app(Settings(data_dir=tmp_path), model_loader=lambda _s: [tiny_model])
    with TestClient(app) as c:
        deadline = time.monotonic() + 30
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        fid = c.post("/api/upload", files={"file": ("x.png", png(), "image/png")}).json()["file_id"]
        job_id = c.post("/api/decompose", json={"file_id": fid, "num_layers": 2, "resolution": 640}).json()["job_id"]
        body = c.get(f"/api/status/{job_id}", params={"wait": 60}).json()
        assert body["status"] == "completed", body
        assert body["inference_s"] > 0
        layers = zipfile.ZipFile(io.BytesIO(c.get(f"/api/result/{job_id}").content))
        assert layers.namelist() == ["layer_0.png", "layer_1.png"]
        assert all(Image.open(layers.open(n)).mode == "RGBA" for n in layers.namelist())


@pytest.mark.slow
def test_contract_end_to_end_real_server():
    with ServerProcess(cache_ttl=86400) as server:
        url = server.url
        assert server.time_to_ready_s > 0 and server.ready_info["ready"] is True
        model = server.ready_info["model"]
        assert model["kind"] == "tiny" and model["load_s"] > 0
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200

        fid = upload(url, png())
        job_id = submit(url, fid, 2)
        body, received = long_poll(url, job_id)
        assert body["status"] == "completed" and body["cached"] is False and body["batch_size"] == 1
        # long-poll wakes at the job's end, not at a polling tick
        assert received - body["finished_at"] < 0.05, received - body["finished_at"]
        z = zipfile.ZipFile(io.BytesIO(requests.get(f"{url}/api/result/{job_id}", timeout=10).content))
        assert z.namelist() == ["layer_0.png", "layer_1.png"]
        layer = Image.open(io.BytesIO(requests.get(f"{url}/api/result/{job_id}/layers/1", timeout=10).content))
        assert layer.mode == "RGBA"

        # the same input again: answered from the cache, no pipeline call
        again = requests.post(f"{url}/api/decompose", json={"file_id": fid, "num_layers": 2.0, "resolution": 640.0},
                              timeout=10).json()
        assert again["cached"] is True and again["status"] == "completed"

        # Vertex predict on the same queue, real pipeline call (different layers → not cached)
        r = requests.post(f"{url}/v1/projects/p/locations/l/endpoints/e:predict", timeout=120,
                          json={"instances": [{"image": base64.b64encode(png()).decode(), "layers": 1.0,
                                               "resolution": 640.0}]})
        assert r.status_code == 200, r.text
        (pred,) = r.json()["predictions"]
        assert len(pred["layers"]) == 1 and pred["timings"]["inference_s"] > 0 and pred["cached"] is False
        metrics = requests.get(f"{url}/metrics", timeout=5).text
        assert "decomposer_cache_hits_total 1.0" in metrics
        assert "decomposer_inference_seconds_count 2.0" in metrics
        # fault injection is off by default: the route does not exist
        assert requests.post(f"{url}/_test/faults", json={"statuses": [429]}, timeout=5).status_code == 404


def _jobs(data_dir) -> dict[str, dict]:
    db = sqlite3.connect(str(data_dir / "jobs.sqlite3"))
    db.row_factory = sqlite3.Row
    rows = {r["job_id"]: dict(r) for r in db.execute("SELECT * FROM jobs")}
    db.close()
    return rows


@pytest.mark.slow
def test_kill9_restart_loses_nothing_and_sigterm_drains(tmp_path):
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir=data_dir, cache_ttl=0).start()
    try:
        fid = upload(server.url, png())
        ids = [submit(server.url, fid, 1) for _ in range(3)]  # cache off: three equal jobs all run
        deadline = time.monotonic() + 30
        while requests.get(f"{server.url}/api/status/{ids[0]}", timeout=5).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server.kill()  # SIGKILL: one job running, two queued
        before = _jobs(data_dir)
        assert before[ids[0]]["status"] == "running"
        assert [before[i]["status"] for i in ids[1:]] == ["queued", "queued"]

        server.start()  # same data dir
        results = [long_poll(server.url, i)[0] for i in ids]
        assert [r["status"] for r in results] == ["completed"] * 3
        after = _jobs(data_dir)
        assert len(after) == 3
        # the interrupted job started twice and completed once; the others ran once
        assert [after[i]["runs"] for i in ids] == [2, 1, 1]
        assert all(after[i]["finished_at"] for i in ids)
        assert int(requests.get(f"{server.url}/metrics", timeout=5).text.split(
            'decomposer_jobs_finished_total{status="completed"} ')[1].split()[0].split(".")[0]) == 3

        # graceful: SIGTERM while a job runs → it finishes (within the grace period), then exit
        last = submit(server.url, fid, 1)
        deadline = time.monotonic() + 30
        while requests.get(f"{server.url}/api/status/{last}", timeout=5).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t0 = time.monotonic()
        server.stop()
        assert server.proc.poll() is not None and time.monotonic() - t0 < 60
        assert _jobs(data_dir)[last]["status"] == "completed"
    finally:
        server.kill()
