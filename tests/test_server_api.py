"""The job server in-process (FastAPI TestClient) with a stand-in model: input validation, the queue,
the cache, failures, auth, Vertex routes and fault injection. Fast: no pipeline call here (the real
pipeline runs in tests/test_server_e2e.py)."""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from server.app import create_app
from server.settings import Settings
from tests.server_helpers import (
    AppClients,
    FakeModel,
    assert_error,
    png,
    submit,
    upload,
    wait_done,
)


@pytest.fixture
def make_client(tmp_path):
    clients = AppClients(tmp_path)
    yield clients
    clients.close()


# --- upload --------------------------------------------------------------------------------------

def test_upload_content_hash_stored_once(make_client):
    import hashlib

    c = make_client()
    data = png("red", (40, 30))
    r = c.post("/api/upload", files={"file": ("a.png", data, "image/png")})
    assert r.status_code == 201
    assert r.json() == {"file_id": hashlib.sha256(data).hexdigest(), "width": 40, "height": 30, "size_bytes": len(data)}
    assert upload(c, data) == r.json()["file_id"]
    uploads = c.app.state.services.files.uploads
    assert [p.name for p in uploads.iterdir()] == [r.json()["file_id"]]


@pytest.mark.parametrize("case, status, code", [
    ("not_image", 415, "not_an_image"), ("truncated", 422, "corrupt_image"), ("empty", 422, "empty_upload"),
    ("bomb", 413, "too_many_pixels"), ("oversize", 413, "upload_too_large")])
def test_upload_bad_input(make_client, case, status, code):
    c = make_client(max_pixels=100 * 100, max_upload_mb=0.05)
    data = {"not_image": b"hello, not an image" * 10, "truncated": png("blue", (64, 64), "JPEG")[:300],
            "empty": b"", "bomb": png("white", (101, 100)), "oversize": bytes(60 * 1024)}[case]
    assert_error(c.post("/api/upload", files={"file": ("x", data, "application/octet-stream")}), status, code)
    # nothing else disturbed: a good upload still works
    upload(c)


def test_upload_without_file_field(make_client):
    assert_error(make_client().post("/api/upload", data={"other": "x"}), 422, "invalid_request")


# --- decompose / status / result -------------------------------------------------------------------

def test_job_round_trip_and_status_fields(make_client):
    c = make_client()
    fid = upload(c)
    r = submit(c, fid, layers=3.0, resolution=640.0)  # floats from protobuf Struct are accepted
    assert r.status_code == 202 and r.json()["cached"] is False
    job = wait_done(c, r.json()["job_id"])
    assert job["status"] == "completed"
    for key in ("queue_position", "submitted_at", "started_at", "finished_at", "queue_s", "inference_s",
                "batch_size", "cached", "error", "file_id", "num_layers", "resolution"):
        assert key in job
    assert job["num_layers"] == 3 and job["batch_size"] == 1
    assert job["submitted_at"] <= job["started_at"] <= job["finished_at"]
    z = c.get(f"/api/result/{job['job_id']}")
    assert z.headers["content-type"] == "application/zip"
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert names == ["layer_0.png", "layer_1.png", "layer_2.png"]
    one = c.get(f"/api/result/{job['job_id']}/layers/2")
    assert one.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(one.content)).mode == "RGBA"
    assert_error(c.get(f"/api/result/{job['job_id']}/layers/3"), 404, "unknown_layer")


@pytest.mark.parametrize("body, status, code", [
    ({"num_layers": 0}, 422, "invalid_request"), ({"num_layers": 11}, 422, "invalid_request"),
    ({"num_layers": 2.5}, 422, "invalid_request"), ({"resolution": 512}, 422, "invalid_request"),
    ({"resolution": "big"}, 422, "invalid_request"), ({"file_id": "xyz"}, 422, "invalid_request"),
    ({"file_id": "a" * 64}, 404, "unknown_file"), ({"extra": 1}, 422, "invalid_request")])
