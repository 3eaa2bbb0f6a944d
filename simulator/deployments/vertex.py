"""A Vertex AI online-prediction endpoint: `Replica`s with a life cycle (provisioning -> loading ->
ready -> busy/idle -> stopped) pulling jobs from the endpoint's queue, and an `Autoscaler`.

Modelled rules (each a `VertexConfig` field):
- Autoscaler: every `tick_s` it samples the load (busy replicas + queued requests, the request-count
  view; a GPU duty cycle alone cannot see a queue) and averages it over `window_s`; the wanted count
  is ceil(average / target_utilisation) (Kubernetes HPA rule, Vertex default target 60%), clamped to
  the min/max of the hour (`schedule`: the article's business hours 9-18 min=1 max=3, else min=0
  max=1). Scale up at once (new replicas still provision and load); scale down only after the wanted
  count stayed lower for `scale_down_delay_s`, and only idle replicas are stopped. The window and
  delays are not published by Google: defaults 60 s and 300 s (the Kubernetes HPA's down-scale
  stabilisation) are our choice.
- min = 0 is the "scale to zero" preview: the last replica stops only after no request for
  `idle_scaledown_period_s` and at least `min_scaleup_period_s` after scaling up from zero (both
  300..28,800 s, default 3600 s); a request arriving at zero replicas starts one at once.
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
from collections import deque
from dataclasses import dataclass, field

import simpy

from loadlab.schema import FAILED
from simulator.deployments.base import Cost
from simulator.pricing import billed_seconds, replica_price_per_hour

ENDPOINT_LIMITS = {"dedicated": (3600.0, 10.0), "shared": (60.0, 1.5)}
# base64 JPEG payload per case, MB: upload px^2 x ~0.5 byte/px (photo JPEG) x 4/3 (base64)
DEFAULT_PAYLOAD_MB = {"small": 0.17, "medium": 0.70, "large": 2.80, "light": 0.04}


def article_schedule(hour: int) -> tuple[int, int]:
    """The article's settings: business hours (9-18h) min=1 max=3; night (18-9h) min=0 max=1."""
    return (1, 3) if 9 <= hour < 18 else (0, 1)


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
        for name in ("idle_scaledown_period_s", "min_scaleup_period_s"):
            if not 300 <= getattr(self, name) <= 28800:
                raise ValueError(f"{name} must be within 300..28800 s (Vertex scale-to-zero preview)")
        if not 0 < self.target_utilisation <= 1:
            raise ValueError("target utilisation must be in (0, 1]")


def fixed_schedule(min_replicas: int, max_replicas: int):
    def schedule(hour: int) -> tuple[int, int]:
        return min_replicas, max_replicas
    return schedule


def hours_schedule(business: tuple[int, int], night: tuple[int, int], start: int = 9, end: int = 18):
    def schedule(hour: int) -> tuple[int, int]:
        return business if start <= hour < end else night
    return schedule


class Replica:
    __slots__ = ("id", "state", "started_at", "ready_at", "stopped_at", "busy", "stop", "preempt_at", "spot",
                 "proc", "wake")

    def __init__(self, rid: int, now: float, stop_event, preempt_at: float, spot: bool):
        self.id, self.state, self.started_at = rid, "provisioning", now
        self.ready_at = self.stopped_at = None
        self.busy = False
        self.stop = stop_event
        self.preempt_at = preempt_at
        self.spot = spot
        self.proc = None
        self.wake = None          # idle: the event a request is handed over with (None otherwise)


