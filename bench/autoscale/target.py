"""The deployment under test: a running `python -m server.rayserve` (`--url`, its settings from /readyz) or
one this command starts with the flags' autoscaling settings, pinned apart from the load generator when
the machine has a CPU per replica, and stopped with every Ray process checked gone; and how the reports
describe it (model, server config)."""

from __future__ import annotations

import argparse
import contextlib
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from bench import pinning
from loadlab.ray_autoscaling import DEPLOYMENT, Flags, RayAutoscaling
from loadlab.schema import ServerConfig
from server.rayserve.process import RayServeProcess, descendants

# The deployment this command starts: `python -m server.rayserve`'s, with pushes every 0.5 s so a scenario of
# minutes sees load changes at once; no --initial-replicas (a scenario starts at rest).
AUTOSCALING_FLAGS = Flags(replace(DEPLOYMENT, metrics_interval_s=0.5),
                          only=[n for n in RayAutoscaling.field_names() if n != "initial_replicas"])


def autoscaling_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The deployment's autoscaling as Ray Serve names it (what `simulator validate` replays), plus the
    deployment options the replay needs (max_ongoing_requests, graceful_shutdown_timeout_s)."""
    settings = AUTOSCALING_FLAGS.read(args).settings()
    return {k: settings[k] for k in AUTOSCALING_FLAGS.names()}


def settings_from_ready(ready: dict[str, Any]) -> dict[str, Any]:
    """What a running deployment says of its autoscaling in /readyz (--url)."""
    settings = dict(ready.get("autoscaling") or {})
    if ready.get("max_ongoing_requests") is not None:
        settings["max_ongoing_requests"] = ready["max_ongoing_requests"]
    return settings


def readyz(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url.rstrip("/") + "/readyz", timeout=30) as r:
        return json.loads(r.read())


def cpu_plan(plan: pinning.CpuPlan | None, max_replicas: int, no_pin: bool = False) -> tuple[pinning.CpuPlan | None, str]:
    """`plan` (pinning.plan(): Ray on some CPUs, the load generator on the others) when the server's share
    holds one CPU per replica, else None and why: on 2 cores, pinning would put both replicas on one core
    and a scale-up would add no capacity."""
    if no_pin:
        return None, "--no-pin"
    if plan is None:
        return None, "fewer than 2 usable CPUs (or no sched_setaffinity)"
    if len(plan.server) < max_replicas:
        return None, (f"not pinned: {len(plan.server) + len(plan.load)} CPUs leave {len(plan.server)} for "
                      f"{max_replicas} replicas of 1 CPU each")
    return plan, f"Ray on CPUs {sorted(plan.server)}, load generator on {sorted(plan.load)}"


@dataclass
class RayTarget:
    url: str
    ready: dict[str, Any]
    settings: dict[str, Any]
    process: RayServeProcess | None = None    # when this command started it
    server_cpus: list[int] | None = None
    load_cpus: list[int] | None = None
    pinning: str = ""
    info: dict[str, Any] = field(default_factory=dict)   # what the report records of the cluster

    @property
    def min_replicas(self) -> int:
        return int(self.settings.get("min_replicas") or 0)


@contextlib.contextmanager
def ray_target(args: argparse.Namespace) -> Iterator[RayTarget]:
    """`--url` as it is (its settings from /readyz), else a `python -m server.rayserve` with its own Ray
    temp dir on 127.0.0.1, stopped (every Ray process checked gone) on exit."""
    if args.url:
        url = args.url.rstrip("/")
        ready = readyz(url)
        yield RayTarget(url, ready, settings_from_ready(ready), pinning="--url: not pinned")
        return
    settings = autoscaling_settings(args)
    plan, why = cpu_plan(pinning.plan(not args.no_pin), args.max_replicas, args.no_pin)
    options = {k: v for k, v in settings.items() if k != "graceful_shutdown_timeout_s"}
    rs = RayServeProcess(model=args.model, num_cpus=max(2, args.max_replicas),
                         graceful_shutdown_timeout_s=args.graceful_shutdown_timeout_s, **options)
    print(f"starting python -m server.rayserve ({', '.join(f'{k}={v}' for k, v in settings.items())}) ...", flush=True)
    target = None
    try:
        rs.start()
        target = RayTarget(rs.url, readyz(rs.url), settings, process=rs, pinning=why)
        target.info = {"ray_temp_dir": str(rs.ray_temp_dir), "spawn_to_ready_s": rs.time_to_ready_s,
                       "ray_init_s": rs.ready_info.get("ray_init_s"), "init_to_ready_s": rs.ready_info.get("ready_s")}
        print(f"  ready at {rs.url} in {rs.time_to_ready_s:.1f} s; pinning: {why}", flush=True)
        if plan is None:
            yield target
        else:
            # raylet is pinned too, so the replica workers it starts later inherit the server's CPUs
            pids = descendants(rs.proc.pid) | {rs.proc.pid}
            target.server_cpus = sorted({c for pid in pids for c in pinning.pin(pid, plan.server)})
            with pinning.load_generator(plan) as load_cpus:
                target.load_cpus = load_cpus
                yield target
    finally:
        tree = set(rs.tree)
        leftovers = rs.stop()
        if target is not None:
            target.info.update(leftover_pids=leftovers, pids=sorted(tree | rs.tree))
        print(f"rayserve stopped{'' if not leftovers else f'; killed leftovers {leftovers}'}", flush=True)


def model_of(target: RayTarget, args: argparse.Namespace) -> dict[str, Any]:
    """The report's `model`: what the deployment says it serves, else what it was started with."""
    return {"source": target.ready.get("model") or args.model, "device": target.ready.get("device")}


def server_config(target: RayTarget, args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(url=target.url, model_source=target.ready.get("model") or args.model,
                        cpus=target.server_cpus, autoscaling=dict(target.settings))
