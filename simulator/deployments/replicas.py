"""`ReplicaPool`: replicas behind one router queue, and their bill and timeline — what every autoscaled
deployment shares (Vertex AI, Ray Serve); an `AutoscalingPolicy` decides how many, the pool (through
its hooks) which. A replica's own life cycle is simulator/deployments/replica.py.

- Life cycle: starting (start-up phases, e.g. provisioning then loading) -> ready -> (stopping ->)
  stopped. A stop is immediate for an idle replica; a deployment kind may make it graceful (Ray Serve's
  replica shutdown: `on_stopping`, `left_service`).
- Routing: a request goes to the longest-idle ready replica, else to the ready replica with the fewest
  ongoing requests below `max_ongoing` (Ray Serve's router picks the less loaded of two; with one slot
  per replica, as here by default, the choice does not matter), else waits in the router `queue`,
  which a replica takes from the moment it is free (`take_queued`; Ray Serve's deployment routes
  through its own router instead: simulator/deployments/ray_router.py). Each replica serves its
  requests one at a time, in order.
- Return (`return_s(case)`, 0 by default): after its service a replica still holds the request while the
  result travels back to the caller; the slot frees (and the request ends) only then. Ray Serve's router
  counts a request on its replica until the replica's result has arrived (router.py: the
  `_process_finished_request` callback on the ReplicaResult), so with max_ongoing_requests=1 the next
  request waits for that transfer too.
- Spot capacity (`stocked_out`, `preemption_at`; none by default): a preemption puts the request in
  flight back at the head of the queue; a request older than `timeout_s` when taken, or not done by
  then, fails.
- Billing: each replica from its start to its stop, `bill(up_s)` seconds (rounding, minimum) at
  `price_per_hour(replica)`.
- Timeline: the replicas' intervals, the target changes (`ScaleEvent`s) and, when `record_timeline`,
  a sample of (target, starting, running, stopping) at every change: a `loadlab.schema.ReplicaRun`.

A deployment kind is a subclass: it overrides the hooks (each marked "hook" below, the default being
the plain behaviour) instead of passing flags, so what one kind adds stays in its own module.
"""

from __future__ import annotations

import math
from collections import deque

import simpy

from loadlab.schema import FAILED, ReplicaInterval, ReplicaRun, ReplicaSample, ScaleEvent
from simulator.deployments.base import Cost
from simulator.deployments.replica import READY, STARTING, STOPPED, STOPPING, Replica, preemptor, replica_life


