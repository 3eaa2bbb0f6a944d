"""Fault injection for tests (`--enable-fault-injection`): the statuses the next Vertex predictions
answer with, a latency added to every prediction, and pipeline batches that raise. Plain state with no
FastAPI in it: the services hold it, the test-only route (`server/internal/faults.py`) sets it. Nothing
here runs unless the setting is on: `Services.faults` is None otherwise."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from server.errors import APIError


class Faults:
    def __init__(self):
        self.statuses: deque[int] = deque()
        self.delay_s = 0.0
        self.fail_jobs = 0
        self._lock = threading.Lock()  # fail_jobs is taken from the worker threads

    async def before_predict(self) -> None:
        """Called by the Vertex predict routes before anything else."""
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        if self.statuses:
            status = self.statuses.popleft()
            raise APIError(status, "injected_fault", f"injected fault {status} (fault injection)",
                           headers={"Retry-After": "1"} if status in (429, 503) else None)

    def replace(self, statuses: list[int], delay_s: float, fail_jobs: int) -> None:
        with self._lock:
            self.statuses = deque(statuses)
            self.delay_s = delay_s
            self.fail_jobs = fail_jobs

    def before_batch(self) -> None:
        """Called by a worker before each pipeline call: raises while failures are pending."""
        with self._lock:
            if self.fail_jobs <= 0:
                return
            self.fail_jobs -= 1
        raise RuntimeError("injected pipeline failure (fault injection)")
