"""`ReplicaPool`: replicas with a life cycle behind one router queue, and their bill and timeline — what
every autoscaled deployment shares (Vertex AI, Ray Serve); an `AutoscalingPolicy` decides how many.

- Life cycle: starting (start-up phases, e.g. provisioning then loading) -> ready -> (stopping ->)
  stopped. A stop is immediate for an idle replica, or graceful (`GracefulStop`, as Ray Serve's
  replica shutdown): the replica takes no new request, finishes those it holds and is stopped at the
  first check (every `wait_loop_s`) that finds it empty, at the latest after `timeout_s`.
- Routing: a request goes to the longest-idle ready replica, else to the ready replica with the fewest
  ongoing requests below `max_ongoing` (Ray Serve's router picks the less loaded of two; with one slot
  per replica, as here by default, the choice does not matter), else waits in the router `queue`.
  Each replica serves its requests one at a time, in order.
- Return (`return_s(case)`, optional): after its service a replica still holds the request while the
  result travels back to the caller; the slot frees (and the request ends) only then. Ray Serve's router
  counts a request on its replica until the replica's result has arrived (router.py: the
  `_process_finished_request` callback on the ReplicaResult), so with max_ongoing_requests=1 the next
  request waits for that transfer too.
- Spot preemption (a Poisson process per replica) puts the request in flight back at the head of the
  queue; a request older than `timeout_s` when taken, or not done by then, fails.
- Billing: each replica from its start to its stop, `bill(up_s)` seconds (rounding, minimum) at
  `price_per_hour(replica)`.
- Timeline: the replicas' intervals, the target changes (`ScaleEvent`s) and, when `record_timeline`,
  a sample of (target, starting, running, stopping) at every change: a `loadlab.schema.ReplicaRun`.

SimPy public API only: each idle replica waits on an event of its own, stops and preemptions
`interrupt()` replicas that hold no request.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from loadlab.schema import FAILED, ReplicaInterval, ReplicaRun, ReplicaSample, ScaleEvent
from simulator.deployments.base import Cost

STARTING, READY, STOPPING, STOPPED = "starting", "ready", "stopping", "stopped"


@dataclass
class GracefulStop:
    """Ray Serve's replica shutdown: check every `wait_loop_s` (graceful_shutdown_wait_loop_s, 2 s) whether
    the replica still holds requests; stop when it holds none, or after `timeout_s` (20 s) whatever it holds."""

    wait_loop_s: float = 2.0
    timeout_s: float = 20.0


class Replica:
    __slots__ = ("id", "state", "started_at", "ready_at", "stopping_at", "stopped_at", "ongoing", "inbox",
                 "busy", "stop_requested", "preempt_at", "spot", "proc", "wake")

    def __init__(self, rid: int, now: float, preempt_at: float, spot: bool):
        self.id, self.state, self.started_at = rid, STARTING, now
        self.ready_at = self.stopping_at = self.stopped_at = None
        self.ongoing = 0            # requests routed to it and not ended (Ray's "running requests")
        self.inbox: deque = deque()  # routed to it, not started yet (more than one with max_ongoing > 1)
        self.busy = False
        self.stop_requested = False
        self.preempt_at = preempt_at
        self.spot = spot
        self.proc = None
        self.wake = None            # idle: the event that wakes it when a request is routed to it

    @property
    def routable(self) -> bool:
        return self.state == READY and not self.stop_requested


class ReplicaPool:
    def __init__(self, env: simpy.Environment, ledger, sample, policy, startup: list[tuple[str, float]],
                 price_per_hour: Callable[[Replica], float], bill: Callable[[float], float], *,
                 max_ongoing: int = 1, name: str = "replica", timeout_s: float = math.inf, rng=None,
                 spot: bool = False, preemptions_per_hour: float = 0.0, stockout_probability: float = 0.0,
                 graceful: GracefulStop | None = None, cold_start_rule: str = "no_ready_replica",
                 on_fail=None, record_timeline: bool = False, return_s: Callable[[str], float] | None = None):
        if max_ongoing < 1:
            raise ValueError("max_ongoing must be >= 1")
        self.env, self.ledger, self.sample, self.policy, self.name = env, ledger, sample, policy, name
        self.startup, self.price_per_hour, self.bill = startup, price_per_hour, bill
        self.max_ongoing, self.timeout_s, self.rng = max_ongoing, timeout_s, rng
        self.spot, self.preemptions_per_hour, self.stockout_probability = spot, preemptions_per_hour, stockout_probability
        self.graceful, self.cold_start_rule, self.on_fail = graceful, cold_start_rule, on_fail
        self.return_s = return_s
        self.queue: deque = deque()          # requests the router holds (no replica with a free slot)
        self.idle: deque[Replica] = deque()  # ready replicas with no request, longest idle first
        self.replicas: list[Replica] = []    # every replica ever started
        self.active: list[Replica] = []      # not stopped
        self.ready = 0                       # replicas in the ready state (stopping ones excluded)
        self.busy = 0                        # replicas serving a request
        self.busy_s = 0.0
        self.stockouts = 0
        self.preemptions = 0
        self.max_replicas = 0
        self.target = 0
        self.events: list[ScaleEvent] = []
        self.samples: list[ReplicaSample] | None = [] if record_timeline else None
        policy.attach(self)

    # -- requests -------------------------------------------------------------------------------
    def submit(self, job) -> None:
        if self.cold_start_rule == "no_ready_replica" and self.ready == 0:
            job.cold_start = True
        self.policy.on_arrival(job)
        self.dispatch(job)

    def dispatch(self, job, first: bool = False) -> None:
        """Route the job (longest-idle replica, else the least loaded with a free slot), else hold it in
        the queue (at its head when `first`: a retry)."""
        if self.idle:
            self.give(self.idle.popleft(), job)
            return
        if self.max_ongoing > 1:
            free = [r for r in self.active if r.routable and r.ongoing < self.max_ongoing]
            if free:
                self.give(min(free, key=lambda r: (r.ongoing, r.id)), job)
                return
        if first:
            self.queue.appendleft(job)
        else:
            self.queue.append(job)
        self.policy.on_queued(job)

    def give(self, rep: Replica, job) -> None:
        rep.ongoing += 1
        rep.inbox.append(job)
        if rep.wake is not None:
            wake, rep.wake = rep.wake, None
            wake.succeed()
        self.policy.on_load_change()

    def withdraw(self, job) -> bool:
        """Take back a request no replica has (hybrid fallback)."""
        try:
            self.queue.remove(job)
        except ValueError:
            return False
        self.policy.on_load_change()
        return True

    def fail(self, job, error: str) -> None:
        if self.on_fail is not None:
            self.on_fail(job, error)
        else:
            self.ledger.fail(job, self.env.now, error, status=FAILED)

    # -- replicas -------------------------------------------------------------------------------
    def set_target(self, target: int) -> None:
        """Record the policy's decision (a scale event when it changes)."""
        if target != self.target:
            self.events.append(ScaleEvent(t=self.env.now, from_replicas=self.target, to_replicas=target))
            self.target = target
            self._sample()

    def start_replica(self, warm: bool = False) -> Replica | None:
        """A new replica, starting (or `warm`: ready at once, for a replay that begins with it running)."""
        if self.spot and self.stockout_probability > 0 and self.rng.random() < self.stockout_probability:
            self.stockouts += 1
            return None
        now = self.env.now
        preempt_at = math.inf
        if self.spot and self.preemptions_per_hour > 0:
            preempt_at = now + self.rng.expovariate(self.preemptions_per_hour / 3600)
        rep = Replica(len(self.replicas), now, preempt_at, self.spot)
        self.replicas.append(rep)
        self.active.append(rep)
        self.max_replicas = max(self.max_replicas, len(self.active))
        rep.proc = self.env.process(replica_life(self.env, self, rep, warm))
        if preempt_at != math.inf:
            self.env.process(preemptor(self.env, self, rep))
        self._sample()
        return rep

    def stop_replica(self, rep: Replica) -> None:
        """Stop a replica: at once when starting or idle; a busy one takes no new request and stops when
        it holds none (graceful: at the next shutdown check)."""
        if rep.stop_requested or rep.state == STOPPED:
            return
        rep.stop_requested = True
        if rep.state == STARTING:
            rep.proc.interrupt("stop")
            return
        was_ready = rep.state == READY
        rep.state, rep.stopping_at = STOPPING, self.env.now
        if was_ready:
            self.ready -= 1
        self.policy.on_replica_change(rep)
        self._sample()
        if self.graceful is not None:
            self.env.process(graceful_stop(self.env, self, rep))
        self.interrupt_if_idle(rep, "stop")

    def interrupt_if_idle(self, rep: Replica, cause: str) -> None:
        """A replica waiting for a request leaves the idle list and is interrupted; a busy one sees its
        stop (or preemption time) when its request ends."""
        if rep.wake is not None:
            self.idle.remove(rep)
            rep.wake = None
            rep.proc.interrupt(cause)

    def _stopped(self, rep: Replica) -> None:
        if rep.state == READY:
            self.ready -= 1
        rep.state, rep.stopped_at = STOPPED, self.env.now
        if rep.stopping_at is None:
            rep.stopping_at = rep.stopped_at
        self.active.remove(rep)
        self.policy.on_replica_change(rep)
        self._sample()

    def _sample(self) -> None:
        if self.samples is None:
            return
        starting = sum(r.state == STARTING for r in self.active)
        running = sum(r.state == READY for r in self.active)
        stopping = sum(r.state == STOPPING for r in self.active)
        self.samples.append(ReplicaSample(t=self.env.now, target=self.target, starting=starting, running=running,
                                          stopping=stopping))

    @property
    def running(self) -> list[Replica]:
        """Ready replicas not being stopped (what Ray Serve calls RUNNING)."""
        return [r for r in self.active if r.state == READY]

    # -- outputs --------------------------------------------------------------------------------
    def uptimes(self, horizon_s: float) -> list[float]:
        return [((r.stopped_at if r.stopped_at is not None else horizon_s) - r.started_at) for r in self.replicas]

    def cost(self, horizon_s: float) -> Cost:
        billed = usage = 0.0
        for r, up in zip(self.replicas, self.uptimes(horizon_s), strict=True):
            seconds = self.bill(up)
            billed += seconds
            usage += seconds * self.price_per_hour(r) / 3600
        return {"usage": usage, "fixed_per_month": 0.0, "replica_hours_billed": billed / 3600}

    def stats(self, horizon_s: float) -> dict:
        up = self.uptimes(horizon_s)
        ready_s = sum(((r.stopped_at if r.stopped_at is not None else horizon_s) - r.ready_at)
                      for r in self.replicas if r.ready_at is not None)
        return {"replicas_started": len(self.replicas), "mean_replicas": sum(up) / horizon_s if horizon_s else None,
                "max_replicas": self.max_replicas, "replica_hours": sum(up) / 3600,
                "utilisation": self.busy_s / ready_s if ready_s else None, "busy_hours": self.busy_s / 3600,
                "stockouts": self.stockouts, "preemptions": self.preemptions,
                "scale_ups": sum(e.direction == "up" for e in self.events),
                "scale_downs": sum(e.direction == "down" for e in self.events)}

    def replica_run(self, horizon_s: float) -> ReplicaRun:
        """The run's replicas on the simulation clock, window [0, horizon_s]."""
        intervals = [ReplicaInterval(replica=f"{self.name}-replica{r.id}", start=r.started_at, ready=r.ready_at,
                                     end=r.stopped_at) for r in self.replicas]
        seconds = sum(min(horizon_s, r.stopped_at if r.stopped_at is not None else horizon_s) - r.started_at
                      for r in self.replicas if r.started_at < horizon_s)
        return ReplicaRun(window=(0.0, horizon_s), timeline=list(self.samples or []), intervals=intervals,
                          events=list(self.events), replica_seconds=seconds)