def test_decompose_bad_input(make_client, body, status, code):
    c = make_client()
    fid = upload(c)
    r = c.post("/api/decompose", json={"file_id": fid, "num_layers": 2, "resolution": 640, **body})
    assert_error(r, status, code)
    assert c.model.calls == []


def test_malformed_json(make_client):
    c = make_client()
    r = c.post("/api/decompose", content=b'{"file_id": ', headers={"content-type": "application/json"})
    assert_error(r, 400, "malformed_json")
    assert "JSON" in r.json()["detail"]


def test_ids_malformed_and_unknown(make_client):
    c = make_client()
    for path in ("/api/status/nothex", "/api/result/nothex", "/api/result/nothex/layers/0"):
        assert_error(c.get(path), 422, "invalid_request")
    unknown = "0" * 32
    for path in (f"/api/status/{unknown}", f"/api/result/{unknown}", f"/api/result/{unknown}/layers/0"):
        assert_error(c.get(path), 404, "unknown_job")


def test_result_409_until_completed_and_queue_position(make_client):
    model = FakeModel()
    model.gate.clear()
    c = make_client(model)
    fid = upload(c)
    first = submit(c, fid).json()["job_id"]
    second = submit(c, fid, layers=3).json()["job_id"]
    time.sleep(0.2)
    assert_error(c.get(f"/api/result/{second}"), 409, "not_completed")
    assert c.get(f"/api/status/{first}").json()["status"] == "running"
    assert c.get(f"/api/status/{second}").json()["queue_position"] == 0
    model.gate.set()
    assert wait_done(c, second)["status"] == "completed"


def test_queue_full_429_with_retry_after(make_client):
    model = FakeModel()
    model.gate.clear()
    c = make_client(model, queue_limit=2)
    fid = upload(c)
    ids = [submit(c, fid, layers=n).json()["job_id"] for n in (1, 2, 3)]  # 1 running + 2 queued
    time.sleep(0.1)
    r = submit(c, fid, layers=4)
    assert_error(r, 429, "queue_full")
    assert int(r.headers["Retry-After"]) >= 1
    model.gate.set()
    assert [wait_done(c, j)["status"] for j in ids] == ["completed"] * 3
    assert submit(c, fid, layers=4).status_code == 202
    assert 'decomposer_rejected_total{reason="queue_full"} 1.0' in c.get("/metrics").text


def test_retry_after_uses_measured_service_time(make_client):
    c = make_client(FakeModel(delay_s=0.3), queue_limit=1)
    fid = upload(c)
    wait_done(c, submit(c, fid, layers=1).json()["job_id"])
    c.model.gate.clear()
    submit(c, fid, layers=2)
    time.sleep(0.1)
    submit(c, fid, layers=3)
    sched = c.app.state.services.scheduler
    assert 3 <= sched.retry_after_s(10) <= 4  # ceil(10 × ~0.3 s / 1 worker)
    assert sched.retry_after_s(0) == 1


def test_cache_hit_skips_model(make_client):
    c = make_client()
    fid = upload(c)
    first = wait_done(c, submit(c, fid).json()["job_id"])
    r = submit(c, fid)
    assert r.status_code == 202 and r.json() == {"job_id": r.json()["job_id"], "status": "completed", "cached": True}
    again = c.get(f"/api/status/{r.json()['job_id']}").json()
    assert again["cached"] is True and again["inference_s"] == 0
    assert c.get(f"/api/result/{r.json()['job_id']}").content == c.get(f"/api/result/{first['job_id']}").content
    assert c.model.calls == [1]
    assert "decomposer_cache_hits_total 1.0" in c.get("/metrics").text
    # a different (layers) key is not a hit
    wait_done(c, submit(c, fid, layers=3).json()["job_id"])
    assert c.model.calls == [1, 1]


