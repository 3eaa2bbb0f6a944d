"""The client contract shared by the local job API, Vertex AI and the fallback chain.

`decompose_image(image_path, num_layers, resolution)` is the source article's signature. It returns a
`DecomposeResult` or raises one of the errors below; Locust and the benchmarks rely on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class DecomposeResult:
    """The RGBA layers and the measured timings of one job, in seconds.

    timings keys: `upload_s` (upload or base64 encode + request build), `queue_s` (waiting for the
    model, as the server measured it), `inference_s` (pipeline time, server-measured), `transfer_s`
    (downloading/decoding the layers), `total_s` (client-measured, call to return); the local job API
    adds `detect_s` (server finished the job → the client learned it; same-host clocks). A key is None
    or absent when the target does not report it."""

    layers: list[Any]                       # PIL.Image.Image, mode RGBA
    timings: dict[str, float | None]
    served_by: str                          # client name: "local", "vertex", ...
    job_id: str | None = None
    cached: bool = False                    # answered from the server's content cache
    retries: int = 0                        # 429/503/deadline retries this call needed
    batch_size: int | None = None           # jobs in the server's pipeline call (micro-batching)
    submitted_at: float | None = None       # epoch seconds, client clock
    finished_at: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # fallback: who was tried, why
    # A replicated target (Ray Serve) names the replica that ran the model and whether it was that
    # replica's first request; None / False when the target does not say.
    replica_id: str | None = None
    first_on_replica: bool = False


class ClientError(Exception):
    """The target refused the request (4xx other than 429); `status` and the server's message."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RejectedError(ClientError):
    """Still rejected (429 / queue full) after the bounded retries."""


class JobFailedError(ClientError):
    """The job ran and failed on the server (pipeline exception); carries the server's error text."""


class TargetUnavailableError(ClientError):
    """Connection refused, 5xx after retries, or a circuit breaker open."""


class TargetTimeoutError(ClientError):
    """The call's deadline passed before a result arrived."""


class DecomposeClient(Protocol):
    name: str

    def decompose_image(self, image_path: str, num_layers: int, resolution: int) -> DecomposeResult: ...

    def close(self) -> None: ...
