"""A Vertex AI online-prediction endpoint: a `ReplicaPool` (provisioning -> loading -> ready ->
busy/idle -> stopped) scaled by the `vertex` autoscaling policy (simulator/autoscaling/vertex.py).

Modelled rules (each a `VertexConfig` field):
- Autoscaler: target utilisation, window, scale-down delay, min/max by hour, scale-to-zero preview
  rules (see the policy's module).
- Billing: every replica from the start of provisioning to its stop, rounded up to the billing
  increment, x (machine + accelerator) price; spot at the spot discount.
- Spot: preemptions as a Poisson process per replica (`preemptions_per_hour`): the job in flight is
  put back at the head of the queue (retried, nothing lost); a spot request is a STOCKOUT with
  probability `stockout_probability` (no replica; the autoscaler tries again next tick).
- Endpoint type: shared public endpoints fail requests over 60 s or 1.5 MB; dedicated: 3,600 s, 10 MB.
  A request is failed (not slow) when its time in the endpoint (queue + inference) exceeds the timeout
  or its payload exceeds the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy

from simulator.autoscaling.vertex import VertexPolicy, article_schedule
from simulator.deployments.replicas import ReplicaPool
from simulator.limits import SCALE_TO_ZERO_PERIOD_S
from simulator.pricing import billed_seconds, replica_price_per_hour

ENDPOINT_LIMITS = {"dedicated": (3600.0, 10.0), "shared": (60.0, 1.5)}
# base64 JPEG payload per case, MB: upload px^2 x ~0.5 byte/px (photo JPEG) x 4/3 (base64)
DEFAULT_PAYLOAD_MB = {"small": 0.17, "medium": 0.70, "large": 2.80, "light": 0.04}


@dataclass
class VertexConfig:
    schedule: object = article_schedule          # hour -> (min, max)
    target_utilisation: float = 0.60
    tick_s: float = 15.0
    window_s: float = 60.0
    scale_down_delay_s: float = 300.0
    idle_scaledown_period_s: float = 3600.0
    min_scaleup_period_s: float = 3600.0
    spot: bool = False
    preemptions_per_hour: float = 0.0
    stockout_probability: float = 0.0
    endpoint: str = "dedicated"
    payload_mb: dict = field(default_factory=lambda: dict(DEFAULT_PAYLOAD_MB))

    def check(self) -> None:
        if self.endpoint not in ENDPOINT_LIMITS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINT_LIMITS)}")
        lo, hi = SCALE_TO_ZERO_PERIOD_S
        for name in ("idle_scaledown_period_s", "min_scaleup_period_s"):
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} must be within {lo:g}..{hi:g} s (Vertex scale-to-zero preview)")
        if not 0 < self.target_utilisation <= 1:
            raise ValueError("target utilisation must be in (0, 1]")


class VertexEndpoint(ReplicaPool):
    """The pool's hooks as Vertex has them: the payload limit at the door, spot capacity (stockouts and
    preemptions), the billing increment and the spot price; a scale-down stops only idle replicas (the
    pool's default)."""

    def __init__(self, env: simpy.Environment, ledger, sample, config: VertexConfig, prices: dict,
                 provision_s: float = 127.0, load_s: float = 43.0, rng=None, name: str = "vertex",
                 on_fail=None, record_timeline: bool = False):
        config.check()
        self.config, self.prices, self.rng = config, prices, rng
        timeout_s, self.max_payload_mb = ENDPOINT_LIMITS[config.endpoint]
        super().__init__(env, ledger, sample, VertexPolicy(config), [("provisioning", provision_s), ("loading", load_s)],
                         name=name, timeout_s=timeout_s, on_fail=on_fail, record_timeline=record_timeline)

    def on_submit(self, job) -> str | None:
        if self.config.payload_mb.get(job.case, 0.0) > self.max_payload_mb:
            return f"payload over {self.max_payload_mb} MB ({self.config.endpoint} endpoint)"
        return None

    def fail(self, job, error: str) -> None:
        if error.startswith("timeout"):
            error = f"{error} ({self.config.endpoint} endpoint)"
        super().fail(job, error)

    # the rng draws in this order (stockout, then preemption time) keep a seed's figures as they were
    def stocked_out(self) -> bool:
        cfg = self.config
        return cfg.spot and cfg.stockout_probability > 0 and self.rng.random() < cfg.stockout_probability

    def preemption_at(self, now: float) -> float:
        cfg = self.config
        if cfg.spot and cfg.preemptions_per_hour > 0:
            return now + self.rng.expovariate(cfg.preemptions_per_hour / 3600)
        return math.inf

    def price_per_hour(self, rep) -> float:
        return replica_price_per_hour(self.prices, self.config.spot)

    def bill(self, up_s: float) -> float:
        return billed_seconds(up_s, self.prices["billing_granularity_s"])
