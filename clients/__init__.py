"""One interface for every target: `decompose_image(image_path, num_layers, resolution)`.

    from clients import LocalClient, VertexAIClient, FallbackClient, make_client

The client classes are imported on first use (the Vertex one pulls in google-cloud-aiplatform)."""

from clients.base import (
    ClientError,
    DecomposeClient,
    DecomposeResult,
    JobFailedError,
    RejectedError,
    TargetTimeoutError,
    TargetUnavailableError,
)

_LAZY = {"LocalClient": "clients.local", "VertexAIClient": "clients.vertex", "PayloadTooLargeError": "clients.vertex",
         "FallbackClient": "clients.fallback", "CircuitBreaker": "clients.fallback", "make_client": "clients.factory"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'clients' has no attribute {name!r}")


__all__ = ["ClientError", "DecomposeClient", "DecomposeResult", "JobFailedError", "RejectedError",
           "TargetTimeoutError", "TargetUnavailableError", *_LAZY]
