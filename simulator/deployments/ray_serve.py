"""A Ray Serve deployment on GPU nodes: a `ReplicaPool` scaled by the `ray-serve` policy
(simulator/autoscaling/ray_serve.py). One replica per GPU node (a KubeRay worker pod on its own node);
a node is billed per second from the replica's start to its stop, at least `node_min_billed_s`
(Compute Engine's billing model), at `gpu_node_per_hour` (simulator/pricing.py).

What it adds to the pool, as Ray Serve's DeploymentState and replica do: a scale-down stops starting
replicas first, then the newest running; a stop is graceful (`GracefulStop`); a replica holds a request
while its result travels back (`return_s`). A cold start is the pool's: the first job of a new replica.
Requests reach replicas through the handle's router (simulator/deployments/ray_router.py): a waiting
request is sent at a routing task's next try, not when a slot frees."""

from __future__ import annotations

import random
from dataclasses import dataclass

import simpy

from simulator.autoscaling.ray_serve import RayServeConfig, RayServePolicy
from simulator.deployments.ray_router import RAY_DEFAULT_BACKOFF, RayRouter, RouterBackoff
from simulator.deployments.replica import READY, STARTING, STOPPED, STOPPING, Replica
from simulator.deployments.replicas import ReplicaPool
from simulator.pricing import billed_seconds


@dataclass
class GracefulStop:
    """Ray Serve's replica shutdown: check every `wait_loop_s` (graceful_shutdown_wait_loop_s, 2 s) whether
    the replica still holds requests; stop when it holds none, or after `timeout_s` (20 s) whatever it holds."""

    wait_loop_s: float = 2.0
    timeout_s: float = 20.0


