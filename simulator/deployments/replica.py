"""One replica: its states and what it holds (`Replica`), and its life as a SimPy process
(`replica_life`: start-up phases, then requests one at a time; `preemptor`: a spot preemption that
finds it idle).

The process reaches its pool (simulator/deployments/replicas.py) only through the pool's attributes,
methods and hooks, so a deployment kind changes what a replica does by overriding a pool hook, never
here. It takes the pool untyped: importing `ReplicaPool` here would close an import cycle (the pool
starts these processes).

SimPy public API only: an idle replica waits on an event of its own (`wake`); a stop or a preemption
`interrupt()`s only a replica that holds no request, and a graceful stop that runs out of time
interrupts a busy one with the failure as the interrupt's cause.
"""

from __future__ import annotations

from collections import deque

import simpy

STARTING, READY, STOPPING, STOPPED = "starting", "ready", "stopping", "stopped"
# how one request held by a replica ended
DONE, TIMEOUT, PREEMPTED, KILLED, DROPPED = "done", "timeout", "preempted", "killed", "dropped"


class Replica:
    __slots__ = ("id", "label", "state", "started_at", "ready_at", "stopping_at", "stopped_at", "ongoing", "inbox",
                 "busy", "stop_requested", "preempt_at", "proc", "wake", "served", "warm")

    def __init__(self, rid: int, label: str, now: float, preempt_at: float):
        self.id, self.label, self.state, self.started_at = rid, label, STARTING, now
        self.ready_at = self.stopping_at = self.stopped_at = None
        self.ongoing = 0            # requests routed to it and not ended (Ray's "running requests")
        self.inbox: deque = deque()  # routed to it, not started yet (more than one with max_ongoing > 1)
        self.busy = False
        self.stop_requested = False
        self.preempt_at = preempt_at
        self.proc = None
        self.wake = None            # idle: the event that wakes it when a request is routed to it
        self.served = 0             # requests it took (its first is a cold start)
        self.warm = False           # ready at t=0 of a replay that began with it running: not new

    @property
    def routable(self) -> bool:
        return self.state == READY and not self.stop_requested


def replica_life(env: simpy.Environment, pool, rep: Replica, warm: bool = False):
    """starting (its phases) -> ready -> (busy <-> idle) -> (stopping ->) stopped."""
    rep.warm = warm
    if not (yield from start_up(env, pool, rep, warm)):
        return
    while not (rep.stop_requested and not rep.inbox):
        if rep.preempt_at <= env.now:              # preempted while idle (or while starting)
            pool.preemptions += 1
            break
        job = yield from next_request(env, pool, rep)
        if job is None:                            # stopped or preempted while idle: look again
            continue
        outcome = yield from serve(env, pool, rep, job)
        if outcome == PREEMPTED:
            break
        if outcome == KILLED:                      # its graceful stop ends it
            return
    for job in list(rep.inbox):                    # preempted with requests routed to it: back to the router
        rep.inbox.remove(job)
        rep.ongoing -= 1
        pool.dispatch(job, first=True)
    pool.left_service(rep)


def start_up(env: simpy.Environment, pool, rep: Replica, warm: bool):
    """The start-up phases (none when `warm`); False when the replica was stopped during them."""
    for _phase, seconds in ([] if warm else pool.startup_for(rep)):
        try:
            yield env.timeout(seconds)
        except simpy.Interrupt:                   # stopped while starting
            pool.replica_stopped(rep)
            return False
    pool.replica_ready(rep)
    return True


def next_request(env: simpy.Environment, pool, rep: Replica):
    """The replica's next request: one routed to it, else what it takes from the router's queue
    (`pool.take_queued`; not for a stopping replica), else the one handed over after waiting idle;
    None when interrupted while idle (it holds no request)."""
    if rep.inbox:
        return rep.inbox.popleft()
    job = None if rep.stop_requested else pool.take_queued(rep)
    if job is not None:
        return job
    rep.wake = env.event()
    pool.idle.append(rep)
    try:
        yield rep.wake
    except simpy.Interrupt:
        return None
    return rep.inbox.popleft()


def serve(env: simpy.Environment, pool, rep: Replica, job):
    """Hold one request: service, then the return of its result (`pool.return_s`); it may end first by the
    endpoint's timeout, a spot preemption or a graceful stop running out. Returns how it ended."""
    now = env.now
    if now - job.submitted >= pool.timeout_s:       # dropped by the endpoint while waiting
        rep.ongoing -= 1
        pool.slot_freed(rep)
        pool.policy.on_load_change()
        pool.fail(job, pool.timeout_error)
        return DROPPED
    pool.mark_cold_start_on_service(job, rep)
    service = pool.sample(job.case, in_system=pool.in_system, busy=pool.busy + 1, first=job.cold_start, job=job)
    rep.served += 1
    job.started, job.service_s = now, service
    held = service + pool.return_s(job.case, job)        # the replica holds the request while its result travels back
    rep.busy = True
    pool.busy += 1
    outcome, ends = planned_end(rep, job, now, held, pool.timeout_s)
    killed_by = None
    try:
        yield env.timeout(held if ends is None else ends - now)
    except simpy.Interrupt as stop:                 # killed: graceful stop ran out of time (the cause says so)
        outcome, killed_by = KILLED, stop.cause
    # (each sum as the replica's time holding the request: service + return, the time to the limit, or to now)
    pool.busy_s += held if outcome == DONE else (ends - now if outcome == TIMEOUT else env.now - now)
    pool.busy -= 1
    rep.busy = False
    rep.ongoing -= 1
    pool.slot_freed(rep)
    settle(env, pool, rep, job, outcome, killed_by)
    return outcome


def planned_end(rep: Replica, job, now: float, held: float, timeout_s: float) -> tuple[str, float | None]:
    """What ends the request first, known when it starts: a preemption, the endpoint's timeout, or its end."""
    limit = job.submitted + timeout_s
    if rep.preempt_at < now + held and rep.preempt_at < limit:
        return PREEMPTED, rep.preempt_at
    if now + held > limit:
        return TIMEOUT, limit
    return DONE, None


def settle(env: simpy.Environment, pool, rep: Replica, job, outcome: str, killed_by: str | None) -> None:
    """Record how the request ended; a preempted one goes back to the head of the queue (nothing lost)."""
    if outcome == PREEMPTED:
        pool.preemptions += 1
        pool.ledger.retried += 1
        job.retries += 1
        job.started = job.service_s = None
        pool.dispatch(job, first=True)
        return
    if outcome == DONE:
        pool.ledger.complete(job, env.now, rep.label)
    elif outcome == TIMEOUT:
        pool.fail(job, pool.timeout_error)
    else:
        pool.fail(job, killed_by)
    pool.policy.on_load_change()


def preemptor(env: simpy.Environment, pool, rep: Replica):
    """A spot preemption of an idle replica (a busy one checks its own preempt_at)."""
    yield env.timeout(rep.preempt_at - env.now)
    pool.interrupt_if_idle(rep, "preempt")