def replica_life(env: simpy.Environment, pool: ReplicaPool, rep: Replica, warm: bool = False):
    """starting (its phases) -> ready -> (busy <-> idle) -> (stopping ->) stopped."""
    for _phase, seconds in ([] if warm else pool.startup):
        try:
            yield env.timeout(seconds)
        except simpy.Interrupt:                   # stopped while starting
            pool._stopped(rep)
            return
    rep.state, rep.ready_at = READY, env.now
    pool.ready += 1
    pool.policy.on_replica_change(rep)
    pool._sample()
    ledger, sample, timeout_s = pool.ledger, pool.sample, pool.timeout_s
    label = f"{pool.name}-replica{rep.id}"
    while not (rep.stop_requested and not rep.inbox):
        if rep.preempt_at <= env.now:              # preempted while idle (or while starting)
            pool.preemptions += 1
            break
        if rep.inbox:
            job = rep.inbox.popleft()
        elif pool.queue and not rep.stop_requested:
            job = pool.queue.popleft()
            rep.ongoing += 1
            pool.policy.on_load_change()
        else:
            rep.wake = env.event()
            pool.idle.append(rep)
            try:
                yield rep.wake
            except simpy.Interrupt:                # stopped or preempted while idle: it holds no request
                continue
            job = rep.inbox.popleft()              # handed over
        now = env.now
        if now - job.submitted >= timeout_s:       # dropped by the endpoint while waiting
            rep.ongoing -= 1
            pool.policy.on_load_change()
            pool.fail(job, f"timeout {timeout_s:g} s")
            continue
        service = sample(job.case)
        job.started, job.service_s = now, service
        # the replica holds the request while its result travels back (0 without `return_s`)
        held = service + (pool.return_s(job.case) if pool.return_s is not None else 0.0)
        if pool.cold_start_rule == "replica_started_after_arrival":
            job.cold_start = rep.ready_at > job.submitted
        rep.busy = True
        pool.busy += 1
        limit = job.submitted + timeout_s
        if rep.preempt_at < now + held and rep.preempt_at < limit:
            outcome, ends = "preempted", rep.preempt_at
        elif now + held > limit:
            outcome, ends = "timeout", limit
        else:
            outcome, ends = "done", None
        try:
            yield env.timeout(held if ends is None else ends - now)
        except simpy.Interrupt:                    # killed: graceful stop ran out of time
            outcome = "killed"
        # (each sum as the replica's time holding the request: service + return, the time to the limit, or to now)
        pool.busy_s += held if outcome == "done" else (ends - now if outcome == "timeout" else env.now - now)
        pool.busy -= 1
        rep.busy = False
        rep.ongoing -= 1
        if outcome == "preempted":
            pool.preemptions += 1
            ledger.retried += 1
            job.retries += 1
            job.started = job.service_s = None
            pool.dispatch(job, first=True)        # retried first, nothing lost
            break
        if outcome == "done":
            ledger.complete(job, env.now, label)
        elif outcome == "timeout":
            pool.fail(job, f"timeout {timeout_s:g} s")
        else:
            pool.fail(job, f"replica stopped after graceful_shutdown_timeout_s {pool.graceful.timeout_s:g} s")
            pool.policy.on_load_change()
            return
        pool.policy.on_load_change()
    for job in list(rep.inbox):                    # preempted with requests routed to it: back to the router
        rep.inbox.remove(job)
        rep.ongoing -= 1
        pool.dispatch(job, first=True)
    if pool.graceful is None or rep.state != STOPPING:
        pool._stopped(rep)


def graceful_stop(env: simpy.Environment, pool: ReplicaPool, rep: Replica):
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
        rep.proc.interrupt("killed")   # only reached with requests still held (graceful timeout)
    for job in list(rep.inbox):
        rep.inbox.remove(job)
        rep.ongoing -= 1
        pool.fail(job, f"replica stopped after graceful_shutdown_timeout_s {pool.graceful.timeout_s:g} s")
    pool._stopped(rep)


def preemptor(env: simpy.Environment, pool: ReplicaPool, rep: Replica):
    """A spot preemption of an idle replica (a busy one checks its own preempt_at)."""
    yield env.timeout(rep.preempt_at - env.now)
    pool.interrupt_if_idle(rep, "preempt")
