"""A stand-in client for testing the Locust plumbing (shape, stage tags, job ledger, report) in
seconds and without a server or a model: `--client-factory locustfiles.fakeclient:make_client`.

Each process holds one simulated FIFO worker: jobs queue for it and take `LOADLAB_FAKE_SERVICE_S`
seconds each (default 0.2); a negative value rejects every job (429). With `LOADLAB_FAKE_HTTP=1`
each job also makes one real HTTP GET to the client's URL (a tiny local endpoint), so the load
generator does a real client's network work (the dispatch-lateness benchmark, `locustfiles/lateness.py`).
Not a measurement of the service; never used by `bench`."""

from __future__ import annotations

import os
import time

from clients.base import DecomposeResult, RejectedError


class FakeClient:
    """Honours the `clients.base.DecomposeClient` contract; sleeps instead of calling a server."""

    name = "fake"
    _worker = None

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.service_s = float(os.environ.get("LOADLAB_FAKE_SERVICE_S", "0.2"))
        self.session = None
        if os.environ.get("LOADLAB_FAKE_HTTP") == "1":
            import requests

            self.session = requests.Session()

    @classmethod
    def _lock(cls):
        if cls._worker is None:
            from gevent.lock import Semaphore

            cls._worker = Semaphore(1)
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
