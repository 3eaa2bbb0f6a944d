"""Issue 12 on a real `python -m server` process (uvicorn, tiny CPU model): the Vertex health route
named /healthz answers readiness, request bodies are refused before they are read (Content-Length at
once, chunked at the limit), the API key is not on the command line, and an unusable data directory is
one clear log line and 503 on readiness, not a traceback loop."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from server.process import ServerProcess
from tests.server_helpers import png, tmpfs

pytestmark = pytest.mark.slow
KEY = "process-test-key"


@pytest.fixture(scope="module")
def keyed_server():
    with ServerProcess(api_key=KEY, max_upload_mb=1, cache_ttl=0) as server:
        yield server


def _raw_request(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode())
    return sock


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """(status, the whole response) of an HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def _content_length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_health_route_named_healthz_answers_readiness(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")  # a saved pipeline that cannot load
    server = ServerProcess(model=str(broken), env={"AIP_HEALTH_ROUTE": "/healthz"}).start(wait_ready=False)
    try:
        deadline = time.monotonic() + 60
        while (body := requests.get(server.url + "/readyz", timeout=5).json()).get("error") == "model still loading":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert body["ready"] is False and "model load failed" in body["error"]  # why: on /readyz only
        r = requests.get(server.url + "/healthz", timeout=5)
        assert r.status_code == 503 and r.json() == {"ready": False}
    finally:
        server.stop()

    server = ServerProcess(env={"AIP_HEALTH_ROUTE": "/healthz"}).start(wait_ready=False)
    try:
        seen = []
        deadline = time.monotonic() + 300
        while not seen or seen[-1] != 200:
            assert time.monotonic() < deadline, seen
            seen.append(requests.get(server.url + "/healthz", timeout=5).status_code)
            time.sleep(0.05)
        # 503 while the model loaded (the load takes seconds: torch and diffusers are imported then), then 200
        assert seen[0] == 503 and set(seen) == {503, 200}, seen
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
    finally:
        server.stop()


def test_content_length_over_limit_refused_before_the_body(keyed_server):
    head = (f"POST /api/upload HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000000\r\n\r\n")
    t0 = time.monotonic()
    sock = _raw_request(keyed_server.port, head)  # headers only: not one byte of the 100 MB body is sent
    with sock:
        status, data = _read_response(sock)
    assert status == 413 and time.monotonic() - t0 < 5
    assert b'"error":"body_too_large"' in data, data


def test_chunked_upload_cut_off_at_the_limit(keyed_server):
    """A chunked body has no Content-Length: the server must stop at the limit (1 MB + framing) and
    answer 413 while the client is still sending, not after reading all 64 MB."""
    head = (f"POST /api/upload HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n")
    sock = _raw_request(keyed_server.port, head)
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent, total = 0, 64 * 1024 * 1024
    part_head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
    sock.sendall(f"{len(part_head):x}\r\n".encode() + part_head + b"\r\n")
    sock.settimeout(0.5)
    status = None
    with sock:
        while sent < total:
            try:
                sock.sendall(frame)
                sent += len(chunk)
            except OSError:  # the server answered and closed
                break
            sock.setblocking(False)
            try:
                peek = sock.recv(65536, socket.MSG_PEEK)
            except BlockingIOError:
                peek = b""
            sock.setblocking(True)
            sock.settimeout(0.5)
            if peek:
                break
        sock.settimeout(10)
        status, data = _read_response(sock)
    assert status == 413, data
    assert b"body_too_large" in data
    # socket buffers on loopback hold a few MB at most; without the guard all 64 MB are read first
    assert sent < 24 * 1024 * 1024, sent


def test_api_key_in_environment_not_on_command_line(keyed_server):
    cmdline = open(f"/proc/{keyed_server.pid}/cmdline", "rb").read().replace(b"\0", b" ")
    assert KEY.encode() not in cmdline and b"--api-key" not in cmdline
    assert requests.get(keyed_server.url + "/readyz", timeout=5).status_code == 401
    assert requests.get(keyed_server.url + "/readyz", headers={"X-API-Key": KEY}, timeout=5).status_code == 200
    assert requests.post(keyed_server.url + "/api/upload", files={"file": ("x.png", png(), "image/png")},
                         headers={"X-API-Key": KEY}, timeout=10).status_code == 201


def test_read_only_data_dir_is_a_clear_error_not_a_traceback_loop(tmp_path):
    with tmpfs(tmp_path / "ro", "size=1m,ro") as mount:
        log = tmp_path / "server.log"
        server = ServerProcess(data_dir=mount / "server", keep_data=True)
        server.log_path = log  # the data directory cannot hold the log
        try:
            server.start(wait_ready=False)
            r = requests.get(server.url + "/readyz", timeout=5)
            assert r.status_code == 503 and "not writable" in r.json()["error"] and "Read-only" in r.json()["error"]
            time.sleep(2)  # the process stays up and quiet: no retry loop
            assert server.proc.poll() is None
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
            assert requests.post(server.url + "/api/upload", files={"file": ("x.png", png(), "image/png")},
                                 timeout=5).status_code == 503
            text = log.read_text()
            assert "Traceback" not in text and text.count("storage unavailable") == 1, text
        finally:
            server.stop()


def test_the_server_takes_no_api_key_flag_only_the_environment(capsys):
    from server.__main__ import build_parser
    assert "--api-key" not in build_parser().format_help() and "DECOMPOSER_API_KEY" in build_parser().description
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--api-key", "visible-to-ps"])
    assert exit_.value.code == 2 and "unrecognized arguments: --api-key" in capsys.readouterr().err
