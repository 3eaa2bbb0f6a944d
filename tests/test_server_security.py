"""Issue 17 items 5 and 9: the API key is checked before a byte of the body is read, on every guarded
route, whatever the body; the open health routes say only alive / ready; slow clients cannot hold
connections (header timeout, connection cap). In-process ASGI calls (fast), then a real `python -m
server` (slow)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time

import pytest
import requests

from server.app import create_app
from server.process import ServerProcess
from server.settings import Settings
from tests.server_helpers import AppClients, FakeModel, assert_error, png
from tests.test_server_process import _read_response

KEY = "s3cret"
UPLOAD_15MB = 15 * 1024 * 1024
# What the routers guard with require_api_key, and what they leave open (checked against the app's own
# routes below, so a new route is in one list or the other).
GUARDED = {("GET", "/readyz"), ("GET", "/metrics"), ("POST", "/api/upload"), ("POST", "/api/decompose"),
           ("GET", "/api/status/{job_id}"), ("GET", "/api/result/{job_id}"),
           ("GET", "/api/result/{job_id}/layers/{index}"), ("POST", "/vertex/predict"),
           ("GET", "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}"),
           ("POST", "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:predict"),
           ("POST", "/_test/faults")}
OPEN = ["/healthz", "/vertex/health", "/docs", "/openapi.json"]
SAMPLE_PARAMS = {"job_id": "0" * 32, "index": "0", "project": "p", "location": "l", "endpoint": "e"}
BODIES = {"none": (b"", {}), "malformed-json": (b'{"file_id": ', {"content-type": "application/json"}),
          "valid-json": (b'{"file_id": "' + b"a" * 64 + b'", "num_layers": 2, "resolution": 640}',
                         {"content-type": "application/json"}),
          "15MB-declared": (None, {"content-type": "multipart/form-data; boundary=b",
                                   "content-length": str(UPLOAD_15MB)})}


@pytest.fixture
def keyed_app(tmp_path):
    return create_app(Settings(data_dir=tmp_path, api_key=KEY, enable_fault_injection=True),
                      model_loader=lambda _s: [FakeModel()])


@pytest.fixture
def make_client(tmp_path):
    clients = AppClients(tmp_path)
    yield clients
    clients.close()


def asgi_call(app, method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[list, int, dict, bytes]:
    """One request straight into the ASGI app: (the receive() calls the app made, status, headers, body).
    `body=None` sends only the headers: receive() fails the test if the app asks for the body."""
    calls = []

    async def receive():
        calls.append(method)
        if body is None:
            raise AssertionError(f"{method} {path}: the app read the body before refusing the request")
        return {"type": "http.request", "body": body, "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if body and "content-length" not in headers:
        raw.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": raw,
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return calls, start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, out


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE_PARAMS[m[1]], path)


def test_guarded_routes_are_the_ones_the_routers_guard(keyed_app):
    spec = keyed_app.openapi()
    guarded = {(method.upper(), path) for path, ops in spec["paths"].items() for method, op in ops.items()
               if op.get("security")}
    assert guarded == GUARDED
    assert not any(op.get("security") for path in OPEN if path in spec["paths"] for op in spec["paths"][path].values())


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("method, path", sorted(GUARDED))
@pytest.mark.parametrize("key", ["missing", "wrong"])
def test_every_guarded_route_401_before_the_body_whatever_the_body(keyed_app, method, path, body, key):
    data, headers = BODIES[body]
    headers = dict(headers)
    if key == "wrong":
        headers["x-api-key"] = "not-the-key"
    calls, status, reply, out = asgi_call(keyed_app, method, concrete(path), headers, None if data is None else data)
    assert status == 401 and calls == [], (status, out)
    assert reply["www-authenticate"] == "Bearer"
    if data is None or data:  # a body the server did not read: the connection is not reused for it
        assert reply["connection"] == "close"
    answer = json.loads(out)
    if path.startswith(("/v1/", "/vertex/")):
        assert answer["error"]["code"] == 401 and answer["error"]["status"] == "UNAUTHENTICATED", answer
    else:
        assert answer["error"] == "unauthorized" and "API key" in answer["detail"], answer


def test_unauthenticated_15mb_upload_refused_before_its_body(keyed_app):
    calls, status, reply, out = asgi_call(keyed_app, "POST", "/api/upload", BODIES["15MB-declared"][1], None)
    assert (status, calls, reply["connection"]) == (401, [], "close")
    assert json.loads(out)["error"] == "unauthorized"


def test_malformed_json_without_a_key_is_401_not_400(make_client):
    c = make_client(api_key=KEY)
    r = c.post("/api/decompose", content=b'{"file_id": ', headers={"content-type": "application/json"})
    assert_error(r, 401, "unauthorized")
    r = c.post("/api/decompose", content=b'{"file_id": ', headers={"content-type": "application/json", "X-API-Key": KEY})
    assert_error(r, 400, "malformed_json")  # with the key, the body is read and judged


def test_the_key_still_opens_every_way(make_client):
    c = make_client(api_key=KEY)
    for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"}):
        r = c.post("/api/upload", files={"file": ("x.png", png(), "image/png")}, headers=headers)
        assert r.status_code == 201, (headers, r.text)
    assert c.get("/readyz", headers={"Authorization": f"Basic {KEY}"}).status_code == 401


def test_open_routes_answer_without_a_key_and_say_only_ready(make_client):
    c = make_client(api_key=KEY)
    for path in OPEN:
        assert c.get(path).status_code == 200, path
    assert c.get("/healthz").json() == {"ok": True}
    assert c.get("/vertex/health").json() == {"ready": True}  # no model path, no error detail
    details = c.get("/readyz", headers={"X-API-Key": KEY}).json()
    assert details["ready"] is True and details["model"]["source"] == "fake"
    assert c.get("/no/such/route").status_code == 404  # not a guarded route: the router answers


def test_no_key_configured_everything_open(make_client):
    c = make_client()
    r = c.post("/api/decompose", content=b'{"file_id": ', headers={"content-type": "application/json"})
    assert_error(r, 400, "malformed_json")
    assert c.get("/readyz").status_code == 200


# --- on a real uvicorn process (slow) ---------------------------------------------------------------

def _closed_by_server(sock: socket.socket, timeout_s: float) -> bool:
    sock.settimeout(timeout_s)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@pytest.fixture(scope="module")
def guarded_server():
    with ServerProcess(api_key=KEY, header_timeout_s=2, max_connections=100, cache_ttl=0) as server:
        yield server


@pytest.mark.slow
def test_process_unauthenticated_15mb_upload_401_before_the_body_is_sent(guarded_server):
    head = ("POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {UPLOAD_15MB}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", guarded_server.port), timeout=10) as sock:
        sock.sendall(head.encode())  # the headers only: not one byte of the 15 MB body, so any answer came first
        status, data = _read_response(sock)
        assert status == 401, data
        head_lines = data.split(b"\r\n\r\n")[0].lower()
        assert b"www-authenticate: bearer" in head_lines and b"connection: close" in head_lines
        assert _closed_by_server(sock, 5)  # the unread body is not taken for a next request


@pytest.mark.slow
def test_process_slow_headers_are_cut_off_and_new_requests_answered(guarded_server):
    """300 clients sending their headers a byte every 0.5 s (more than the cap of 100 connections): a new
    request is answered (503 at the cap, or served) instead of hanging, and every slow connection is
    closed by the header timeout (2 s) though it keeps sending; then requests are served again."""
    port = guarded_server.port
    slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(300)]
    trickle = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    stop = threading.Event()

    def send_slowly():
        for byte in trickle:
            for s in slow:
                try:
                    s.send(bytes([byte]))
                except OSError:
                    pass
            if stop.wait(0.5):
                return

    sender = threading.Thread(target=send_slowly, daemon=True)
    sender.start()
    try:
        time.sleep(0.5)
        r = requests.get(guarded_server.url + "/healthz", timeout=10)  # answered, not left hanging
        assert r.status_code in (200, 503)
        t0 = time.monotonic()
        closed = sum(_closed_by_server(s, max(0.1, 6 - (time.monotonic() - t0))) for s in slow)
        assert closed == len(slow), f"{len(slow) - closed} slow connections still held"
        assert requests.get(guarded_server.url + "/healthz", timeout=5).status_code == 200
    finally:
        stop.set()
        sender.join(5)
        for s in slow:
            s.close()


@pytest.mark.slow
def test_process_keep_alive_requests_are_not_cut_by_the_header_timeout(guarded_server):
    """The timer is for a request's head only: a kept-alive connection asking every 0.5 s for 3 s (past
    the 2 s header timeout) is served every time on the same connection."""
    with socket.create_connection(("127.0.0.1", guarded_server.port), timeout=5) as sock:
        for _ in range(7):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, data = _read_response(sock)
            assert status == 200 and data.endswith(b'{"ok":true}'), data
            time.sleep(0.5)
