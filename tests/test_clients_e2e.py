"""Clients end to end: the real google-cloud-aiplatform SDK and the job API against our server
(`python -m server`, tiny CPU model) on 127.0.0.1. Faults are injected through the server's
test-only `/_test/faults` route (the server runs with fault injection enabled)."""

from __future__ import annotations

import os
import threading

import pytest
import requests
from PIL import Image

from clients.base import JobFailedError, RejectedError, TargetTimeoutError
from clients.fallback import FallbackClient
from clients.local import LocalClient
from clients.vertex import PayloadTooLargeError, VertexAIClient

pytestmark = pytest.mark.slow


def _start_server(**options):
    from server.process import ServerProcess

    return ServerProcess(**options)


@pytest.fixture(scope="module")
def server_url():
    with _start_server(enable_fault_injection=True, queue_limit=1, max_batch=1) as server:
        yield server.url


def inject(url: str, statuses=(), delay_s: float = 0.0, fail_jobs: int = 0) -> None:
    response = requests.post(f"{url}/_test/faults", timeout=10,
                             json={"statuses": list(statuses), "delay_s": delay_s, "fail_jobs": fail_jobs})
    assert response.status_code < 300, response.text


@pytest.fixture(autouse=True)
def _clear_faults(request):
    yield
    if "server_url" in request.fixturenames:
        inject(request.getfixturevalue("server_url"))


def _image(directory, color, px=256) -> str:
    path = directory / f"img_{'_'.join(map(str, color))}_{px}.png"
    if not path.exists():
        Image.new("RGB", (px, px), color).save(path)
    return str(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-images")


def vertex(url, **kw) -> VertexAIClient:
    kw.setdefault("initial_backoff_s", 0.2)
    kw.setdefault("max_backoff_s", 1.0)
    return VertexAIClient(api_endpoint=url, **kw)


def test_vertex_predict_round_trip_gapic_and_endpoint(server_url, images):
    path = _image(images, (255, 255, 255))
    result = vertex(server_url).decompose_image(path, 3, 640)
    assert len(result.layers) == 3
    assert all(layer.mode == "RGBA" for layer in result.layers)
    assert result.timings["inference_s"] is not None and result.timings["total_s"] > 0
    # the article's call: aiplatform.init + Endpoint(name).predict (GETs the endpoint resource first)
    again = vertex(server_url, api="endpoint").decompose_image(path, 3, 640)
    assert len(again.layers) == 3 and all(layer.mode == "RGBA" for layer in again.layers)


def test_vertex_injected_429_then_503_are_retried(server_url, images):
    path = _image(images, (255, 255, 255))
    inject(server_url, statuses=[429, 503])
    result = vertex(server_url).decompose_image(path, 3, 640)
    assert result.retries == 2
    assert result.attempts[0]["retried"] == ["TooManyRequests", "ServiceUnavailable"]
    assert len(result.layers) == 3


def test_vertex_retries_exhausted_raise_rejected(server_url, images):
    inject(server_url, statuses=[429] * 50)
    client = vertex(server_url, deadline_s=1.0, initial_backoff_s=0.1, max_backoff_s=0.2)
    with pytest.raises(RejectedError) as info:
        client.decompose_image(_image(images, (255, 255, 255)), 3, 640)
    assert "429" in str(info.value)


def test_vertex_timeout_raises_clear_error(server_url, images):
    inject(server_url, delay_s=3.0)
    with pytest.raises(TargetTimeoutError) as info:
        vertex(server_url, timeout_s=1.0).decompose_image(_image(images, (255, 255, 255)), 3, 640)
    assert "timeout of 1 s" in str(info.value)


@pytest.fixture(scope="module")
def noisy_2048(images):
    path = images / "noise_2048.png"
    Image.frombytes("RGB", (2048, 2048), os.urandom(2048 * 2048 * 3)).save(path, compress_level=1)
    return str(path)


def test_vertex_oversize_policy(server_url, noisy_2048):
    with pytest.raises(PayloadTooLargeError) as info:
        vertex(server_url, oversize_policy="error").decompose_image(noisy_2048, 2, 640)
    assert "payload limit of 1.5 MB" in str(info.value)
    client = vertex(server_url, oversize_policy="reencode")
    result = client.decompose_image(noisy_2048, 2, 640)
    assert len(result.layers) == 2
    assert client.last_request_info["original_request_bytes"] > 1_500_000
    assert client.last_request_info["request_bytes"] <= 1_500_000


def _dead_url() -> str:
    """A loopback port nothing listens on."""
    from server.process import free_port

    return f"http://127.0.0.1:{free_port()}"


def test_fallback_serves_local_when_vertex_down_and_breaker_opens(server_url, images):
    path = _image(images, (255, 255, 255))
    dead = vertex(_dead_url(), timeout_s=2)
    tried = []
    original = dead.decompose_image
    dead.decompose_image = lambda *a: (tried.append(1), original(*a))[1]
    client = FallbackClient([dead, LocalClient(server_url)], failure_threshold=2, cooldown_s=600)
    results = [client.decompose_image(path, 3, 640) for _ in range(4)]
    assert [r.served_by for r in results] == ["local"] * 4
    assert all(len(r.layers) == 3 for r in results)
    assert len(tried) == 2, "the open breaker stops calls to the dead primary"
    assert results[-1].attempts[0] == {"client": "vertex", "ok": False, "skipped": "circuit open",
                                       "breaker": "open"}


def test_local_round_trip(server_url, images):
    with LocalClient(server_url) as client:
        result = client.decompose_image(_image(images, (10, 20, 30)), 2, 640)
    assert len(result.layers) == 2 and all(layer.mode == "RGBA" for layer in result.layers)
    t = result.timings
    assert all(t[k] is not None for k in ("upload_s", "queue_s", "inference_s", "transfer_s", "total_s"))
    assert t["total_s"] >= t["inference_s"]
    assert 0 <= t["detect_s"] < 1.0 and result.batch_size == 1  # the long-poll wakes when the job ends


def test_local_429_retry_after_with_real_queue(server_url, images):
    """queue_limit=1: concurrent distinct jobs overflow the queue; the clients wait out Retry-After
    and all finish; a client with no retries is rejected."""
    paths = [_image(images, (i * 40, 100, 200)) for i in range(4)]
    results, errors = [], []

    def run(path, retries):
        try:
            results.append(LocalClient(server_url, max_429_retries=retries).decompose_image(path, 2, 640))
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(p, 20)) for p in paths[:3]]
    for t in threads:
        t.start()
    threads[0].join(0.5)
    run(paths[3], 0)  # while the queue is full: rejected at once
    for t in threads:
        t.join(120)
    assert len(results) == 3, errors
    assert sum(r.retries for r in results) >= 1
    assert len(errors) == 1 and isinstance(errors[0], RejectedError) and errors[0].status == 429


@pytest.mark.parametrize("target", ["local", "vertex"])
def test_failed_job_raises_job_failed(server_url, images, target):
    inject(server_url, fail_jobs=1)
    path = _image(images, (1, 2, 3) if target == "local" else (3, 2, 1), px=64)  # not cached
    client = LocalClient(server_url) if target == "local" else vertex(server_url)
    with pytest.raises(JobFailedError) as info:
        client.decompose_image(path, 2, 640)
    assert "fail" in str(info.value)
