"""Clients against a small in-process HTTP stand-in of the server (fast; the end-to-end runs against the
real server are in test_clients_e2e.py). The stand-in speaks the job API and the Vertex REST paths, with
a scripted queue of error statuses, so the real SDK's retry/backoff and the clients' error mapping are
exercised without the model."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from PIL import Image

from clients.base import ClientError, RejectedError, TargetTimeoutError, TargetUnavailableError
from clients.factory import make_client
from clients.fallback import CircuitBreaker, FallbackClient
from clients.local import LocalClient
from clients.vertex import PayloadTooLargeError, VertexAIClient


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (i, 0, 0, 128)).save(buf, "PNG")
    return buf.getvalue()


class Stub:
    """State of the stand-in: scripted statuses for decompose / predict, a delay, a request log."""

    def __init__(self):
        self.decompose_statuses: list[int] = []
        self.predict_statuses: list[int] = []
        self.predict_delay_s = 0.0
        self.status_delay_s = 0.0       # the job API's server time, really spent before answering
        self.result_delay_s = 0.0       # a slow download of the layers
        self.job_timings = {"queue_s": 0.25, "inference_s": 1.5}    # what the status route reports
        self.predict_timings = {"queue_s": 0.1, "inference_s": 0.2}  # what a prediction reports
        self.retry_after = "0"
        self.log: list[tuple[str, str]] = []
        self.instances: list[dict] = []
        self.jobs: dict[str, int] = {}


def _handler(stub: Stub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body, ctype="application/json", headers=None):
            data = json.dumps(body).encode() if ctype == "application/json" else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_GET(self):
            url = urlparse(self.path)
            stub.log.append(("GET", url.path))
            if url.path.startswith("/api/status/"):
                job = url.path.rsplit("/", 1)[1]
                if job not in stub.jobs:
                    return self._send(404, {"detail": f"no job {job}", "error": "not_found"})
                wait = float(parse_qs(url.query).get("wait", ["0"])[0])
                assert wait > 1.0, "the client long-polls"
                time.sleep(stub.status_delay_s)
                return self._send(200, {"job_id": job, "status": "completed", **stub.job_timings,
                                        "finished_at": time.time(), "batch_size": 1, "cached": False})
            if url.path.startswith("/api/result/"):
                job = url.path.rsplit("/", 1)[1]
                time.sleep(stub.result_delay_s)
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w") as zf:
                    for i in reversed(range(stub.jobs[job])):  # out of order on purpose
                        zf.writestr(f"layer_{i}.png", _png(i))
                return self._send(200, buf.getvalue(), "application/zip")
            if "/endpoints/" in url.path:
                return self._send(200, {"name": url.path[4:], "displayName": "stub",
                                        "createTime": "2026-01-01T00:00:00Z", "deployedModels": [{"id": "1"}]})
            self._send(404, {"detail": "not found"})

        def do_POST(self):
            url = urlparse(self.path)
            body = self._body()
            stub.log.append(("POST", url.path))
            if url.path == "/api/upload":
                return self._send(201, {"file_id": "f1", "width": 8, "height": 8, "size_bytes": len(body)})
            if url.path == "/api/decompose":
                req = json.loads(body)
                if stub.decompose_statuses:
                    status = stub.decompose_statuses.pop(0)
                    return self._send(status, {"detail": f"scripted {status}", "error": "queue_full"},
                                      headers={"Retry-After": stub.retry_after})
                job = f"j{len(stub.jobs)}"
                stub.jobs[job] = req["num_layers"]
                return self._send(202, {"job_id": job, "status": "queued", "cached": False})
            if url.path.endswith(":predict"):
                req = json.loads(body)
                stub.instances.extend(req["instances"])
                if stub.predict_delay_s:
                    time.sleep(stub.predict_delay_s)
                if stub.predict_statuses:
                    status = stub.predict_statuses.pop(0)
                    return self._send(status, {"error": {"code": status, "message": f"scripted {status}"}})
                preds = [{"layers": [base64.b64encode(_png(i)).decode() for i in range(int(inst["layers"]))],
                          "timings": dict(stub.predict_timings), "cached": False}
                         for inst in req["instances"]]
                return self._send(200, {"predictions": preds, "deployedModelId": "1"})
            self._send(404, {"detail": "not found"})

    return Handler


@pytest.fixture
def stub():
    state = Stub()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "white.png"
    Image.new("RGB", (64, 64), "white").save(path)
    return str(path)


def _dead_url():
    """A loopback port nothing listens on."""
    from server.process import free_port

    return f"http://127.0.0.1:{free_port()}"


# --- LocalClient ---------------------------------------------------------------------------------------

def test_local_round_trip_long_polls_and_orders_layers(stub, image):
    client = LocalClient(stub.url)
    result = client.decompose_image(image, 3, 640)
    assert len(result.layers) == 3 and all(layer.mode == "RGBA" for layer in result.layers)
    assert [layer.getpixel((0, 0))[0] for layer in result.layers] == [0, 1, 2]
    assert result.timings["queue_s"] == 0.25 and result.timings["inference_s"] == 1.5
    assert result.timings["total_s"] >= result.timings["upload_s"] >= 0
    assert result.served_by == "local" and result.retries == 0
    client.decompose_image(image, 2, 640)  # same file: no second upload
    assert [p for m, p in stub.log if m == "POST"].count("/api/upload") == 1


def test_local_429_waits_retry_after_then_succeeds(stub, image):
    stub.decompose_statuses = [429, 429]
    stub.retry_after = "7"
    client = LocalClient(stub.url)
    slept: list[float] = []
    client.sleep = slept.append
    result = client.decompose_image(image, 2, 640)
    assert result.retries == 2 and len(slept) == 2
    assert all(7.0 <= s <= 7.0 * 1.2 for s in slept), slept  # Retry-After plus jitter


def test_local_429_bounded_then_rejected(stub, image):
    stub.decompose_statuses = [429] * 10
    client = LocalClient(stub.url, max_429_retries=2)
    client.sleep = lambda s: None
    with pytest.raises(RejectedError) as info:
        client.decompose_image(image, 2, 640)
    assert info.value.status == 429 and "queue_full" in str(info.value)


def test_local_429_wait_past_the_deadline_fails_at_once(stub, image):
    stub.decompose_statuses = [429]
    stub.retry_after = "30"
    client = LocalClient(stub.url, deadline_s=5)
    slept: list[float] = []
    client.sleep = slept.append
    with pytest.raises(TargetTimeoutError) as info:
        client.decompose_image(image, 2, 640)
    assert slept == [] and info.value.status == 429  # never sleeps past the call's deadline


def test_local_4xx_carries_server_message(stub, image):
    stub.decompose_statuses = [422]
    with pytest.raises(ClientError) as info:
        LocalClient(stub.url).decompose_image(image, 2, 640)
    assert info.value.status == 422 and "scripted 422" in str(info.value)
    assert not isinstance(info.value, RejectedError | TargetUnavailableError)


def test_local_connection_refused_is_unavailable(image):
    with pytest.raises(TargetUnavailableError):
        LocalClient(_dead_url()).decompose_image(image, 2, 640)


# --- VertexAIClient through the real SDK -----------------------------------------------------------------

@pytest.mark.parametrize("api", ["gapic", "endpoint"])
def test_vertex_round_trip_real_sdk(stub, image, api):
    client = VertexAIClient(api_endpoint=stub.url.replace("http://", ""), api=api)  # http:// added for 127.0.0.1
    assert client.api_endpoint.startswith("http://")
    result = client.decompose_image(image, 3, 640)
    assert len(result.layers) == 3 and all(layer.mode == "RGBA" for layer in result.layers)
    assert result.timings["queue_s"] == pytest.approx(0.1) and result.timings["inference_s"] == pytest.approx(0.2)
    assert stub.instances[0]["layers"] == 3.0  # Struct: ints become floats on the wire
    assert ("POST", "/v1/projects/loadlab/locations/us-central1/endpoints/local:predict") in stub.log


def test_vertex_retries_429_then_503_counted(stub, image):
    stub.predict_statuses = [429, 503]
    client = VertexAIClient(api_endpoint=stub.url, initial_backoff_s=0.05, max_backoff_s=0.1)
    result = client.decompose_image(image, 2, 640)
    assert result.retries == 2
    assert result.attempts[0]["retried"] == ["TooManyRequests", "ServiceUnavailable"]
    assert sum(1 for m, p in stub.log if p.endswith(":predict")) == 3


def test_vertex_retry_deadline_then_rejected(stub, image):
    stub.predict_statuses = [429] * 100
    client = VertexAIClient(api_endpoint=stub.url, initial_backoff_s=0.05, max_backoff_s=0.1, deadline_s=0.5)
    with pytest.raises(RejectedError) as info:
        client.decompose_image(image, 2, 640)
    assert "retry deadline of 0.5 s" in str(info.value)


def test_vertex_timeout_is_clear(stub, image):
    stub.predict_delay_s = 1.5
    client = VertexAIClient(api_endpoint=stub.url, timeout_s=0.3)
    t0 = time.perf_counter()
    with pytest.raises(TargetTimeoutError) as info:
        client.decompose_image(image, 2, 640)
    assert time.perf_counter() - t0 < 1.4
    assert "timeout of 0.3 s" in str(info.value)


def test_vertex_connection_refused_is_unavailable(image):
    with pytest.raises(TargetUnavailableError):
        VertexAIClient(api_endpoint=_dead_url(), timeout_s=2).decompose_image(image, 2, 640)


@pytest.fixture
def noisy_image(tmp_path):
    """2048 px of noise as PNG: ~12 MB, far over 1.5 MB in base64 (a white PNG would compress to nothing)."""
    import os

    path = tmp_path / "noise.png"
    Image.frombytes("RGB", (2048, 2048), os.urandom(2048 * 2048 * 3)).save(path, compress_level=1)
    return str(path)


def test_vertex_oversize_error_names_the_limit(stub, noisy_image):
    client = VertexAIClient(api_endpoint=stub.url, oversize_policy="error")
    with pytest.raises(PayloadTooLargeError) as info:
        client.decompose_image(noisy_image, 2, 1024)
    assert "1.5 MB" in str(info.value) and "1500000 bytes" in str(info.value)
    assert not any(p.endswith(":predict") for _, p in stub.log), "nothing sent"


def test_vertex_oversize_reencode_fits(stub, noisy_image):
    client = VertexAIClient(api_endpoint=stub.url, oversize_policy="reencode")
    result = client.decompose_image(noisy_image, 2, 1024)
    info = client.last_request_info
    assert info["reencoded"] and info["original_request_bytes"] > 1_500_000
    assert info["request_bytes"] <= 1_500_000
    assert max(info["size_px"]) <= 1024
    sent = base64.b64decode(stub.instances[0]["image"])
    assert sent[:3] == b"\xff\xd8\xff" and len(json.dumps({"instances": stub.instances})) <= 1_500_000
    assert len(result.layers) == 2


def test_vertex_dedicated_limit_10mb():
    assert VertexAIClient(api_endpoint="http://127.0.0.1:1", endpoint_type="dedicated").payload_limit_bytes \
        == 10_000_000


def test_vertex_env_configuration(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("VERTEX_LOCATION", "europe-west4")
    monkeypatch.setenv("VERTEX_ENDPOINT_ID", "123")
    monkeypatch.setenv("VERTEX_API_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("VERTEX_PAYLOAD_LIMIT_MB", "2")
    client = VertexAIClient()
    assert client.endpoint_name == "projects/p1/locations/europe-west4/endpoints/123"
    assert client.api_endpoint == "http://127.0.0.1:9" and client.payload_limit_bytes == 2_000_000
    assert type(client.credentials).__name__ == "AnonymousCredentials"


# --- FallbackClient --------------------------------------------------------------------------------------

def test_fallback_serves_from_local_and_breaker_skips_dead_primary(stub, image):
    clock = [0.0]
    dead = VertexAIClient(api_endpoint=_dead_url(), timeout_s=2)
    calls = {"vertex": 0}
    real = dead.decompose_image

    def counted(*a, **k):
        calls["vertex"] += 1
        return real(*a, **k)

    dead.decompose_image = counted
    client = FallbackClient([dead, LocalClient(stub.url)], failure_threshold=2, cooldown_s=30,
                            clock=lambda: clock[0])
    results = [client.decompose_image(image, 2, 640) for _ in range(5)]
    assert all(r.served_by == "local" and len(r.layers) == 2 for r in results)
    assert calls["vertex"] == 2, "breaker opened after 2 failures"
    assert results[0].attempts[0]["client"] == "vertex" and not results[0].attempts[0]["ok"]
    assert results[4].attempts[0]["skipped"] == "circuit open"
    clock[0] = 31.0  # cool-down over: one half-open trial, fails, re-opens
    client.decompose_image(image, 2, 640)
    client.decompose_image(image, 2, 640)
    assert calls["vertex"] == 3
    assert client.breaker("vertex").state == "open"


def test_fallback_primary_ok_and_4xx_not_fallen_back(stub, image):
    client = make_client("fallback", f"{stub.url},{stub.url}")
    assert client.decompose_image(image, 2, 640).served_by == "vertex"
    stub.predict_statuses = [400]
    with pytest.raises(ClientError) as info:
        client.decompose_image(image, 2, 640)
    assert info.value.status == 400


def test_fallback_all_down_raises_with_attempts(image):
    client = FallbackClient([LocalClient(_dead_url(), name="a"), LocalClient(_dead_url(), name="b")])
    with pytest.raises(TargetUnavailableError) as info:
        client.decompose_image(image, 2, 640)
    assert [a["client"] for a in info.value.attempts] == ["a", "b"]


def test_breaker_half_open_success_closes():
    clock = [0.0]
    breaker = CircuitBreaker(1, 10, clock=lambda: clock[0])
    breaker.record_failure()
    assert not breaker.allow()
    clock[0] = 10
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_factory_targets():
    assert isinstance(make_client("local", "http://127.0.0.1:1"), LocalClient)
    vertex = make_client("vertex", "http://127.0.0.1:1")
    assert vertex.endpoint_name == "projects/loadlab/locations/us-central1/endpoints/local"
    with pytest.raises(ValueError):
        make_client("nope", "")


def test_vertex_grpc_transport_dead_target_fails_fast(image):
    client = VertexAIClient(api_endpoint=_dead_url(), transport="grpc", timeout_s=1)
    assert type(client.prediction_client().transport).__name__ == "PredictionServiceGrpcTransport"
    t0 = time.perf_counter()
    with pytest.raises(TargetUnavailableError):
        client.decompose_image(image, 2, 640)
    assert time.perf_counter() - t0 < 20, "a refused connection is not retried until the deadline"


def test_overhead_is_the_clients_share_of_the_time(stub, tmp_path):
    """The job API's 0.3 s of server time really elapses and is reported, so it is taken out; the
    0.2 s download of the layers is the client's and stays in."""
    from bench.overhead import format_row, measure
    from loadlab.cases import ALL_CASES

    stub.status_delay_s = stub.predict_delay_s = 0.3
    stub.job_timings = stub.predict_timings = {"queue_s": 0.0, "inference_s": 0.3}
    stub.result_delay_s = 0.2
    (row,) = measure(stub.url, [ALL_CASES["light"]], runs=2, image_dir=str(tmp_path), content="noise")
    local, vertex = row["local"], row["vertex"]
    assert 0.2 <= local["overhead_s"] < 0.4, local        # download in, server time out
    assert local["total_s"] >= 0.5                         # both really elapsed
    assert 0.0 <= vertex["overhead_s"] < 0.2, vertex      # Vertex: server time out
    assert row["request_bytes"] > 256 * 256 * 3 * 4 / 3   # noise: incompressible, sent whole in base64
    assert format_row(row).startswith("| light")


def test_local_detect_s_and_batch_size_come_from_the_server_status(stub, image):
    stub.status_delay_s = 0.05
    result = LocalClient(stub.url).decompose_image(image, 2, 640)
    assert 0.0 <= result.timings["detect_s"] < 0.05        # stamped when answering, read at once
    assert result.batch_size == 1


@pytest.mark.parametrize("api,module", [("gapic", "google.cloud.aiplatform_v1"), ("endpoint", "google.cloud.aiplatform")])
def test_vertex_client_imports_the_sdk_when_built_not_inside_its_first_request(api, module):
    """The SDK's import (0.74 s on this machine) inside the first request was counted as its latency; a
    fresh process shows the module loaded once the client exists, before any request."""
    import subprocess
    import sys

    code = (f"import sys; from clients.vertex import VertexAIClient; assert {module!r} not in sys.modules; "
            f"VertexAIClient(api_endpoint='http://127.0.0.1:9', api={api!r}); print({module!r} in sys.modules)")
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         cwd=root)
    assert out.stdout.strip() == "True"
