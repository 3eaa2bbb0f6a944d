"""Shared by the server tests: a stand-in model honouring `LayeredModel.decompose_batch` (no pipeline
call, for the fast in-process tests; the real pipeline runs in test_server_e2e.py), test images, and an
in-process app factory."""

from __future__ import annotations

import contextlib
import io
import struct
import subprocess
import threading
import time
import zlib

import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from server.app import create_app
from server.process import free_port
from server.settings import Settings


class FakeModel:
    """Honours LayeredModel's decompose_batch; can block (gate) or fail, and counts calls."""

    source, kind, device, dtype, num_inference_steps, load_s = "fake", "fake", "cpu", "float32", 1, 0.01

    def __init__(self, delay_s: float = 0.0):
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.delay_s = delay_s
        self.fail_with: Exception | None = None

    def decompose_batch(self, images, layers, resolution, seeds):
        self.gate.wait(30)
        time.sleep(self.delay_s)
        self.calls.append(len(images))
        if self.fail_with is not None:
            err, self.fail_with = self.fail_with, None
            raise err
        return [[Image.new("RGBA", (8, 8), (i, 0, 0, 255)) for i in range(layers)] for _ in images]


def png(color="white", size=(32, 32), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and holds no pixels: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


class AppClients:
    """Builds in-process apps (TestClient, lifespan entered) and closes them all at the end."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.clients: list[TestClient] = []

    def __call__(self, model: FakeModel | None = None, wait_ready=True, loader=None, **settings) -> TestClient:
        model = model or FakeModel()
        settings.setdefault("data_dir", self.tmp_path / f"data{len(self.clients)}")
        app = create_app(Settings(**settings), model_loader=loader or (lambda _s: [model]))
        client = TestClient(app).__enter__()
        self.clients.append(client)
        client.model = model
        if wait_ready:
            wait_status(client, "/readyz", 200, headers={"X-API-Key": settings.get("api_key") or ""})
        return client

    def close(self) -> None:
        for c in self.clients:
            c.model.gate.set()
            c.__exit__(None, None, None)


def wait_status(client, path: str, status: int, timeout_s: float = 10.0, **kwargs):
    deadline = time.monotonic() + timeout_s
    while (r := client.get(path, **kwargs)).status_code != status:
        assert time.monotonic() < deadline, f"{path} never answered {status}: {r.status_code} {r.text}"
        time.sleep(0.01)
    return r


def upload(client, data=None, **headers) -> str:
    r = client.post("/api/upload", files={"file": ("x.png", data or png(), "image/png")}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["file_id"]


def submit(client, file_id, layers=2, resolution=640, **headers):
    return client.post("/api/decompose", json={"file_id": file_id, "num_layers": layers, "resolution": resolution},
                       headers=headers)


def wait_done(client, job_id, timeout=10.0) -> dict:
    body = client.get(f"/api/status/{job_id}", params={"wait": timeout}).json()
    assert body["status"] in ("completed", "failed"), body
    return body


def assert_error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    if "error" in body and isinstance(body["error"], dict):  # Google style (Vertex paths)
        assert body["error"]["code"] == status and body["error"]["message"], body
        return
    assert isinstance(body["detail"], str) and body["detail"], body
    if code:
        assert body["error"] == code, body


@contextlib.contextmanager
def tmpfs(path, options: str = "size=1m"):
    """A small tmpfs mounted at `path` for the block (root only; the test is skipped where mounting is
    not allowed), unmounted afterwards."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def served_app(settings, model=None):
    """(url, app) of the job app with the stand-in model under a real uvicorn on 127.0.0.1, in a thread,
    once it listens; stopped on exit."""
    app = create_app(settings, model_loader=lambda _s: [model or FakeModel()])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server not started"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)

