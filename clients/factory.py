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

`factory` imports code by name: it must come from a command line or from code, never from a request
(the Locust web UI refuses it; locustfiles/webui.py).
"""

from __future__ import annotations

import re
from typing import Any

TARGETS = ("local", "vertex", "fallback")
_FACTORY_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?")


def check_target(target: object) -> str:
    """`target` when it names a client; ValueError otherwise (a target is a name, never code)."""
    if not isinstance(target, str) or target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {TARGETS}")
    return target


def check_factory(spec: str) -> str:
    """`spec` when it is '' or 'package.module[:function]'; ValueError otherwise, so that a typo is
    one clear line at start rather than an import error inside every job."""
    if spec and not _FACTORY_RE.fullmatch(spec):
        raise ValueError(f"client factory must be 'package.module:function', got {spec!r}")
    return spec


def make_client(target: str, url: str = "", factory: str = "", **kwargs: Any):
    """The client for `target` at `url`; `factory` = "module:function(target, url)" builds it
    instead (how tests put a fake client behind Locust and bench). The target is checked first in
    both cases: a factory receives a known target name, whatever the caller passed."""
    check_target(target)
    if factory:
        import importlib

        module, _, func = check_factory(factory).partition(":")
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
    raise AssertionError(f"target {target!r} passed check_target but has no client")  # TARGETS out of step

