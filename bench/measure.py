"""What the benchmarks share: building a client, starting (or borrowing) a server, turning one
client call into a `JobRecord`, and the common command-line options.

Nothing here computes a statistic (that is `bench/stats.py`) or speaks HTTP (that is `clients/`)."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from loadlab.schema import COMPLETED, FAILED, REJECTED, JobRecord, ServerConfig

TARGETS = ("local", "vertex", "fallback")


def make_client(target: str, url: str, factory_spec: str = ""):
    """A fresh client of `clients/` for `target` ("local" job API or "vertex" adapter) at `url`;
    `factory_spec` = "module:function(target, url)" overrides it (tests use a fake)."""
    if factory_spec:
        import importlib

        module, _, func = factory_spec.partition(":")
        return getattr(importlib.import_module(module), func or "make_client")(target, url)
    try:
        from clients.factory import make_client as factory
    except ImportError:
        factory = None
    if factory is not None:
        return factory(target, url)
    if target == "local":
        from clients.local import LocalClient

        return LocalClient(url)
    from clients.vertex import VertexAIClient

    return VertexAIClient(api_endpoint=url)


def run_job(client, case, image_path: str, served_by: str = "") -> JobRecord:
    """One `decompose_image` call as a `JobRecord` with the client's exact timings: completed,
    failed (with the error text) or rejected (429 after the client's retries). Never raises for a
    target error; a client bug is recorded as failed too."""
    from clients.base import ClientError, RejectedError

    submitted = time.time()
    t0 = time.perf_counter()
    try:
        result = client.decompose_image(image_path, case.layers, case.resolution)
    except Exception as err:
        e2e = time.perf_counter() - t0
        status = REJECTED if isinstance(err, RejectedError) else FAILED
        extra = {"http_status": err.status} if isinstance(err, ClientError) else {"client_bug": True}
        return JobRecord(case=case.name, status=status, submitted=submitted, finished=submitted + e2e,
                         e2e_s=e2e, error=f"{type(err).__name__}: {err}", served_by=served_by or None,
                         extra=extra)
    e2e = time.perf_counter() - t0
    timings = result.timings or {}
    upload, queue = timings.get("upload_s"), timings.get("queue_s")
    started = submitted + upload + queue if upload is not None and queue is not None else None
    return JobRecord(
        case=case.name, status=COMPLETED, submitted=submitted, finished=submitted + e2e, started=started,
        queue_s=queue, service_s=timings.get("inference_s"), e2e_s=e2e, served_by=result.served_by,
        extra={"job_id": result.job_id, "cached": result.cached, "retries": result.retries,
               "upload_s": upload, "transfer_s": timings.get("transfer_s"),
               "client_total_s": timings.get("total_s"), "layers": len(result.layers)})


@dataclass
class Target:
    """Where the benchmark sends jobs: `url`, and the server process when we started it."""

    url: str
    server: Any = None

    @property
    def ready_info(self) -> dict[str, Any]:
        return dict(getattr(self.server, "ready_info", None) or {})


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options the benchmark passes to `ServerProcess` (and records in report.config)."""
    opts: dict[str, Any] = {"max_batch": args.server_max_batch, "cache_ttl": args.server_cache_ttl}
    if args.model != "tiny":
        opts["model"] = args.model
    if args.server_workers != 1:
        opts["workers"] = args.server_workers
    return opts


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The server of a benchmark as its report records it."""
    return ServerConfig(url=args.url or None, workers=args.server_workers, max_batch=args.server_max_batch,
                        cache_ttl_s=args.server_cache_ttl, model_source=args.model)


@contextlib.contextmanager
def target_server(args: argparse.Namespace) -> Iterator[Target]:
    """The target to measure: `--url` as given, else a `python -m server` we start and stop."""
    if args.url:
        yield Target(args.url.rstrip("/"))
        return
    from server.process import ServerProcess

    with ServerProcess(**server_options(args)) as server:
        yield Target(server.url, server)


def add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=TARGETS, default="local",
                        help="client: the local job API or the Vertex AI adapter (real SDK, REST)")
    parser.add_argument("--url", default="", help="measure this server instead of starting one")
    parser.add_argument("--model", default="tiny", help="model of the server we start (tiny | path | hub id)")
    parser.add_argument("--server-workers", type=int, default=1, help="model workers of the server we start")
    parser.add_argument("--server-max-batch", type=int, default=1, help="batch size of the server we start")
    parser.add_argument("--server-cache-ttl", type=float, default=0,
                        help="result cache of the server we start (default 0 = off: every job runs the model; "
                             "the test images are identical, so a cache would answer all but the first)")
    parser.add_argument("--client-factory", default="", help=argparse.SUPPRESS)


def model_info(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    info = dict(target.ready_info.get("model") or {})
    info.setdefault("source", args.model)
    return info


def fmt_s(value: float | None, width: int = 7) -> str:
    return f"{value:{width}.2f}" if value is not None else f"{'-':>{width}}"
