"""One interface for every target: `decompose_image(image_path, num_layers, resolution)`."""

from clients.base import (
    ClientError,
    DecomposeClient,
    DecomposeResult,
    JobFailedError,
    RejectedError,
    TargetTimeoutError,
    TargetUnavailableError,
)

__all__ = ["ClientError", "DecomposeClient", "DecomposeResult", "JobFailedError", "RejectedError",
           "TargetTimeoutError", "TargetUnavailableError"]
