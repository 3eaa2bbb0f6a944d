"""One job as a Locust user runs it: the test image of its case (written on first use), a client
from a pool (built on first use, one job at a time each), and a `JobRecord` that is never missing —
any exception on the way, not only the client's, is recorded as a failed job."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from clients.factory import make_client
from clients.record import run_job
from loadlab.cases import test_image
from loadlab.schema import FAILED, Case, JobRecord

_IMAGE_DIR: Path | None = None
_IMAGES: dict[str, str] = {}


def image_for(case: Case) -> str:
    """The white test image of `case`, written once per process into a private folder (several
    worker processes must not write the same file at once). Built per case on first use, so a
    web-UI re-run with other `--cases` finds its images."""
    global _IMAGE_DIR
    if case.name not in _IMAGES:
        if _IMAGE_DIR is None:
            _IMAGE_DIR = Path(tempfile.mkdtemp(prefix=f"loadlab-images-{os.getpid()}-"))
        _IMAGES[case.name] = str(test_image(case, _IMAGE_DIR / case.name))
    return _IMAGES[case.name]


class ClientPool:
    """Clients of one target, each running one job at a time: a closed-loop user keeps one; an
    open-loop dispatcher takes one per job in flight. A client is built on first need, inside the
    job, so a client that cannot be built is a failed job with the reason, not a dead user."""

    def __init__(self, target: str, url: str | None, factory: str = "",
                 on_build: Callable[[object], None] | None = None) -> None:
        self.target, self.url, self.factory, self.on_build = target, url, factory, on_build
        self.free: list[object] = []
        self.built: list[object] = []

    def acquire(self):
        if self.free:
            return self.free.pop()
        client = make_client(self.target, self.url or "", factory=self.factory)
        self.built.append(client)
        if self.on_build:
            self.on_build(client)
        return client

    def release(self, client) -> None:
        self.free.append(client)

    def close(self) -> None:
        for client in self.built:
            close = getattr(client, "close", None)
            if close:
                close()
        self.free.clear()
        self.built.clear()


def run_one(pool: ClientPool, case: Case, served_by: str, scheduled: float | None = None) -> JobRecord:
    """Run one job of `case` with a client of `pool`: `clients.record.run_job`'s record, or a failed
    record when anything around it raised (building the client or the image, a malformed result)."""
    submitted = time.time()
    try:
        client = pool.acquire()
        try:
            return run_job(client, case, image_for(case), served_by=served_by, scheduled=scheduled)
        finally:
            pool.release(client)
    except Exception as err:
        return failed_record(case.name, err, submitted, served_by, scheduled)


def failed_record(case: str, err: Exception, submitted: float, served_by: str = "",
                  scheduled: float | None = None) -> JobRecord:
    """A job that raised outside the client's own error handling, as a failed record with the reason."""
    now = time.time()
    return JobRecord(case=case, status=FAILED, scheduled=scheduled, submitted=submitted, finished=now,
                     e2e_s=now - (scheduled if scheduled is not None else submitted),
                     error=f"{type(err).__name__}: {err}", served_by=served_by or None, extra={"client_bug": True})
