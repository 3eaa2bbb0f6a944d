"""`LocalClient`: the job API of our server (`server/`), behind `decompose_image`.

One job = upload (content-hash id, skipped when this client already uploaded the same file) →
`POST /api/decompose` (429 → wait `Retry-After`, bounded, with jitter) → long-poll
`GET /api/status/{id}?wait=S` (one request per state change or per S seconds, not a 1 s polling loop:
the article's polling added ~0.5 s of bias per job and one request/s/job of load) → download the zip of
RGBA PNGs.

Errors: 4xx → `ClientError` with the server's `detail`; 429 after the retries → `RejectedError`; connection
refused / 5xx → `TargetUnavailableError`; the overall deadline → `TargetTimeoutError`; a failed job →
`JobFailedError`.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import requests

from clients.base import (
    ClientError,
    DecomposeResult,
    JobFailedError,
    RejectedError,
    TargetTimeoutError,
    TargetUnavailableError,
)
from clients.images import layers_from_zip

TERMINAL = ("completed", "failed")


def _retry_after_s(response: requests.Response, default: float) -> float:
    """`Retry-After` in seconds (the header form our server sends); an HTTP date or garbage → default."""
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:500]
    if isinstance(body, dict):
        detail = body.get("detail", body)
        code = body.get("error")
        return f"{detail} ({code})" if code else str(detail)
    return str(body)[:500]


class LocalClient:
    """Client of the local job API.

    base_url: e.g. "http://127.0.0.1:8000". api_key: sent as `X-API-Key` (env `DECOMPOSER_API_KEY`).
    connect_timeout_s / read_timeout_s: per HTTP call (a long-poll adds its `wait` to the read timeout).
    deadline_s: the whole `decompose_image` call; past it → `TargetTimeoutError`.
    max_429_retries: how many times a 429 is waited out (Retry-After, capped by max_retry_after_s, plus
    up to 20 % jitter so rejected users do not come back in lockstep) before `RejectedError`.
    poll_wait_s: the long-poll window (the server caps it at 60 s).
    reuse_uploads: remember file ids per (path, mtime, size) and skip the re-upload."""

    name = "local"

    def __init__(self, base_url: str, api_key: str | None = None, *, connect_timeout_s: float = 5.0,
                 read_timeout_s: float = 60.0, deadline_s: float = 900.0, max_429_retries: int = 5,
                 max_retry_after_s: float = 30.0, poll_wait_s: float = 30.0, reuse_uploads: bool = True,
                 name: str | None = None):
        self.base_url = base_url.rstrip("/")
        if "://" not in self.base_url:
            self.base_url = "http://" + self.base_url
        self.api_key = api_key if api_key is not None else os.environ.get("DECOMPOSER_API_KEY") or None
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.deadline_s = deadline_s
        self.max_429_retries = max_429_retries
        self.max_retry_after_s = max_retry_after_s
        self.poll_wait_s = poll_wait_s
        self.reuse_uploads = reuse_uploads
        if name:
            self.name = name
        self.session = requests.Session()
        if self.api_key:
            self.session.headers["X-API-Key"] = self.api_key
        self._uploads: dict[tuple[str, float, int], str] = {}
        self._lock = threading.Lock()
        self.sleep = time.sleep  # tests may replace it

    # --- HTTP plumbing --------------------------------------------------------------------------

    def _request(self, method: str, path: str, deadline: float, read_timeout: float | None = None,
                 **kwargs) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TargetTimeoutError(f"{self.name}: deadline of {self.deadline_s:.0f} s passed before {method} {path}")
        timeout = (min(self.connect_timeout_s, remaining), min(read_timeout or self.read_timeout_s, remaining))
        url = self.base_url + path
        try:
            return self.session.request(method, url, timeout=timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as err:
            raise TargetUnavailableError(f"{self.name}: cannot connect to {self.base_url}: {err}") from err
        except requests.exceptions.Timeout as err:
            raise TargetTimeoutError(f"{self.name}: {method} {path} timed out after {timeout[1]:.1f} s") from err
        except requests.exceptions.ConnectionError as err:
            raise TargetUnavailableError(f"{self.name}: cannot reach {self.base_url}: {err}") from err

    def _check(self, response: requests.Response, what: str) -> None:
        if response.status_code < 400:
            return
        message = f"{self.name}: {what} → HTTP {response.status_code}: {_server_message(response)}"
        if response.status_code == 429:
            raise RejectedError(message, status=429)
        if response.status_code >= 500:
            raise TargetUnavailableError(message, status=response.status_code)
        raise ClientError(message, status=response.status_code)

    # --- the job API steps --------------------------------------------------------------------------

    def upload(self, image_path: str, deadline: float | None = None) -> str:
        """The server's file id for `image_path` (uploading unless this client already did)."""
        deadline = deadline or time.monotonic() + self.deadline_s
        path = Path(image_path)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime, stat.st_size)
        if self.reuse_uploads:
            with self._lock:
                if key in self._uploads:
                    return self._uploads[key]
        mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".webp": "image/webp"}.get(path.suffix.lower(), "application/octet-stream")
        with path.open("rb") as fh:
            response = self._request("POST", "/api/upload", deadline, files={"file": (path.name, fh, mime)})
        self._check(response, "upload")
        file_id = response.json()["file_id"]
        if self.reuse_uploads:
            with self._lock:
                self._uploads[key] = file_id
        return file_id

    def submit(self, file_id: str, num_layers: int, resolution: int, deadline: float) -> tuple[dict, int]:
        """`POST /api/decompose`, waiting out 429s; returns (the 202 body, retries used)."""
        # Hand-written rather than urllib3's Retry or tenacity: Retry would sleep a Retry-After past the
        # call's deadline, adds no jitter to it and hides the retry count; tenacity needs a custom wait
        # and stop for both, which is longer than this loop.
        body = {"file_id": file_id, "num_layers": int(num_layers), "resolution": int(resolution)}
        retries = 0
        while True:
            response = self._request("POST", "/api/decompose", deadline, json=body)
            if response.status_code != 429:
                self._check(response, "decompose")
                return response.json(), retries
            if retries >= self.max_429_retries:
                raise RejectedError(f"{self.name}: queue full (429) after {retries} retries: "
                                    f"{_server_message(response)}", status=429)
            wait = min(_retry_after_s(response, 1.0), self.max_retry_after_s)
            wait *= 1.0 + random.uniform(0.0, 0.2)
            if time.monotonic() + wait >= deadline:
                raise TargetTimeoutError(f"{self.name}: queue full (429) and the deadline of "
                                         f"{self.deadline_s:.0f} s leaves no time to wait {wait:.1f} s", status=429)
            retries += 1
            self.sleep(wait)

    def wait_for(self, job_id: str, deadline: float) -> dict:
        """Long-poll the job's status until it is completed or failed; the body gains `detect_s`."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TargetTimeoutError(f"{self.name}: job {job_id} not finished within the deadline "
                                         f"of {self.deadline_s:.0f} s")
            wait = max(0.0, min(self.poll_wait_s, remaining - 0.5))
            response = self._request("GET", f"/api/status/{job_id}", deadline, params={"wait": f"{wait:.1f}"},
                                     read_timeout=wait + self.read_timeout_s)
            received = time.time()
            self._check(response, f"status {job_id}")
            status = response.json()
            if status.get("status") in TERMINAL:
                finished = status.get("finished_at")
                status["detect_s"] = received - finished if finished is not None else None
                return status

    def download(self, job_id: str, deadline: float) -> list[Any]:
        response = self._request("GET", f"/api/result/{job_id}", deadline)
        self._check(response, f"result {job_id}")
        return layers_from_zip(response.content)

    # --- the interface ------------------------------------------------------------------------------

    def decompose_image(self, image_path: str, num_layers: int, resolution: int) -> DecomposeResult:
        submitted_at = time.time()
        t0 = time.perf_counter()
        deadline = time.monotonic() + self.deadline_s
        file_id = self.upload(image_path, deadline)
        t_upload = time.perf_counter()
        try:
            accepted, retries = self.submit(file_id, num_layers, resolution, deadline)
        except ClientError as err:
            if err.status != 404 or not self.reuse_uploads:
                raise
            # the server forgot the file (restart, eviction): upload again once
            with self._lock:
                self._uploads = {k: v for k, v in self._uploads.items() if v != file_id}
            file_id = self.upload(image_path, deadline)
            t_upload = time.perf_counter()
            accepted, retries = self.submit(file_id, num_layers, resolution, deadline)
        job_id = accepted["job_id"]
        status = self.wait_for(job_id, deadline)
        if status["status"] == "failed":
            raise JobFailedError(f"{self.name}: job {job_id} failed: {status.get('error') or 'no message'}")
        t_done = time.perf_counter()
        layers = self.download(job_id, deadline)
        t_end = time.perf_counter()
        if len(layers) != int(num_layers):
            raise ClientError(f"{self.name}: job {job_id} returned {len(layers)} layers, asked {num_layers}")
        return DecomposeResult(
            layers=layers,
            timings={"upload_s": t_upload - t0, "queue_s": status.get("queue_s"),
                     "inference_s": status.get("inference_s"), "transfer_s": t_end - t_done,
                     "total_s": t_end - t0, "detect_s": status["detect_s"]},
            served_by=self.name, job_id=job_id, batch_size=status.get("batch_size"),
            cached=bool(status.get("cached", accepted.get("cached", False))),
            retries=retries, submitted_at=submitted_at, finished_at=time.time(),
            attempts=[{"client": self.name, "ok": True, "retries": retries}],
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