class ReplicaPool:
    """`startup`: the start-up phases, (name, seconds) each; `sample(case, in_system=, busy=, first=, job=)`:
    a service time (simulator/profiles.py); `timeout_s`:
    the endpoint's limit on a request's time inside it; `on_fail(job, error)`: who takes a failed request
    (default: the ledger records it)."""

    def __init__(self, env: simpy.Environment, ledger, sample, policy, startup: list[tuple[str, float]], *,
                 max_ongoing: int = 1, name: str = "replica", timeout_s: float = math.inf, on_fail=None,
                 record_timeline: bool = False):
        if max_ongoing < 1:
            raise ValueError("max_ongoing must be >= 1")
        self.env, self.ledger, self.sample, self.policy, self.name = env, ledger, sample, policy, name
        self.startup, self.max_ongoing, self.timeout_s, self.on_fail = startup, max_ongoing, timeout_s, on_fail
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
        self.policy.on_request(job)
        refused = self.on_submit(job)
        if refused is not None:
            self.fail(job, refused)
            return
        self.policy.on_arrival(job)
        self.dispatch(job)

    def on_submit(self, job) -> str | None:
        """Hook: the deployment's check of a request at its door; the error when it refuses it (none here)."""
        return None

    def mark_cold_start_on_service(self, job, rep: Replica) -> None:
        """Hook: called when `rep` takes the request. The one definition of a cold start (the recorder's
        and the report's too): the first job a new replica serves (a replica a replay starts warm is not
        new). Apart from it, a job that arrived before its replica was ready waited for a start-up."""
        job.cold_start = rep.served == 0 and not rep.warm
        if rep.ready_at is not None and rep.ready_at > job.submitted:
            job.waited_for_start_s = rep.ready_at - job.submitted

    def startup_for(self, rep: Replica) -> list[tuple[str, float]]:
        """Hook: the start-up phases of `rep` (the pool's by default; a replay may give each its measured one)."""
        return self.startup

    def return_s(self, case: str, job=None) -> float:
        """Hook: how long a replica still holds a request of `case` (`job`) after its service (0 by default)."""
        return 0.0

    @property
    def in_system(self) -> int:
        """Requests in the deployment: held by the router or routed to a replica and not ended (a service
        time's load: simulator/service_load.py). The pool's replicas share one host as far as `busy` goes:
        a profile calibrated with one replica per host measures no contention between them."""
        return len(self.queue) + sum(r.ongoing for r in self.active)

    @property
    def timeout_error(self) -> str:
        return f"timeout {self.timeout_s:g} s"

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

    def take_queued(self, rep: Replica):
        """Hook: a replica free for a request takes the router's oldest at once (None when none waits)."""
        if not self.queue:
            return None
        job = self.queue.popleft()
        rep.ongoing += 1
        self.policy.on_load_change()
        return job

    def slot_freed(self, rep: Replica) -> None:
        """Hook: a request left `rep`'s slot (served, timed out or killed)."""

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
        if self.stocked_out():
            self.stockouts += 1
            return None
        now = self.env.now
        preempt_at = self.preemption_at(now)
        rep = Replica(len(self.replicas), f"{self.name}-replica{len(self.replicas)}", now, preempt_at)
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
        it holds none (or as the kind's `on_stopping` has it: Ray Serve's graceful shutdown)."""
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
        self.on_stopping(rep)
        self.interrupt_if_idle(rep, "stop")

    def stop_replicas(self, count: int, target: int | None = None) -> int:
        """Stop up to `count` replicas, those `replicas_to_stop` picks; the target becomes `target` (the
        policy's decision) or, when None, what is left. Returns how many stop."""
        chosen = self.replicas_to_stop(count)
        if chosen:
            self.set_target(len(self.active) - len(chosen) if target is None else target)
        for rep in chosen:
            self.stop_replica(rep)
        return len(chosen)

    def interrupt_if_idle(self, rep: Replica, cause: str) -> None:
        """A replica waiting for a request leaves the idle list and is interrupted; a busy one sees its
        stop (or preemption time) when its request ends."""
        if rep.wake is not None:
            self.idle.remove(rep)
            rep.wake = None
            rep.proc.interrupt(cause)

    def replica_ready(self, rep: Replica) -> None:
        rep.state, rep.ready_at = READY, self.env.now
        self.ready += 1
        self.policy.on_replica_change(rep)
        self._sample()

    def replica_stopped(self, rep: Replica) -> None:
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

    @property
    def staying(self) -> int:
        """Replicas starting or running that were not told to stop."""
        return sum(1 for r in self.active if not r.stop_requested)

    # -- hooks a deployment kind overrides: which replicas stop, how, spot capacity, the bill ----
    def replicas_to_stop(self, count: int) -> list[Replica]:
        """Hook: which replicas a scale-down by `count` stops, in order. By default only idle ready ones (an
        immediate stop then cuts no request): the longest-running of them, the newest of those first."""
        idle = [r for r in self.active if r.state == READY and not r.busy and not r.stop_requested]
        return list(reversed(idle[:count]))

    def on_stopping(self, rep: Replica) -> None:
        """Hook: `rep` began stopping (nothing more by default: it stops when it holds no request)."""

    def left_service(self, rep: Replica) -> None:
        """Hook: `rep` will take no more requests (stopped, preempted); by default it is stopped now."""
        self.replica_stopped(rep)

    def stocked_out(self) -> bool:
        """Hook: whether a new replica finds no capacity (never by default)."""
        return False

    def preemption_at(self, now: float) -> float:
        """Hook: when a replica started at `now` will be preempted (never by default)."""
        return math.inf

    def price_per_hour(self, rep: Replica) -> float:
        """Hook: $ per hour of `rep`'s billed time."""
        raise NotImplementedError

    def bill(self, up_s: float) -> float:
        """Hook: the seconds billed for a replica up `up_s` (rounding, minimum)."""
        raise NotImplementedError

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
        run = ReplicaRun.model_construct(window=(0.0, horizon_s), events=self.events)   # its counts, unvalidated
        ready_s = sum(((r.stopped_at if r.stopped_at is not None else horizon_s) - r.ready_at)
                      for r in self.replicas if r.ready_at is not None)
        return {"replicas_started": len(self.replicas), "mean_replicas": sum(up) / horizon_s if horizon_s else None,
                "max_replicas": self.max_replicas, "replica_hours": sum(up) / 3600,
                "utilisation": self.busy_s / ready_s if ready_s else None, "busy_hours": self.busy_s / 3600,
                "stockouts": self.stockouts, "preemptions": self.preemptions,
                "scale_ups": run.scale_count("up"), "scale_downs": run.scale_count("down")}

    def replica_run(self, horizon_s: float) -> ReplicaRun:
        """The run's replicas on the simulation clock, window [0, horizon_s]."""
        intervals = [ReplicaInterval(replica=r.label, start=r.started_at, ready=r.ready_at,
                                     end=r.stopped_at) for r in self.replicas]
        seconds = sum(min(horizon_s, r.stopped_at if r.stopped_at is not None else horizon_s) - r.started_at
                      for r in self.replicas if r.started_at < horizon_s)
        return ReplicaRun(window=(0.0, horizon_s), timeline=list(self.samples or []), intervals=intervals,
                          events=list(self.events), replica_seconds=seconds)


