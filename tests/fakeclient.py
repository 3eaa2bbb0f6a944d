"""A stand-in client for testing the Locust and bench plumbing (shapes, stage tags, job ledger, reports,
capacity search) in seconds and without a server or a model: `--client-factory tests.fakeclient:make_client`
(the subprocess needs the repository root on PYTHONPATH).

Each process holds one simulated FIFO worker: jobs queue for it and take `LOADLAB_FAKE_SERVICE_S`
seconds each (default 0.2), so a run against it is a single-server queue with a fixed service time
whose figures are known analytically; a negative value rejects every job (429). With `LOADLAB_FAKE_HTTP=1`
each job also makes one real HTTP GET to the client's URL (a tiny local endpoint), so the load
generator does a real client's network work (the dispatch-lateness benchmark, `locustfiles/lateness.py`)."""

from __future__ import annotations

import os
import threading
import time

from clients.base import DecomposeResult, RejectedError


class FakeClient:
    """Honours the `clients.base.DecomposeClient` contract; sleeps instead of calling a server."""

    name = "fake"
    _worker: threading.Lock | None = None
    _guard = threading.Lock()

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.service_s = float(os.environ.get("LOADLAB_FAKE_SERVICE_S", "0.2"))
        self.session = None
        if os.environ.get("LOADLAB_FAKE_HTTP") == "1":
            import requests

            self.session = requests.Session()

    @classmethod
    def _lock(cls) -> threading.Lock:
        # Made on first use: under Locust, gevent has patched `threading` by then, so the one worker
        # is a gevent lock there and a thread lock in a plain process.
        with cls._guard:
            if cls._worker is None:
                cls._worker = threading.Lock()
            return cls._worker

    def decompose_image(self, image_path: str, num_layers: int, resolution: int) -> DecomposeResult:
        if self.service_s < 0:
            raise RejectedError("queue full (stand-in: LOADLAB_FAKE_SERVICE_S < 0)", status=429)
        submitted = time.time()
        t0 = time.perf_counter()
        if self.session is not None:
            self.session.get(self.url, timeout=10).raise_for_status()
        with self._lock():
            started = time.perf_counter()
            time.sleep(self.service_s)
        total = time.perf_counter() - t0
        return DecomposeResult(
            layers=[None] * num_layers, served_by=self.name, submitted_at=submitted, finished_at=time.time(),
            timings={"upload_s": 0.0, "queue_s": started - t0, "inference_s": self.service_s,
                     "transfer_s": 0.0, "total_s": total})

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def make_client(target: str, url: str) -> FakeClient:
    return FakeClient(url)
