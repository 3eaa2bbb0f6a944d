"""Issue 12 in-process (TestClient, stand-in model; fast): bounded inputs, readiness on the Vertex health
route, fault injection behind the API key, one status per meaning, the OpenAPI schema's promises, and
an unusable data directory. The same behaviours on a real uvicorn process: test_server_process.py."""

from __future__ import annotations

import base64
import logging
import subprocess
import threading
import time

import pytest

from server.process import ServerProcess
from tests.server_helpers import (
    AppClients,
    FakeModel,
    assert_error,
    png,
    png_header_only,
    submit,
    tmpfs,
    upload,
    wait_done,
    wait_status,
)

PREDICT = "/v1/projects/p/locations/l/endpoints/e:predict"


@pytest.fixture
def make_client(tmp_path):
    clients = AppClients(tmp_path)
    yield clients
    clients.close()


def instance(layers=2, resolution=640, data=None) -> dict:
    return {"image": base64.b64encode(png() if data is None else data).decode(), "layers": layers,
            "resolution": resolution}


def job_count(client) -> int:
    return sum(client.app.state.services.store.count_by_status().values())


# --- defect 2: AIP_HEALTH_ROUTE answers readiness, whatever path it names ----------------------------

def test_health_route_named_healthz_is_readiness(make_client):
    release = threading.Event()
    model = FakeModel()

    def slow_loader(_s):
        release.wait(10)
        return [model]

    c = make_client(model, wait_ready=False, loader=slow_loader, vertex_health_route="/healthz")
    r = c.get("/healthz")
    assert r.status_code == 503 and r.json() == {"ready": False}  # why not is /readyz's to say
    assert c.get("/readyz").json()["error"] == "model still loading"
    release.set()
    assert wait_status(c, "/healthz", 200).json() == {"ready": True}
    c.app.state.services.scheduler.begin_drain()
    assert c.get("/healthz").status_code == 503 and c.get("/readyz").json()["draining"] is True
    # one GET /healthz in the schema, and it is the readiness route
    op = c.get("/openapi.json").json()["paths"]["/healthz"]["get"]
    assert op["operationId"] == "vertex_health" and "503" in op["responses"]


def test_health_route_reports_a_failed_model_load(make_client):
    def broken(_s):
        raise OSError("no weights here")

    c = make_client(wait_ready=False, loader=broken, vertex_health_route="/healthz")
    deadline = time.monotonic() + 10
    while "no weights here" not in (c.get("/readyz").json()["error"] or ""):  # the load fails in its thread
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert c.get("/healthz").status_code == 503


# --- defect 3: Vertex predict bounded and admitted all or nothing ------------------------------------

def test_predict_body_over_limit_413_before_any_job(make_client):
    c = make_client(vertex_max_body_mb=0.01)  # 10 KiB
    big = png("white", (64, 64), "BMP")  # ~12 KB raw, ~16 KB in base64
    r = c.post(PREDICT, json={"instances": [instance(data=big)]})
    assert_error(r, 413)
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT" and "10485 bytes" in r.json()["error"]["message"]
    assert job_count(c) == 0 and c.model.calls == []
    assert c.post(PREDICT, json={"instances": [instance()]}).status_code == 200


def test_predict_body_limit_follows_endpoint_type(make_client):
    shared = make_client()
    dedicated = make_client(vertex_endpoint_type="dedicated")
    assert shared.app.state.services.settings.vertex_max_body_bytes == int(1.5 * 1024 * 1024)
    assert dedicated.app.state.services.settings.vertex_max_body_bytes == 10 * 1024 * 1024
    body = b'{"instances": [{"image": "' + b"A" * (2 * 1024 * 1024) + b'"}]}'  # 2 MB: over shared only
    headers = {"content-type": "application/json"}
    assert_error(shared.post(PREDICT, content=body, headers=headers), 413)
    assert_error(dedicated.post(PREDICT, content=body, headers=headers), 415)  # read, then not an image


def test_predict_too_many_instances_refused_before_any_job(make_client):
    c = make_client(vertex_max_instances=2)
    r = c.post(PREDICT, json={"instances": [instance(layers=n) for n in (1, 2, 3)]})
    assert_error(r, 422)
    assert "at most 2" in r.json()["error"]["message"]
    assert job_count(c) == 0 and c.model.calls == []
    spec = c.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    assert spec["properties"]["instances"]["maxItems"] == 2


