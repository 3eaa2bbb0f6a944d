"""A Ray Serve deployment on GPU nodes: a `ReplicaPool` scaled by the `ray-serve` policy
(simulator/autoscaling/ray_serve.py). One replica per GPU node (a KubeRay worker pod on its own node);
a node is billed per second from the replica's start to its stop, at least `node_min_billed_s`
(Compute Engine's billing model), at `gpu_node_per_hour` (simulator/pricing.py)."""

from __future__ import annotations

import simpy

from simulator.autoscaling.ray_serve import RayServeConfig, RayServePolicy
from simulator.deployments.replicas import GracefulStop, ReplicaPool
from simulator.pricing import billed_seconds


class RayServeDeployment(ReplicaPool):
    """`startup_s`: replica start -> RUNNING (node, actor, model load). `initial_running` replicas are
    RUNNING at t=0 and the handle's router already exists when `router_at_start` (a replay of a run that
    began warm). `return_s(case)`: the time a replica still holds a request after its service, while the
    result travels back to the handle (a calibration's per-request overhead); `config_delay_s`: a router
    created by a request learns the deployment's config after this long (see RayServePolicy)."""

    def __init__(self, env: simpy.Environment, ledger, sample, config: RayServeConfig, prices: dict,
                 startup_s: float, rng=None, name: str = "ray", initial_running: int = 0,
                 router_at_start: bool = False, record_timeline: bool = False, return_s=None,
                 config_delay_s: float = 0.0):
        self.config, self.prices = config, prices
        minimum = prices["node_min_billed_s"]
        super().__init__(env, ledger, sample, RayServePolicy(config, initial_running, router_at_start, config_delay_s),
                         [("starting", startup_s)],
                         price_per_hour=lambda r: prices["gpu_node_per_hour"],
                         bill=lambda up_s: max(minimum, billed_seconds(up_s, 1.0)) if up_s > 0 else 0.0,
                         max_ongoing=config.max_ongoing_requests, name=name, rng=rng,
                         graceful=GracefulStop(config.graceful_shutdown_wait_loop_s, config.graceful_shutdown_timeout_s),
                         cold_start_rule="replica_started_after_arrival", record_timeline=record_timeline,
                         return_s=return_s)
