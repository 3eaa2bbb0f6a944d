"""The Vertex contract on the job server, in-process: every bad request of tests/vertex_bad_requests.py
gets its status in Google's shape (tests/test_rayserve.py sends the same to the Ray Serve app), and a
predict body is checked off the event loop."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import replace

import pytest

from server import vertex_contract
from tests.server_helpers import AppClients, png
from tests.vertex_bad_requests import CASES, check_answer


@pytest.fixture
def make_client(tmp_path):
    clients = AppClients(tmp_path)
    yield clients
    clients.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_predict_requests_get_the_contracts_answer(make_client, case):
    c = make_client()
    r = c.request(case.method, case.path, content=case.body or None, headers=case.headers)
    check_answer(case, r.status_code, r.text)
    # nothing was stored for a refused request
    assert list(c.app.state.services.files.uploads.iterdir()) == []


def test_the_schema_says_what_a_predict_body_is(make_client):
    schema = make_client().get("/openapi.json").json()
    body = schema["paths"]["/vertex/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    request = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert request["additionalProperties"] is False and request["properties"]["instances"]["maxItems"] == 8
    image = schema["components"]["schemas"]["Instance"]["properties"]["image"]
    assert image["contentEncoding"] == "base64" and image["minLength"] >= 4 and image["pattern"]


def test_a_predict_body_is_checked_off_the_event_loop(make_client, monkeypatch):
    """While one predict's image check is stuck, the same event loop still answers /healthz."""
    c = make_client()
    entered, release = threading.Event(), threading.Event()
    real = vertex_contract.inspect_image

    def stuck(data, max_pixels):
        entered.set()
        release.wait(10)
        return real(data, max_pixels)

    monkeypatch.setattr(vertex_contract, "inspect_image", stuck)
    body = {"instances": [{"image": base64.b64encode(png()).decode(), "layers": 1, "resolution": 640}]}
    answers = []
    worker = threading.Thread(target=lambda: answers.append(c.post("/vertex/predict", json=body)))
    worker.start()
    try:
        assert entered.wait(10)
        t0 = time.monotonic()
        assert c.get("/healthz").status_code == 200
        assert time.monotonic() - t0 < 2.0
    finally:
        release.set()
        worker.join(30)
    assert answers[0].status_code == 200, answers[0].text


def test_the_ray_ingress_answers_a_replica_failure_without_its_traceback():
    from ray.serve.exceptions import BackPressureError

    from loadlab.ray_autoscaling import DEPLOYMENT
    from server.rayserve.app import VertexIngress
    from server.rayserve.options import ServeOptions

    ingress = VertexIngress.func_or_class.__new__(VertexIngress.func_or_class)
    ingress.options, ingress.mean_model_s = ServeOptions(autoscaling=replace(DEPLOYMENT, max_replicas=2)), 3.0
    failed = ingress._error(RuntimeError('Traceback (most recent call last):\n  File "/srv/x.py", pid=7 actor=ab'))
    assert failed.status == 500 and "RuntimeError" in failed.detail
    assert all(leak not in failed.detail for leak in ("Traceback", ".py", "pid=", "actor"))
    full = ingress._error(BackPressureError(num_queued_requests=4, max_queued_requests=4))
    assert full.status == 429 and full.headers["Retry-After"] == "6"  # 4 queued x 3 s / 2 replicas


@pytest.mark.parametrize("endpoint_type, body_mb", [("shared", None), ("dedicated", None), ("shared", 3.0)])
def test_both_servers_hold_a_predict_to_the_same_byte_counts(endpoint_type, body_mb, tmp_path):
    from server.rayserve.options import ServeOptions
    from server.routers.vertex import limits
    from server.settings import Settings

    job_server = limits(Settings(data_dir=tmp_path, vertex_endpoint_type=endpoint_type, vertex_max_body_mb=body_mb))
    ray = ServeOptions(vertex_endpoint_type=endpoint_type, vertex_max_body_mb=body_mb).predict_limits()
    assert ray == job_server