def test_predict_429_leaves_no_orphaned_job(make_client):
    model = FakeModel()
    model.gate.clear()
    c = make_client(model, queue_limit=2, cache_ttl=0)
    fid = upload(c)
    running = submit(c, fid, layers=1).json()["job_id"]
    wait_status(c, f"/api/status/{running}", 200)
    queued = submit(c, fid, layers=2).json()["job_id"]  # 1 running + 1 queued: one slot left
    before = job_count(c)
    r = c.post(PREDICT, json={"instances": [instance(layers=3), instance(layers=4)]})
    assert_error(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert job_count(c) == before  # neither instance was submitted
    model.gate.set()
    assert [wait_done(c, j)["status"] for j in (running, queued)] == ["completed"] * 2
    ok = c.post(PREDICT, json={"instances": [instance(layers=3), instance(layers=4)]})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2
    assert model.calls == [1, 1, 1, 1]


def test_predict_checks_every_instance_before_submitting(make_client):
    c = make_client()
    r = c.post(PREDICT, json={"instances": [instance(layers=1), instance(data=b"not an image")]})
    assert_error(r, 415)
    assert job_count(c) == 0 and c.model.calls == []


# --- defect 4: uploads bounded before the body is read -----------------------------------------------

def test_upload_content_length_over_limit_refused_by_body_guard(make_client):
    c = make_client(max_upload_mb=0.05)
    r = c.post("/api/upload", files={"file": ("x.bin", bytes(200 * 1024), "application/octet-stream")})
    assert_error(r, 413, "body_too_large")  # the body guard, not the route after reading the file
    assert "over the limit of" in r.json()["detail"]
    assert not list(c.app.state.services.files.uploads.iterdir())


def test_decompose_body_is_bounded_too(make_client):
    c = make_client()
    r = c.post("/api/decompose", content=b'{"file_id": "' + b"a" * 100_000 + b'"}',
               headers={"content-type": "application/json"})
    assert_error(r, 413, "body_too_large")


# --- defect 5: fault injection behind the API key; no secret on the command line ---------------------

def test_fault_injection_requires_api_key(make_client):
    c = make_client(api_key="s3cret", enable_fault_injection=True)
    assert_error(c.post("/_test/faults", json={"statuses": [429]}), 401, "unauthorized")
    assert c.post("/_test/faults", json={"statuses": [429]}, headers={"X-API-Key": "wrong"}).status_code == 401
    r = c.post("/_test/faults", json={"statuses": [429]}, headers={"X-API-Key": "s3cret"})
    assert r.status_code == 200 and r.json()["statuses"] == [429]
    assert c.post(PREDICT, json={"instances": [instance()]}, headers={"X-API-Key": "s3cret"}).status_code == 429


def test_server_process_keeps_api_key_off_the_command_line(tmp_path):
    server = ServerProcess(data_dir=tmp_path, api_key="s3cret-key")
    assert "s3cret-key" not in " ".join(server.command())


# --- defect 8: one status per meaning ----------------------------------------------------------------

@pytest.mark.parametrize("data, status, code", [
    (png_header_only(101, 100), 413, "too_many_pixels"),      # over our --max-pixels
    (png_header_only(20000, 20000), 413, "too_many_pixels"),  # over Pillow's own hard limit too
    (png("blue", (64, 64), "JPEG")[:300], 422, "corrupt_image"),  # a JPEG cut short
    (b"plain text, not an image", 415, "not_an_image"),
    (b"", 422, "empty_upload")], ids=["bomb", "pillow-bomb", "truncated", "not-image", "empty"])
def test_image_statuses_are_one_meaning_each(make_client, data, status, code):
    c = make_client(max_pixels=100 * 100)
    assert_error(c.post("/api/upload", files={"file": ("x", data, "application/octet-stream")}), status, code)
    r = c.post(PREDICT, json={"instances": [instance(data=data)]})
    assert_error(r, status)  # the same status for the same image on the Vertex route


# --- defect 7: the schema's promises -----------------------------------------------------------------

def test_405_allow_header_names_the_route_methods(make_client):
    c = make_client()
    for method in ("options", "get", "put"):
        r = c.request(method.upper(), PREDICT)
        assert r.status_code == 405 and r.headers["allow"] == "POST", (method, r.status_code, r.headers)
    r = c.request("DELETE", "/v1/projects/p/locations/l/endpoints/e")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert c.request("OPTIONS", "/api/upload").headers["allow"] == "POST"


def test_openapi_links_follow_a_job(make_client):
    spec = make_client().get("/openapi.json").json()
    paths = spec["paths"]
    upload_links = paths["/api/upload"]["post"]["responses"]["201"]["links"]
    assert upload_links["Decompose"] == {"operationId": "decompose", "requestBody": {"file_id": "$response.body#/file_id"},
                                         "description": upload_links["Decompose"]["description"]}
    decompose_links = paths["/api/decompose"]["post"]["responses"]["202"]["links"]
    assert {name: link["operationId"] for name, link in decompose_links.items()} == {
        "GetStatus": "status", "GetResult": "result", "GetLayer": "layer"}
    assert all(link["parameters"] == {"job_id": "$response.body#/job_id"} for link in decompose_links.values())
    status_links = paths["/api/status/{job_id}"]["get"]["responses"]["200"]["links"]
    assert {link["operationId"] for link in status_links.values()} == {"result", "layer"}
    ids = {op["operationId"] for methods in paths.values() for op in methods.values()}
    assert {"upload", "decompose", "status", "result", "layer"} <= ids


def test_openapi_enums_and_ranges_are_enforced(make_client):
    c = make_client()
    schemas = c.get("/openapi.json").json()["components"]["schemas"]
    for model, layers_key in (("DecomposeRequest", "num_layers"), ("Instance", "layers")):
        props = schemas[model]["properties"]
        assert props["resolution"]["enum"] == [640, 1024]
        assert (props[layers_key]["minimum"], props[layers_key]["maximum"]) == (1, 10)
    fid = upload(c)
    for resolution, layers, status in ((640, 1, 202), (1024.0, 10.0, 202), (512, 2, 422), ("640", 2, 422),
                                       (640, "2", 422), (640, True, 422), (640, 11, 422)):
        assert submit(c, fid, layers=layers, resolution=resolution).status_code == status, (resolution, layers)
        r = c.post(PREDICT, json={"instances": [instance(layers=layers, resolution=resolution)]})
        assert r.status_code == (200 if status == 202 else 422), (resolution, layers, r.text)


def test_openapi_without_key_asks_for_none_and_with_key_says_how(make_client):
    open_spec = make_client().get("/openapi.json").json()
    assert "securitySchemes" not in open_spec.get("components", {})
    assert all("401" not in op["responses"] for m in open_spec["paths"].values() for op in m.values())
    keyed = make_client(api_key="k").get("/openapi.json").json()
    assert set(keyed["components"]["securitySchemes"]) == {"APIKeyHeader", "HTTPBearer"}
    assert "401" in keyed["paths"]["/api/decompose"]["post"]["responses"]
    assert "security" not in keyed["paths"]["/healthz"]["get"]


# --- also: an unusable data directory is one clear error and 503 on readiness -------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MB tmpfs mount (root only): read-only or filled up by the test."""
    with tmpfs(tmp_path / "mnt") as mount:
        yield mount


@pytest.mark.parametrize("state", ["read-only", "full"])
def test_unusable_data_dir_is_one_clear_error_and_not_ready(make_client, small_tmpfs, caplog, state):
    if state == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
        expected = "not writable"
    else:
        with open(small_tmpfs / "filler", "wb", buffering=0) as f:  # fill to the last block
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        expected = "No space left"
    caplog.set_level(logging.ERROR, logger="server")
    c = make_client(wait_ready=False, data_dir=small_tmpfs / "server")
    r = c.get("/readyz")
    assert r.status_code == 503 and expected in r.json()["error"], r.text
    assert c.get("/healthz").status_code == 200  # alive: the orchestrator sees "not ready", not a crash loop
    assert_error(c.post("/api/upload", files={"file": ("x.png", png(), "image/png")}), 503, "storage_unavailable")
    assert_error(c.post(PREDICT, json={"instances": [instance()]}), 503)
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None and expected in errors[0].getMessage()


def test_too_little_free_space_is_refused_at_start(make_client, tmp_path):
    c = make_client(wait_ready=False, min_free_mb=1e12)
    r = c.get("/readyz")
    assert r.status_code == 503 and "below the 1e+12 MB" in r.json()["error"]


# --- uploads off the event loop ------------------------------------------------------

def test_upload_work_runs_off_the_event_loop(make_client, monkeypatch):
    """While an upload's image check is stuck (in its thread), /healthz still answers: the check does not
    run on the event loop. On the loop, /healthz would wait the 5 s the check is held."""
    import server.intake

    c = make_client()
    entered, release = threading.Event(), threading.Event()
    real = server.intake.inspect_image

    def stuck_inspect(data, max_pixels):
        entered.set()
        release.wait(5)  # bounded: a blocked loop fails the test instead of hanging it
        return real(data, max_pixels)

    monkeypatch.setattr(server.intake, "inspect_image", stuck_inspect)
    answers = {}
    uploader = threading.Thread(target=lambda: answers.setdefault("upload", c.post(
        "/api/upload", files={"file": ("x.png", png(), "image/png")})))
    uploader.start()
    assert entered.wait(5)
    t0 = time.monotonic()
    health = c.get("/healthz")
    elapsed = time.monotonic() - t0
    release.set()
    uploader.join(10)
    assert health.status_code == 200 and elapsed < 2, elapsed
    assert answers["upload"].status_code == 201


def test_upload_threads_are_bounded(make_client):
    from server.intake import image_threads

    c = make_client()
    assert c.app.state.services.intake.limiter.total_tokens == image_threads()
    assert 1 <= image_threads() <= 4


# --- no temporary file outlives a crash ----------------------------------------------

class _FailingLayer:
    def save(self, path, **_):
        raise RuntimeError("the process is going down")


def _temporaries(files) -> list:
    return [*files.uploads.glob(files.UPLOAD_TMP), *files.results.glob(files.RESULT_TMP)]


def test_a_failure_while_storing_leaves_no_temporary_file(tmp_path, monkeypatch):
    from pathlib import Path

    from PIL import Image

    from server.store import FileStore

    files = FileStore(tmp_path)
    with monkeypatch.context() as m:  # any exception, not only a full disk's OSError
        m.setattr(Path, "replace", lambda self, target: (_ for _ in ()).throw(RuntimeError("interrupted")))
        with pytest.raises(RuntimeError):
            files.put_upload("a" * 64, b"bytes")
    with pytest.raises(RuntimeError):
        files.put_layers("job1", [Image.new("RGBA", (4, 4)), _FailingLayer()])
    assert _temporaries(files) == [] and not files.upload_path("a" * 64).exists()
    assert files.layer_paths("job1") == []


def test_stale_temporaries_removed_at_start(make_client, tmp_path, caplog):
    """What a killed process left half-written (a SIGKILL runs no `finally`) is removed at the next start;
    whole uploads and results stay."""
    data_dir = tmp_path / "data"
    (data_dir / "uploads").mkdir(parents=True)
    (data_dir / "results" / "job1").mkdir(parents=True)
    (data_dir / "uploads" / ("b" * 64)).write_bytes(b"whole upload")
    (data_dir / "results" / "job1" / "layer_0.png").write_bytes(b"whole result")
    (data_dir / "uploads" / ("c" * 64 + ".tmp1a2b3c4d")).write_bytes(b"half an upload")
    stale_result = data_dir / "results" / ".job2.5e6f7a8b"
    stale_result.mkdir()
    (stale_result / "layer_0.png").write_bytes(b"half a result")
    caplog.set_level(logging.WARNING, logger="server")
    files = make_client(data_dir=data_dir).app.state.services.files
    assert _temporaries(files) == [] and files.removed_at_start == 2
    assert files.upload_path("b" * 64).read_bytes() == b"whole upload"
    assert [p.name for p in files.layer_paths("job1")] == ["layer_0.png"]
    assert any("removed 2 temporary file(s)" in rec.getMessage() for rec in caplog.records)
