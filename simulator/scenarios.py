"""Scenarios: a `Scenario` (one way of serving with its settings) and the one registry of named
scenarios (name -> factory) that run, sweep, article and validate pick from.

A factory takes a base scenario (profiles, prices and the command line's settings) and returns the
named variant of it; `scenario(name, base)` looks one up. `Scenario.build` turns a scenario into a
`Deployment` on a SimPy environment.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import simpy

from simulator.autoscaling.ray_serve import RayServeConfig, ray_defaults
from simulator.autoscaling.vertex import fixed_schedule, hours_schedule
from simulator.deployments import Deployment, Hybrid, LocalGPU, VertexConfig, VertexEndpoint
from simulator.deployments.ray_serve import RayServeDeployment
from simulator.ledger import Ledger
from simulator.pricing import DEFAULT_PRICES
from simulator.profiles import ServiceTimeProfile, builtin


@dataclass
class Scenario:
    """One way of serving. kind: a key of `KINDS` (local, vertex, hybrid, ray). `vertex_profile` is the cloud GPU's
    (Vertex replicas and Ray nodes: a T4 by default); its provision + load time is a replica's start."""

    kind: str = "vertex"
    name: str | None = None
    local_profile: ServiceTimeProfile = field(default_factory=lambda: builtin("seed-3090"))
    vertex_profile: ServiceTimeProfile = field(default_factory=lambda: builtin("seed-t4"))
    gpus: int = 1
    queue_limit: int | None = None
    max_batch: int = 1
    batch_marginal: float = 1.0
    vertex: VertexConfig = field(default_factory=VertexConfig)
    ray: RayServeConfig = field(default_factory=ray_defaults)
    fallback_after_s: float | None = 120.0
    cache_hit_s: float = 0.05
    prices: dict = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @property
    def label(self) -> str:
        return self.name or self.kind

    @property
    def profile(self) -> ServiceTimeProfile:
        """The service-time profile of the replicas that serve first."""
        return self.local_profile if self.kind == "local" else self.vertex_profile

    def build(self, env: simpy.Environment, ledger: Ledger, rng: random.Random) -> Deployment:
        try:
            builder = KINDS[self.kind]
        except KeyError:
            raise ValueError(f"unknown deployment kind {self.kind!r}; choose from {sorted(KINDS)}") from None
        return builder(self, env, ledger, rng)


def _local(sc: Scenario, env, ledger, rng) -> LocalGPU:
    return LocalGPU(env, ledger, sc.local_profile.sampler(rng), gpus=sc.gpus, queue_limit=sc.queue_limit,
                    max_batch=sc.max_batch, batch_marginal=sc.batch_marginal,
                    fixed_per_month=sc.prices["local_fixed_per_month"])


def _vertex(sc: Scenario, env, ledger, rng, on_fail=None) -> VertexEndpoint:
    return VertexEndpoint(env, ledger, sc.vertex_profile.sampler(rng), sc.vertex, sc.prices,
                          provision_s=sc.vertex_profile.provision_s, load_s=sc.vertex_profile.load_s, rng=rng,
                          on_fail=on_fail)


def _hybrid(sc: Scenario, env, ledger, rng) -> Hybrid:
    local = _local(sc, env, ledger, rng)
    return Hybrid(env, local, lambda on_fail: _vertex(sc, env, ledger, rng, on_fail), sc.fallback_after_s)


def _ray(sc: Scenario, env, ledger, rng) -> RayServeDeployment:
    return RayServeDeployment(env, ledger, sc.vertex_profile.sampler(rng), sc.ray, sc.prices,
                              startup_s=sc.vertex_profile.provision_s + sc.vertex_profile.load_s)


# -- the registry ----------------------------------------------------------------------------------
Builder = Callable[..., Deployment]            # (scenario, env, ledger, rng) -> the deployment
ScenarioFactory = Callable[[Scenario], Scenario]
KINDS: dict[str, Builder] = {}
REGISTRY: dict[str, tuple[ScenarioFactory, str]] = {}


def register(name: str, description: str, factory: ScenarioFactory) -> None:
    if name in REGISTRY:
        raise ValueError(f"scenario {name!r} registered twice")
    REGISTRY[name] = (factory, description)