def test_cache_ttl_zero_disables_cache(make_client):
    c = make_client(cache_ttl=0)
    fid = upload(c)
    for _ in range(2):
        assert wait_done(c, submit(c, fid).json()["job_id"])["cached"] is False
    assert c.model.calls == [1, 1]


def test_pipeline_exception_fails_job_and_worker_goes_on(make_client):
    c = make_client()
    c.model.fail_with = RuntimeError("CUDA out of memory (simulated)")
    fid = upload(c)
    failed = wait_done(c, submit(c, fid).json()["job_id"])
    assert failed["status"] == "failed" and "out of memory" in failed["error"]
    assert_error(c.get(f"/api/result/{failed['job_id']}"), 409, "not_completed")
    assert wait_done(c, submit(c, fid).json()["job_id"])["status"] == "completed"  # failed results are not cached


def test_micro_batching_groups_same_key(make_client):
    model = FakeModel()
    model.gate.clear()
    c = make_client(model, max_batch=3)
    fid, other = upload(c), upload(c, png("black"))
    ids = [submit(c, f, layers=n).json()["job_id"] for f, n in
           [(fid, 1), (fid, 2), (other, 2), (fid, 3), (other, 2)]]
    time.sleep(0.2)
    model.gate.set()
    done = [wait_done(c, j) for j in ids]
    assert all(d["status"] == "completed" for d in done)
    # the head (1 layer) was already running alone; then every queued 2-layer job in one call (FIFO by
    # the head, later same-key jobs ride along), then the 3-layer job
    assert model.calls == [1, 3, 1]
    assert [d["batch_size"] for d in done] == [1, 3, 3, 1, 3]


def test_long_poll_wakes_within_50ms(make_client):
    c = make_client(FakeModel(delay_s=0.5))
    fid = upload(c)
    job_id = submit(c, fid).json()["job_id"]
    started = time.monotonic()
    body = c.get(f"/api/status/{job_id}", params={"wait": 30}).json()
    received = time.time()
    assert body["status"] == "completed"
    assert received - body["finished_at"] < 0.05
    assert time.monotonic() - started < 5


def test_long_poll_times_out_when_job_not_done(make_client):
    model = FakeModel()
    model.gate.clear()
    c = make_client(model)
    job_id = submit(c, upload(c)).json()["job_id"]
    t0 = time.monotonic()
    assert c.get(f"/api/status/{job_id}", params={"wait": 0.3}).json()["status"] in ("queued", "running")
    assert 0.25 < time.monotonic() - t0 < 2


def test_restart_requeues_running_jobs(tmp_path):
    from server.store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite3")
    store.add_file("f" * 64, 8, 8, 10)
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / ("f" * 64)).write_bytes(png())
    a = store.add_job("f" * 64, 2, 640)
    b = store.add_job("f" * 64, 3, 640)
    store.mark_running([a["job_id"]], time.time(), 1)
    store.close()
    model = FakeModel()
    app = create_app(Settings(data_dir=tmp_path), model_loader=lambda _s: [model])
    with TestClient(app) as c:
        assert wait_done(c, a["job_id"])["status"] == "completed"
        assert wait_done(c, b["job_id"])["status"] == "completed"
    check = JobStore(tmp_path / "jobs.sqlite3")
    assert check.get(a["job_id"])["runs"] == 2 and check.get(b["job_id"])["runs"] == 1
    assert model.calls == [1, 1]


def test_finish_only_once(tmp_path):
    from server.store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.add_job("f" * 64, 2, 640)
    store.mark_running([job["job_id"]], time.time(), 1)
    assert store.finish(job["job_id"], "completed", time.time(), 1.0) is True
    assert store.finish(job["job_id"], "completed", time.time(), 1.0) is False


# --- health, readiness, metrics, OpenAPI ---------------------------------------------------------