class VertexEndpoint:
    """Requests wait in `waiting` (FIFO) until a ready replica takes one; an idle replica waits on its
    own `wake` event in `idle` (longest idle first) and is handed the next request directly, so a stop or
    preemption interrupts only replicas that hold no request."""

    def __init__(self, env: simpy.Environment, ledger, sample, config: VertexConfig, prices: dict,
                 provision_s: float = 127.0, load_s: float = 43.0, rng=None, name: str = "vertex",
                 on_fail=None):
        config.check()
        self.env, self.ledger, self.sample, self.config, self.prices = env, ledger, sample, config, prices
        self.provision_s, self.load_s, self.rng, self.name = provision_s, load_s, rng, name
        self.timeout_s, self.max_payload_mb = ENDPOINT_LIMITS[config.endpoint]
        self.on_fail = on_fail               # hybrid: a failed request goes there instead of failing
        self.waiting: deque = deque()        # requests not on a replica yet
        self.idle: deque[Replica] = deque()  # ready replicas waiting for a request
        self.replicas: list[Replica] = []    # every replica ever started
        self.active: list[Replica] = []      # not stopped
        self.ready = 0
        self.busy = 0
        self.busy_s = 0.0
        self.stockouts = 0
        self.preemptions = 0
        self.max_replicas = 0
        self.last_request_at = -1e18
        self.scaled_from_zero_at = -1e18
        env.process(autoscaler(env, self))

    # -- requests -------------------------------------------------------------------------------
    def submit(self, job) -> None:
        now = self.env.now
        self.last_request_at = now
        if self.config.payload_mb.get(job.case, 0.0) > self.max_payload_mb:
            return self._fail(job, f"payload over {self.max_payload_mb} MB ({self.config.endpoint} endpoint)")
        if self.ready == 0:
            job.cold_start = True
        if not self.active:
            _, hi = self.config.schedule(int(now // 3600) % 24)
            if hi > 0:
                self.start_replica()
                self.scaled_from_zero_at = now
        self.dispatch(job)

    def dispatch(self, job, first: bool = False) -> None:
        """Hand the job to the longest-idle replica, else queue it (at the head when `first`: a retry)."""
        if self.idle:
            rep = self.idle.popleft()
            wake, rep.wake = rep.wake, None
            wake.succeed(job)
        elif first:
            self.waiting.appendleft(job)
        else:
            self.waiting.append(job)

    def withdraw(self, job) -> bool:
        """Take back a request no replica has started (hybrid fallback)."""
        try:
            self.waiting.remove(job)
            return True
        except ValueError:
            return False

    def _fail(self, job, error: str) -> None:
        if self.on_fail is not None:
            self.on_fail(job, error)
        else:
            self.ledger.fail(job, self.env.now, error, status=FAILED)

    # -- replicas -------------------------------------------------------------------------------
    def start_replica(self) -> Replica | None:
        cfg = self.config
        if cfg.spot and cfg.stockout_probability > 0 and self.rng.random() < cfg.stockout_probability:
            self.stockouts += 1
            return None
        now = self.env.now
        preempt_at = math.inf
        if cfg.spot and cfg.preemptions_per_hour > 0:
            preempt_at = now + self.rng.expovariate(cfg.preemptions_per_hour / 3600)
        rep = Replica(len(self.replicas), now, self.env.event(), preempt_at, cfg.spot)
        self.replicas.append(rep)
        self.active.append(rep)
        self.max_replicas = max(self.max_replicas, len(self.active))
        rep.proc = self.env.process(replica_life(self.env, self, rep))
        if preempt_at != math.inf:
            self.env.process(preemptor(self.env, self, rep))
        return rep

    def stop_replica(self, rep: Replica) -> None:
        if not rep.stop.triggered:
            rep.stop.succeed()
            self.interrupt_if_idle(rep, "stop")

    def interrupt_if_idle(self, rep: Replica, cause: str) -> None:
        """A replica waiting for a request leaves the idle list and is interrupted; a busy one sees its
        stop (or preemption time) when its request ends."""
        if rep.wake is not None:
            self.idle.remove(rep)
            rep.wake = None
            rep.proc.interrupt(cause)

    # -- outputs --------------------------------------------------------------------------------
    def uptimes(self, horizon_s: float) -> list[float]:
        return [((r.stopped_at if r.stopped_at is not None else horizon_s) - r.started_at) for r in self.replicas]

    def cost(self, horizon_s: float) -> Cost:
        gran = self.prices["billing_granularity_s"]
        billed = 0.0
        for r in self.replicas:
            up = (r.stopped_at if r.stopped_at is not None else horizon_s) - r.started_at
            billed += billed_seconds(up, gran) * replica_price_per_hour(self.prices, r.spot) / 3600
        return {"usage": billed, "fixed_per_month": 0.0,
                "replica_hours_billed": sum(billed_seconds(u, gran) for u in self.uptimes(horizon_s)) / 3600}

    def stats(self, horizon_s: float) -> dict:
        up = self.uptimes(horizon_s)
        ready_s = sum(((r.stopped_at if r.stopped_at is not None else horizon_s) - r.ready_at)
                      for r in self.replicas if r.ready_at is not None)
        return {"replicas_started": len(self.replicas), "mean_replicas": sum(up) / horizon_s if horizon_s else None,
                "max_replicas": self.max_replicas, "replica_hours": sum(up) / 3600,
                "utilisation": self.busy_s / ready_s if ready_s else None, "busy_hours": self.busy_s / 3600,
                "stockouts": self.stockouts, "preemptions": self.preemptions}


def replica_life(env: simpy.Environment, ep: VertexEndpoint, rep: Replica):
    """provisioning -> loading -> ready -> (busy <-> idle) -> stopped."""
    yield env.timeout(ep.provision_s)
    rep.state = "loading"
    yield env.timeout(ep.load_s)
    rep.state, rep.ready_at = "ready", env.now
    ep.ready += 1
    ledger, sample, timeout_s = ep.ledger, ep.sample, ep.timeout_s
    label = f"{ep.name}-replica{rep.id}"
    while not rep.stop.triggered:
        if rep.preempt_at <= env.now:              # preempted while idle (or while loading)
            ep.preemptions += 1
            break
        if ep.waiting:
            job = ep.waiting.popleft()
        else:
            rep.wake = env.event()
            ep.idle.append(rep)
            try:
                job = yield rep.wake
            except simpy.Interrupt:                # stopped or preempted while idle: it holds no request
                continue
        now = env.now
        if now - job.submitted >= timeout_s:       # dropped by the endpoint while waiting
            ep._fail(job, f"timeout {timeout_s:g} s ({ep.config.endpoint} endpoint)")
            continue
        service = sample(job.case)
        job.started, job.service_s = now, service
        rep.busy = True
        ep.busy += 1
        limit = job.submitted + timeout_s
        if rep.preempt_at < now + service and rep.preempt_at < limit:
            yield env.timeout(rep.preempt_at - now)
            ep.busy_s += env.now - now
            ep.busy -= 1
            rep.busy = False
            ep.preemptions += 1
            ledger.retried += 1
            job.retries += 1
            job.started = job.service_s = None
            ep.dispatch(job, first=True)           # retried first, nothing lost
            break
        if now + service > limit:
            yield env.timeout(limit - now)
            ep.busy_s += limit - now
            ep.busy -= 1
            rep.busy = False
            ep._fail(job, f"timeout {timeout_s:g} s ({ep.config.endpoint} endpoint)")
            continue
        yield env.timeout(service)
        ep.busy_s += service
        ep.busy -= 1
        rep.busy = False
        ledger.complete(job, env.now, label)
    rep.state, rep.stopped_at = "stopped", env.now
    ep.ready -= 1
    ep.active.remove(rep)


def preemptor(env: simpy.Environment, ep: VertexEndpoint, rep: Replica):
    """A spot preemption of an idle replica (a busy one checks its own preempt_at)."""
    yield env.timeout(rep.preempt_at - env.now)
    ep.interrupt_if_idle(rep, "preempt")


def autoscaler(env: simpy.Environment, ep: VertexEndpoint):
    """Every tick: average load over the window -> wanted replicas within the hour's min/max."""
    cfg = ep.config
    samples: deque = deque(maxlen=max(1, int(round(cfg.window_s / cfg.tick_s))))
    lower_since = None
    while True:
        now = env.now
        lo, hi = cfg.schedule(int(now // 3600) % 24)
        samples.append(ep.busy + len(ep.waiting))
        avg = sum(samples) / len(samples)
        wanted = math.ceil(avg / cfg.target_utilisation - 1e-9)
        if lo == 0 and wanted == 0 and ep.active:
            idle_long = now - ep.last_request_at >= cfg.idle_scaledown_period_s
            up_long = now - ep.scaled_from_zero_at >= cfg.min_scaleup_period_s
            if not (idle_long and up_long) or ep.busy or ep.waiting:
                wanted = 1
        wanted = max(lo, min(hi, wanted))
        current = len(ep.active)
        if wanted > current:
            lower_since = None
            if current == 0:
                ep.scaled_from_zero_at = now
            for _ in range(wanted - current):
                ep.start_replica()
        elif wanted < current:
            if lower_since is None:
                lower_since = now
            if now - lower_since >= cfg.scale_down_delay_s or current > hi:
                idle = [r for r in ep.active if r.state == "ready" and not r.busy and not r.stop.triggered]
                for rep in reversed(idle[: current - wanted]):
                    ep.stop_replica(rep)
        else:
            lower_since = None
        yield env.timeout(cfg.tick_s)