def register_kind(kind: str, description: str, build: Builder) -> None:
    """A deployment kind: how a scenario builds it, and the scenario of the same name (the kind with the
    command line's settings). A new kind is its policy module, its deployment module and this one call."""
    if kind in KINDS:
        raise ValueError(f"deployment kind {kind!r} registered twice")
    KINDS[kind] = build
    register(kind, description, lambda b: replace(b, kind=kind))


def scenario(name: str, base: Scenario | None = None) -> Scenario:
    """The named scenario built on `base` (default: the built-in profiles and default prices)."""
    try:
        factory, _ = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(REGISTRY)}") from None
    built = factory(base if base is not None else Scenario())
    built.name = name
    return built


def _vertex_variant(base: Scenario, schedule, spot: bool) -> Scenario:
    return replace(base, kind="vertex", vertex=replace(base.vertex, schedule=schedule, spot=spot))


# The ways of serving, as the command line configures them (`simulator run`).
register_kind("local", "k GPUs behind one FIFO queue, fixed monthly cost", _local)
register_kind("vertex", "Vertex AI replicas with the target-utilisation autoscaler", _vertex)
register_kind("hybrid", "Vertex first, the local GPU on failure or when not started in time", _hybrid)
register_kind("ray", "Ray Serve replicas on GPU nodes with Ray Serve 2.60's autoscaler, billed per node-second", _ray)

# The settings the sweep compares (micro-batches: each extra job +70 % of one).
register("local-1gpu", "one local GPU", lambda b: replace(b, kind="local", gpus=1, max_batch=1, batch_marginal=0.7))
register("local-2gpu", "two local GPUs, one queue",
         lambda b: replace(b, kind="local", gpus=2, max_batch=1, batch_marginal=0.7))
register("local-1gpu-batch3", "one local GPU, micro-batches of 3",
         lambda b: replace(b, kind="local", gpus=1, max_batch=3, batch_marginal=0.7))
VERTEX_SCHEDULES = {
    "vertex-article": (((1, 3), (0, 1)), "9-18h min=1 max=3, night min=0 max=1 (the article's settings)"),
    "vertex-zero": (((0, 3), (0, 3)), "min=0 max=3 all day (scale-to-zero preview)"),
    "vertex-always1": (((1, 3), (1, 3)), "min=1 max=3 all day (what a GA endpoint allows)"),
    "vertex-big": (((1, 8), (0, 2)), "9-18h min=1 max=8, night min=0 max=2"),
}
for _name, ((_business, _night), _what) in VERTEX_SCHEDULES.items():
    _schedule = fixed_schedule(*_business) if _business == _night else hours_schedule(_business, _night)
    for _spot in (False, True):
        register(_name + ("-spot" if _spot else ""), _what + (", spot" if _spot else ""),
                 lambda b, s=_schedule, spot=_spot: _vertex_variant(b, s, spot))
register("ray-zero", "Ray Serve on GPU nodes, 0..3 replicas, one request each, Ray's default delays",
         lambda b: replace(b, kind="ray", ray=replace(b.ray, min_replicas=0, max_replicas=3)))
register("ray-always1", "Ray Serve on GPU nodes, 1..3 replicas, one request each, Ray's default delays",
         lambda b: replace(b, kind="ray", ray=replace(b.ray, min_replicas=1, max_replicas=3)))
register("hybrid-article", "vertex-article first, local GPU on failure / after fallback_after_s not started",
         lambda b: replace(b, kind="hybrid", vertex=replace(b.vertex, schedule=hours_schedule((1, 3), (0, 1)))))

# The article replay's servers.
register("local-queue16", "one local GPU with a queue bound of 16 (over it: 429)",
         lambda b: replace(b, kind="local", gpus=1, queue_limit=16))
register("vertex-warm3", "three always-ready Vertex replicas behind one queue (no start, no autoscaling)",
         lambda b: replace(b, kind="local", gpus=3, local_profile=b.vertex_profile))
register("vertex-1to3", "Vertex, min=1 max=3 all day", lambda b: _vertex_variant(b, fixed_schedule(1, 3), False))

# `simulator bench`: large deployments for the speed measurement.
register("local-48gpu", "48 local GPUs", lambda b: replace(b, kind="local", gpus=48))
register("vertex-1to40", "Vertex, min=1 max=40 all day", lambda b: _vertex_variant(b, fixed_schedule(1, 40), False))
