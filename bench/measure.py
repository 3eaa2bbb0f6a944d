"""What the benchmarks share: starting (or borrowing) a server, pinning it and the load generator to
separate CPUs, the report's server config and the common command-line options.

Nothing here computes a statistic (that is `loadlab/stats.py`) or speaks HTTP (that is `clients/`)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench import pinning
from clients.factory import TARGETS
from loadlab.schema import ServerConfig


@dataclass
class Target:
    """Where the benchmark sends jobs: `url`, the server process when we started it, and the CPUs the
    server and this process (the load generator) were pinned to (None = not pinned)."""

    url: str
    server: Any = None
    server_cpus: list[int] | None = None
    server_threads: int | None = None
    load_cpus: list[int] | None = None

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


def server_config(args: argparse.Namespace, target: Target | None = None) -> ServerConfig:
    """The server of a benchmark as its report records it."""
    return ServerConfig(url=(target.url if target else args.url) or None, workers=args.server_workers,
                        max_batch=args.server_max_batch, cache_ttl_s=args.server_cache_ttl, model_source=args.model,
                        cpus=target.server_cpus if target else None,
                        threads=target.server_threads if target else None)


@contextlib.contextmanager
def _pinned(target: Target, server_pid: int | None, cpus: pinning.CpuPlan | None) -> Iterator[Target]:
    """Process `server_pid` on `cpus.server` and this process on `cpus.load` for the block (neither
    without a plan or a server process)."""
    if cpus is None or not server_pid:
        yield target
        return
    # Before pinning: a server with more torch threads than CPUs is refused, not measured slow.
    target.server_threads = pinning.check_fits(server_pid, cpus.server)
    target.server_cpus = pinning.pin(server_pid, cpus.server)
    with pinning.load_generator(cpus) as load_cpus:
        target.load_cpus = load_cpus
        yield target


@contextlib.contextmanager
def started_server(options: dict[str, Any], cli_args: list[str] | tuple[str, ...] = (),
                   cpus: pinning.CpuPlan | None = None) -> Iterator[Target]:
    """A `python -m server` with these options (`ServerProcess` keywords) and extra CLI arguments,
    stopped on exit; with `cpus`, pinned to `cpus.server` (torch threads to match) once ready, and
    this process to `cpus.load` for the block."""
    from server.process import ServerProcess

    with (ServerProcess(*cli_args, env=pinning.server_env(cpus), **options) as server,
          _pinned(Target(server.url, server), server.pid, cpus) as target):
        yield target


@contextlib.contextmanager
def target_server(args: argparse.Namespace) -> Iterator[Target]:
    """The target to measure: `--url` as given (pinned only with `--server-pid`, the server being a
    process of this machine), else a `python -m server` we start, pin and stop."""
    cpus = pinning.plan(not args.no_pin)
    if args.url:
        with _pinned(Target(args.url.rstrip("/")), args.server_pid, cpus) as target:
            yield target
    else:
        with started_server(server_options(args), cpus=cpus) as target:
            yield target


def add_pin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the server and the load generator to separate CPUs")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=TARGETS, default="local",
                        help="client: the local job API or the Vertex AI adapter (real SDK, REST)")
    parser.add_argument("--url", default="", help="measure this server instead of starting one")
    parser.add_argument("--server-pid", type=int, default=0,
                        help="with --url: the server's process id on this machine, to pin it (see --no-pin)")
    parser.add_argument("--model", default="tiny", help="model of the server we start (tiny | path | hub id)")
    parser.add_argument("--server-workers", type=int, default=1, help="model workers of the server we start")
    parser.add_argument("--server-max-batch", type=int, default=1, help="batch size of the server we start")
    parser.add_argument("--server-cache-ttl", type=float, default=0,
                        help="result cache of the server we start (default 0 = off: every job runs the model; "
                             "the test images are identical, so a cache would answer all but the first)")
    add_pin_options(parser)
    parser.add_argument("--client-factory", default="", help=argparse.SUPPRESS)


def model_info(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    info = dict(target.ready_info.get("model") or {})
    info.setdefault("source", args.model)
    return info
