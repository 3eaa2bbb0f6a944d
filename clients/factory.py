"""Build a client from a target name and a URL — what Locust (`--target`, `--host`) and bench use.

    make_client("local", "http://127.0.0.1:8000")    → LocalClient (the job API)
    make_client("vertex", "http://127.0.0.1:8000")   → VertexAIClient, real SDK over REST, pointed at that
                                                       URL (our server's Vertex routes); project, location
                                                       and endpoint id from the environment or
                                                       "loadlab" / "us-central1" / "local"
    make_client("vertex", "")                        → VertexAIClient on Google's endpoint from env/ADC
    make_client("fallback", "http://A,http://B")     → FallbackClient([vertex at A, local at B]);
                                                       one URL = both targets on the same server

Extra keyword arguments go to the client's constructor.
"""

from __future__ import annotations

from typing import Any

TARGETS = ("local", "vertex", "fallback")


def make_client(target: str, url: str = "", factory: str = "", **kwargs: Any):
    """The client for `target` at `url`; `factory` = "module:function(target, url)" builds it
    instead (how tests put a fake client behind Locust and bench)."""
    if factory:
        import importlib

        module, _, func = factory.partition(":")
        return getattr(importlib.import_module(module), func or "make_client")(target, url)
    if target == "local":
        from clients.local import LocalClient

        return LocalClient(url, **kwargs)
    if target == "vertex":
        from clients.vertex import VertexAIClient

        return VertexAIClient(api_endpoint=url or None, **kwargs)
    if target == "fallback":
        from clients.fallback import FallbackClient

        urls = [u.strip() for u in url.split(",") if u.strip()]
        if not urls:
            raise ValueError("fallback needs 'vertex_url,local_url' (or one URL for both)")
        vertex_url, local_url = urls[0], urls[-1]
        return FallbackClient([make_client("vertex", vertex_url), make_client("local", local_url)], **kwargs)
    raise ValueError(f"unknown target {target!r}; choose from {TARGETS}")