def test_readyz_503_while_loading_healthz_200(make_client):
    release = threading.Event()
    model = FakeModel()

    def slow_loader(_s):
        release.wait(10)
        return [model]

    c = make_client(model, wait_ready=False, loader=slow_loader)
    assert c.get("/healthz").status_code == 200
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False
    release.set()
    deadline = time.monotonic() + 5
    while (r := c.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    body = r.json()
    assert body["ready"] is True and body["ready_at"] >= body["process_started_at"]
    assert set(body["model"]) >= {"source", "kind", "device", "dtype", "num_inference_steps", "load_s"}


def test_metrics_exposes_queue_jobs_histograms(make_client):
    c = make_client()
    wait_done(c, submit(c, upload(c)).json()["job_id"])
    text = c.get("/metrics").text
    for name in ("decomposer_queue_depth", 'decomposer_jobs{status="completed"} 1.0', "decomposer_queue_wait_seconds_bucket",
                 "decomposer_inference_seconds_count 1.0", "decomposer_batch_size_bucket", "decomposer_cache_hits_total",
                 "decomposer_model_load_seconds"):
        assert name in text, name


def test_openapi_documents_errors(make_client):
    spec = make_client().get("/openapi.json").json()
    assert set(spec["paths"]["/api/decompose"]["post"]["responses"]) >= {"202", "400", "404", "422", "429", "503"}
    assert set(spec["paths"]["/api/upload"]["post"]["responses"]) >= {"201", "413", "415", "422"}
    assert set(spec["paths"]["/api/result/{job_id}"]["get"]["responses"]) >= {"200", "404", "409"}
    assert "/_test/faults" not in spec["paths"]


# --- API key ---------------------------------------------------------------------------------------

def test_api_key_enforced_except_health(make_client):
    c = make_client(api_key="s3cret", wait_ready=False)
    assert c.get("/healthz").status_code == 200
    deadline = time.monotonic() + 10
    while c.get("/vertex/health").status_code != 200:  # no key needed on the Vertex health route
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for method, path in [("get", "/readyz"), ("get", "/metrics"), ("post", "/api/decompose"),
                         ("get", "/api/status/" + "0" * 32), ("post", "/vertex/predict")]:
        assert_error(getattr(c, method)(path), 401, "unauthorized") if not path.startswith("/vertex") else None
        assert getattr(c, method)(path).status_code == 401
    assert c.get("/readyz", headers={"X-API-Key": "wrong"}).status_code == 401
    assert c.get("/readyz", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.get("/readyz", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.post("/api/upload", files={"file": ("x.png", png(), "image/png")}).status_code == 401
    upload(c, **{"X-API-Key": "s3cret"})


# --- Vertex routes and fault injection ---------------------------------------------------------------

def vertex_body(layers=2, resolution=640, data=None):
    return {"instances": [{"image": base64.b64encode(data or png()).decode(), "layers": layers,
                           "resolution": resolution}], "parameters": {}}


@pytest.mark.parametrize("path", ["/vertex/predict", "/v1/projects/p/locations/us-central1/endpoints/123:predict"])
def test_vertex_predict_round_trip(make_client, path):
    c = make_client()
    r = c.post(path, json=vertex_body(layers=3.0, resolution=640.0))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["deployedModelId"] == "local"
    (pred,) = body["predictions"]
    assert len(pred["layers"]) == 3
    assert Image.open(io.BytesIO(base64.b64decode(pred["layers"][0]))).mode == "RGBA"
    assert set(pred["timings"]) == {"queue_s", "inference_s"} and pred["cached"] is False
    # the same queue as the job API: the job is visible there
    assert c.get(f"/api/status/{pred['job_id']}").json()["status"] == "completed"


def test_vertex_endpoint_resource_and_health(make_client):
    c = make_client()
    body = c.get("/v1/projects/p/locations/l/endpoints/e").json()
    assert body["name"] == "projects/p/locations/l/endpoints/e" and body["createTime"]
    assert body["deployedModels"][0]["id"] == "local"
    assert c.get("/vertex/health").status_code == 200


def test_vertex_custom_routes_from_env(tmp_path, monkeypatch):
    for name, value in {"AIP_HTTP_PORT": "9123", "AIP_HEALTH_ROUTE": "/h", "AIP_PREDICT_ROUTE": "/p"}.items():
        monkeypatch.setenv(name, value)
    s = Settings(data_dir=tmp_path)
    assert (s.port, s.vertex_health_route, s.vertex_predict_route) == (9123, "/h", "/p")
    model = FakeModel()
    with TestClient(create_app(s, model_loader=lambda _s: [model])) as c:
        deadline = time.monotonic() + 5
        while c.get("/h").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert c.post("/p", json=vertex_body()).status_code == 200


@pytest.mark.parametrize("body, status", [
    ({"instances": []}, 422), ({"instances": [{"image": "!!notbase64", "layers": 2, "resolution": 640}]}, 422),
    (vertex_body(resolution=512), 422), (vertex_body(layers=0), 422), (vertex_body(layers="2"), 422),
    (vertex_body(resolution=True), 422), ('{"instances": [', 400)])
def test_vertex_bad_input_google_errors(make_client, body, status):
    c = make_client()
    path = "/v1/projects/p/locations/l/endpoints/e:predict"
    if isinstance(body, str):
        r = c.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = c.post(path, json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["message"] and err["status"] == "INVALID_ARGUMENT"
    assert c.model.calls == []


def test_vertex_queue_full_429(make_client):
    model = FakeModel()
    model.gate.clear()
    c = make_client(model, queue_limit=1)
    fid = upload(c)
    submit(c, fid, layers=1)
    time.sleep(0.1)
    submit(c, fid, layers=2)
    r = c.post("/vertex/predict", json=vertex_body(layers=3))
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert int(r.headers["Retry-After"]) >= 1


def test_fault_injection_absent_when_disabled(make_client):
    assert make_client().post("/_test/faults", json={"statuses": [429]}).status_code == 404


def test_fault_injection_statuses_in_order(make_client):
    c = make_client(enable_fault_injection=True)
    assert c.post("/_test/faults", json={"statuses": [429, 503]}).status_code == 200
    path = "/v1/projects/p/locations/l/endpoints/e:predict"
    first, second, third = (c.post(path, json=vertex_body()) for _ in range(3))
    assert first.status_code == 429 and first.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert second.status_code == 503 and second.json()["error"]["status"] == "UNAVAILABLE"
    assert third.status_code == 200
    c.post("/_test/faults", json={"delay_s": 0.3})
    t0 = time.monotonic()
    assert c.post(path, json=vertex_body()).status_code == 200
    assert time.monotonic() - t0 >= 0.3
    c.post("/_test/faults", json={"fail_jobs": 1})
    c.post("/_test/faults", json={"statuses": [], "delay_s": 0, "fail_jobs": 1})
    r = c.post(path, json=vertex_body(layers=4))
    assert r.status_code == 500 and "injected" in r.json()["error"]["message"]


def test_fault_injection_enabled_by_env(monkeypatch):
    assert Settings().enable_fault_injection is False
    monkeypatch.setenv("DECOMPOSER_FAULT_INJECTION", "1")
    assert Settings().enable_fault_injection is True
    monkeypatch.delenv("DECOMPOSER_FAULT_INJECTION")
    monkeypatch.setenv("DECOMPOSER_ENABLE_FAULT_INJECTION", "true")
    assert Settings().enable_fault_injection is True


def test_draining_refuses_new_jobs_503(make_client):
    c = make_client()
    fid = upload(c)
    c.app.state.services.scheduler.begin_drain()
    assert_error(submit(c, fid), 503, "shutting_down")
    assert c.get("/readyz").status_code == 503
    assert c.get("/healthz").status_code == 200
