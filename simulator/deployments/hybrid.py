"""Hybrid: Vertex first, the local GPU on failure (timeout, payload limit) or when the request has not
started on Vertex within `fallback_after_s` (the article's announced next step)."""

from __future__ import annotations

from collections.abc import Callable

import simpy

from simulator.deployments.base import Cost
from simulator.deployments.local import LocalGPU
from simulator.deployments.vertex import VertexEndpoint


class Hybrid:
    """`make_vertex(on_fail)` builds the Vertex endpoint with this hybrid's fallback as its failure
    handler, so the two are wired when constructed."""

    def __init__(self, env: simpy.Environment, local: LocalGPU,
                 make_vertex: Callable[[Callable], VertexEndpoint], fallback_after_s: float | None = 120.0):
        self.env, self.local, self.fallback_after_s = env, local, fallback_after_s
        self.fallbacks = 0
        self.vertex = make_vertex(self._to_local)

    def submit(self, job) -> None:
        self.vertex.submit(job)
        if self.fallback_after_s is not None and job.status == "queued":
            self.env.process(fallback_watch(self.env, self, job))

    def _to_local(self, job, error: str) -> None:
        self.fallbacks += 1
        job.error = f"fell back: {error}"
        self.local.submit(job)

    def cost(self, horizon_s: float) -> Cost:
        v, lo = self.vertex.cost(horizon_s), self.local.cost(horizon_s)
        return {"usage": v["usage"], "fixed_per_month": lo["fixed_per_month"], "vertex": v["usage"],
                "local": lo["fixed_per_month"], "replica_hours_billed": v["replica_hours_billed"]}

    def stats(self, horizon_s: float) -> dict:
        s = self.vertex.stats(horizon_s)
        s["fallbacks"] = self.fallbacks
        s["local_utilisation"] = self.local.stats(horizon_s)["utilisation"]
        return s


def fallback_watch(env: simpy.Environment, hybrid: Hybrid, job):
    yield env.timeout(hybrid.fallback_after_s)
    if job.started is None and job.status == "queued" and hybrid.vertex.withdraw(job):
        hybrid._to_local(job, f"not started on Vertex within {hybrid.fallback_after_s:g} s")