class RayServeDeployment(ReplicaPool):
    """`startup_s`: replica start -> RUNNING (node, actor, model load). `initial_running` replicas are
    RUNNING at t=0 and the handle's router already exists when `router_at_start` (a replay of a run that
    began warm). `return_s(case)`: the time a replica still holds a request after its service, while the
    result travels back to the handle (a calibration's per-request overhead); `config_delay_s`: a router
    created by a request learns the deployment's config after this long (see RayServePolicy).
    `startups`: measured start -> RUNNING times, the k-th for the k-th replica started (a mechanics
    replay); replicas beyond them take `draw_startup(busy)` when given (a prediction: one measured start-up
    each, of the replicas busy as it starts), else `startup_s`. `after_slot_s`: of a job's overhead (measured or drawn), the part
    after its slot is free (the ingress answering the client once the handle has the result).
    `router`: the handle router's retry schedule (Ray's defaults); None: a free slot takes the oldest
    waiting request at once (an ideal router). `rng`: its draws of two candidate replicas. `grid_lag_s`:
    the lag of the router's record and push grids after their first point (RayServePolicy).
    `count_after_slot_s`: how long the router's gauge still counts a request after its slot freed (its
    result on the way back to the handle; RayServePolicy.count_after_slot)."""

    def __init__(self, env: simpy.Environment, ledger, sample, config: RayServeConfig, prices: dict,
                 startup_s: float, name: str = "ray", initial_running: int = 0,
                 router_at_start: bool = False, record_timeline: bool = False, return_s=None,
                 config_delay_s: float = 0.0, startups: list[float] | None = None, after_slot_s: float = 0.0,
                 router: RouterBackoff | None = RAY_DEFAULT_BACKOFF, rng: random.Random | None = None,
                 grid_lag_s: float = 0.0, draw_startup=None, count_after_slot_s: float = 0.0):
        self.config, self.prices = config, prices
        self.count_after_slot_s = count_after_slot_s
        self.router = RayRouter(env, self, router, rng) if router is not None else None
        self.after_slot_s = after_slot_s
        self.startups = list(startups or [])
        self.draw_startup = draw_startup
        self.graceful = GracefulStop(config.graceful_shutdown_wait_loop_s, config.graceful_shutdown_timeout_s)
        self.return_sampler = return_s
        super().__init__(env, ledger, sample, RayServePolicy(config, initial_running, router_at_start, config_delay_s,
                                                            grid_lag_s),
                         [("starting", startup_s)], max_ongoing=config.max_ongoing_requests, name=name,
                         record_timeline=record_timeline)
        self.policy.record_totals = record_timeline     # a replay that records its timeline: its totals too

    def startup_for(self, rep: Replica) -> list[tuple[str, float]]:
        if rep.id < len(self.startups):
            return [("starting", self.startups[rep.id])]
        if self.draw_startup is not None:
            return [("starting", self.draw_startup(self.busy))]
        return self.startup

    # -- which replicas stop, and how --------------------------------------------------------------
    def replicas_to_stop(self, count: int) -> list[Replica]:
        """DeploymentState: starting replicas first, then the newest running."""
        up = [r for r in self.active if not r.stop_requested]
        starting = [r for r in up if r.state == STARTING]
        running = [r for r in up if r.state == READY]
        return (list(reversed(starting)) + list(reversed(running)))[:count]

    def on_stopping(self, rep: Replica) -> None:
        self.env.process(graceful_stop(self.env, self, rep))

    def left_service(self, rep: Replica) -> None:
        if rep.state != STOPPING:      # a stopping replica is stopped by its shutdown check
            self.replica_stopped(rep)

    @property
    def killed_error(self) -> str:
        return f"replica stopped after graceful_shutdown_timeout_s {self.graceful.timeout_s:g} s"

    # -- requests ----------------------------------------------------------------------------------
    def dispatch(self, job, first: bool = False) -> None:
        """Through the handle's router: every request waits there until a routing task's try finds it a
        replica (at once when one is free and a task is free to try)."""
        if self.router is None:
            super().dispatch(job, first)
            return
        self.router.submit(job, first)
        self.policy.on_queued(job)

    def take_queued(self, rep: Replica):
        """A free replica takes nothing itself: Ray's router sends it the next request at a task's try."""
        return super().take_queued(rep) if self.router is None else None

    def withdraw(self, job) -> bool:
        taken = super().withdraw(job)
        if taken and self.router is not None:
            self.router.withdraw(job)
        return taken

    def slot_freed(self, rep: Replica) -> None:
        if self.count_after_slot_s > 0:        # first: the router may hand the slot on at once
            self.policy.count_after_slot(rep.id, self.count_after_slot_s)
        if self.router is not None:
            self.router.slot_freed(rep)

    def replica_ready(self, rep: Replica) -> None:
        super().replica_ready(rep)
        if self.router is not None:                    # RequestRouter.update_replicas
            self.router.replicas_changed()

    def return_s(self, case: str, job=None) -> float:
        measured = getattr(job, "measured_overhead_s", None)   # a mechanics replay: the job's own
        total = measured if measured is not None else (
            self.return_sampler(case) if self.return_sampler is not None else 0.0)
        after = min(total, self.after_slot_s) if job is not None else 0.0
        if measured is not None or after:
            job.measured_overhead_s = after    # what the client still waits once the slot is free
        return total - after

    # -- the bill ------------------------------------------------------------------------------------
    def price_per_hour(self, rep: Replica) -> float:
        return self.prices["gpu_node_per_hour"]

    def bill(self, up_s: float) -> float:
        return max(self.prices["node_min_billed_s"], billed_seconds(up_s, 1.0)) if up_s > 0 else 0.0


def graceful_stop(env: simpy.Environment, pool: RayServeDeployment, rep: Replica):
    """Ray Serve's shutdown loop: wait `wait_loop_s`, stop if the replica holds no request, else wait again,
    up to `timeout_s` (then requests still held fail)."""
    begun = env.now
    while True:
        yield env.timeout(pool.graceful.wait_loop_s)
        if rep.ongoing == 0 or env.now - begun >= pool.graceful.timeout_s:
            break
    if rep.state == STOPPED:
        return
    if rep.proc.is_alive:
        rep.proc.interrupt(pool.killed_error)   # only reached with requests still held (graceful timeout)
    for job in list(rep.inbox):
        rep.inbox.remove(job)
        rep.ongoing -= 1
        pool.fail(job, pool.killed_error)
    pool.replica_stopped(rep)
