"""The intake: the one path by which images come in, jobs are submitted and waited for, used alike by
the job API (`routers/files.py`, `routers/jobs.py`) and the Vertex routes (`routers/vertex.py`)."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import anyio
import anyio.to_thread

from server.errors import APIError
from server.images import inspect_image
from server.scheduler import Draining, QueueFull, Scheduler
from server.schemas import JobStatus, UploadResponse
from server.settings import Settings
from server.store import FileStore, JobStore

log = logging.getLogger("server.intake")

FINISHED = ("completed", "failed")
T = TypeVar("T")


def image_threads() -> int:
    """Decoding (Pillow), hashing and writing release the GIL, so these threads run in parallel; one CPU
    is left to the event loop (measured on 2 CPUs with `python -m bench uploadflood`: /healthz p99 24 ms
    with 1 thread, 33 ms with 2, for the same upload times)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) - 1))


class Intake:
    def __init__(self, settings: Settings, store: JobStore | None, files: FileStore | None, scheduler: Scheduler):
        """`store`/`files` are None while the data directory is unusable (the routes using them answer
        503 first, see deps.require_storage)."""
        self.settings, self.store, self.files, self.scheduler = settings, store, files, scheduler
        # Its own bound, not anyio's default pool of 40 that FastAPI's sync dependencies share: a flood of
        # uploads queues here (holding only its spooled file, not its bytes) and cannot starve other routes.
        self.limiter = anyio.CapacityLimiter(image_threads())

    async def off_loop(self, fn: Callable[..., T], *args) -> T:
        """`fn(*args)` on one of the intake's threads: image and storage work never runs on the event loop."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.limiter)

    # --- images ------------------------------------------------------------------------------------

    def check_size(self, size: int, what: str = "upload") -> None:
        settings = self.settings
        if size > settings.max_upload_bytes:
            raise APIError(413, "upload_too_large", f"{what} is over the limit of {settings.max_upload_mb:g} MB")

    def check_image(self, data: bytes, what: str = "upload") -> tuple[int, int]:
        """(width, height) of an acceptable image, or the APIError (413/415/422) that says why not."""
        self.check_size(len(data), what)
        return inspect_image(data, self.settings.max_pixels)

    def store_image(self, data: bytes, size: tuple[int, int]) -> UploadResponse:
        """Store checked image bytes under their content hash (once per content)."""
        file_id = FileStore.content_id(data)
        with storage_guard("store the image"):
            self.files.put_upload(file_id, data)
            self.store.add_file(file_id, size[0], size[1], len(data))
        return UploadResponse(file_id=file_id, width=size[0], height=size[1], size_bytes=len(data))

    def upload(self, data: bytes) -> UploadResponse:
        return self.store_image(data, self.check_image(data))

    def upload_from(self, file: IO[bytes]) -> UploadResponse:
        """Read (at most one byte past the limit, so an oversized file is never held whole), check, store."""
        file.seek(0)
        data = file.read(self.settings.max_upload_bytes + 1)
        self.check_size(len(data))  # the file alone over the limit while the framed body was not
        return self.upload(data)

    # The same, off the event loop: what the async routes call (uploads, and Vertex predict's images).

    async def store_image_async(self, data: bytes, size: tuple[int, int]) -> UploadResponse:
        return await self.off_loop(self.store_image, data, size)

    async def upload_file_async(self, file: IO[bytes]) -> UploadResponse:
        return await self.off_loop(self.upload_from, file)

    # --- jobs --------------------------------------------------------------------------------------

    def submit_all(self, keys: list[tuple[str, int, int]], source: str = "api") -> list[dict]:
        """Submit every (file_id, num_layers, resolution), all or none: 404 unknown file, 429 queue full
        (with Retry-After), 503 draining."""
        for file_id, _, _ in keys:
            if self.store.get_file(file_id) is None or not self.files.upload_path(file_id).exists():
                raise APIError(404, "unknown_file", f"no uploaded file with id {file_id}; POST /api/upload first")
        try:
            with storage_guard("record the job"):
                return self.scheduler.submit_all(keys, source=source)
        except QueueFull as full:
            raise APIError(429, "queue_full", f"{full}; retry after about {full.retry_after_s} s",
                           headers={"Retry-After": str(full.retry_after_s)}) from None
        except Draining as err:
            raise APIError(503, "shutting_down", str(err)) from None

    def submit(self, file_id: str, num_layers: int, resolution: int, source: str = "api") -> dict:
        return self.submit_all([(file_id, num_layers, resolution)], source=source)[0]

    def get_job(self, job_id: str) -> dict:
        job = self.store.get(job_id)
        if job is None:
            raise APIError(404, "unknown_job", f"no job with id {job_id}")
        return job

    async def wait(self, job_id: str, timeout_s: float) -> dict:
        """The job once it has ended, or as it is when `timeout_s` passes or the server drains."""
        job = self.get_job(job_id)
        if timeout_s > 0 and job["status"] not in FINISHED:
            await self.scheduler.wait_finished(job_id, timeout_s)
            job = self.get_job(job_id)
        return job

    async def wait_until_finished(self, job_id: str, deadline: float, timeout_s: float) -> dict:
        """Wait across long-poll rounds until the job ends: 504 past `deadline` (monotonic), 503 when
        the server drains (the job stays queued for the next start)."""
        while True:
            job = self.get_job(job_id)
            if job["status"] in FINISHED:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise APIError(504, "timeout", f"job {job_id} did not finish in {timeout_s:g} s")
            if self.scheduler.draining:
                raise APIError(503, "shutting_down", "server is shutting down; the job stays queued")
            await self.scheduler.wait_finished(job_id, min(remaining, 60.0))

    def status(self, job: dict) -> JobStatus:
        fields = {k: job[k] for k in JobStatus.model_fields if k in job and k != "queue_position"}
        fields["cached"] = bool(job["cached"])
        position = self.scheduler.queue_position(job["job_id"]) if job["status"] == "queued" else None
        return JobStatus(queue_position=position, **fields)

    def layer_paths(self, job: dict) -> list[Path]:
        return self.files.layer_paths(job["result_job_id"] or job["job_id"])

    def completed_layers(self, job_id: str) -> list[Path]:
        """The layer files of a completed job: 404 unknown, 409 not completed (yet, or failed)."""
        job = self.get_job(job_id)
        if job["status"] != "completed":
            raise APIError(409, "not_completed", f"job {job_id} is {job['status']}, not completed"
                           + (f": {job['error']}" if job["error"] else ""))
        paths = self.layer_paths(job)
        if not paths:
            raise APIError(404, "result_gone", f"the result files of job {job_id} are missing from the data directory")
        return paths


@contextmanager
def storage_guard(what: str):
    """Turns a write failure of the data directory (disk full, read-only) into one 503 with the cause,
    logged as one line, instead of a 500 with a traceback per request."""
    try:
        yield
    except (OSError, sqlite3.Error) as err:
        log.error("storage failure: could not %s: %s", what, err)
        raise APIError(503, "storage_unavailable",
                       f"the data directory cannot be written (could not {what}): {err}") from None
