"""What the benchmarks share: starting (or borrowing) a server, the report's server config and the
common command-line options.

Nothing here computes a statistic (that is `loadlab/stats.py`) or speaks HTTP (that is `clients/`)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clients.factory import TARGETS
from loadlab.schema import ServerConfig


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
def started_server(options: dict[str, Any], cli_args: list[str] | tuple[str, ...] = ()) -> Iterator[Target]:
    """A `python -m server` with these options (`ServerProcess` keywords) and extra CLI arguments,
    stopped on exit."""
    from server.process import ServerProcess

    with ServerProcess(*cli_args, **options) as server:
        yield Target(server.url, server)


@contextlib.contextmanager
def target_server(args: argparse.Namespace) -> Iterator[Target]:
    """The target to measure: `--url` as given, else a `python -m server` we start and stop."""
    if args.url:
        yield Target(args.url.rstrip("/"))
        return
    with started_server(server_options(args)) as target:
        yield target


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
