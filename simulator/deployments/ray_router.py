"""Ray Serve 2.60's request router in front of a deployment's replicas: when a request that found every
replica full reaches one whose slot has freed. From ray/serve/_private/request_router/request_router.py
(RequestRouter, FIFOMixin), pow_2_router.py and router.py; constants from _private/constants.py.

- A request no replica can take waits in the router, oldest first (`_pending_requests_to_fulfill`; here
  the pool's `queue`, which the autoscaler counts as queued).
- Routing tasks (`_fulfill_pending_requests`) do the routing: at most min(pending requests,
  `max_num_routing_tasks` = min(50, 2 x replicas)) of them; each takes the next request not yet taken
  (`_get_next_pending_request_to_route`) and tries: two random replicas
  (PowerOfTwoChoicesRequestRouter.choose_replicas), the one with fewer ongoing requests below
  `max_ongoing_requests` (`_select_from_candidate_replicas`: the queue-length cache; a full entry is
  probed, which answers the replica's own count). A replica found goes to the *oldest* waiting request
  (FIFOMixin._fulfill_next_pending_request), whose own task, when another, is cancelled.
- A failed try is tried again at once the first time, then after a backoff of 0.025 x 2^k s, at most
  0.5 s (`_choose_replicas_with_backoff`, `_compute_backoff_s`); the backoff step also follows a try that
  served another task's request. Nothing wakes a task in its backoff when a slot frees: the slot's end
  only updates the cache (`decrement_queue_len_cache`, a done-callback), and `_replicas_updated_event` is
  awaited only while the router has no replica. So the waiting request is sent at the next try of any
  task, not when the slot frees — the hand-off this module adds to an instant one.
- A new request and a new set of replicas start tasks (`_maybe_start_routing_tasks`, from
  `_choose_replica_for_request` and `update_replicas`), whose first try is at once; a task that ends
  (its request served, cancelled) starts replacements while requests remain untaken.

- Which of the two candidates (`_select_from_candidate_replicas`): the router keeps a queue-length cache
  (`ReplicaQueueLengthCache`, entries stale after 10 s; +1 on a send, -1 when a request ends if the
  entry is still fresh). A candidate with a fresh entry below the limit is taken without asking, the
  lower first, the first drawn on a tie; the others (no fresh entry, or full) are probed in the
  background. Only when no fresh entry is free are they probed and the lower free one taken. So a
  replica idle for over 10 s, or new, loses to one that served lately: two free replicas are a coin only
  when both entries are fresh.

The router reaches its pool only through `queue`, `active`, `idle`, `give` and `max_ongoing`.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import simpy

# ray/serve/_private/constants.py
ROUTER_RETRY_INITIAL_BACKOFF_S = 0.025   # RAY_SERVE_ROUTER_RETRY_INITIAL_BACKOFF_S
ROUTER_RETRY_BACKOFF_MULTIPLIER = 2      # RAY_SERVE_ROUTER_RETRY_BACKOFF_MULTIPLIER
ROUTER_RETRY_MAX_BACKOFF_S = 0.5         # RAY_SERVE_ROUTER_RETRY_MAX_BACKOFF_S
MAX_NUM_ROUTING_TASKS_CAP = 50           # RequestRouter.max_num_routing_tasks_cap
QUEUE_LENGTH_CACHE_TIMEOUT_S = 10.0      # RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S


@dataclass(frozen=True)
class RouterBackoff:
    """The router's retry schedule (Ray's environment settings above, its defaults)."""

    initial_backoff_s: float = ROUTER_RETRY_INITIAL_BACKOFF_S
    backoff_multiplier: float = ROUTER_RETRY_BACKOFF_MULTIPLIER
    max_backoff_s: float = ROUTER_RETRY_MAX_BACKOFF_S
    max_tasks_cap: int = MAX_NUM_ROUTING_TASKS_CAP

    def backoff_s(self, attempt: int) -> float:
        """The sleep before try `attempt` + 2 (RequestRouter._compute_backoff_s: 0-indexed retries)."""
        try:
            return min(self.initial_backoff_s * (self.backoff_multiplier ** attempt), self.max_backoff_s)
        except OverflowError:
            return self.max_backoff_s


RAY_DEFAULT_BACKOFF = RouterBackoff()


class QueueLenCache:
    """The router's queue-length cache (request_router/common.py `ReplicaQueueLengthCache`, updated as
    RequestRouter.on_send_request, decrement_queue_len_cache and the probes do), on the simulation clock."""

    def __init__(self, env: simpy.Environment, timeout_s: float = QUEUE_LENGTH_CACHE_TIMEOUT_S):
        self.env, self.timeout_s = env, timeout_s
        self.entries: dict[int, tuple[int, float]] = {}   # replica id -> (queue length, when updated)

    def get(self, rid: int) -> int | None:
        entry = self.entries.get(rid)
        if entry is None or self.env.now - entry[1] > self.timeout_s:
            return None
        return entry[0]

    def update(self, rid: int, queue_len: int) -> None:
        self.entries[rid] = (queue_len, self.env.now)

    def sent(self, rid: int) -> None:
        self.update(rid, (self.get(rid) or 0) + 1)

    def done(self, rid: int) -> None:
        current = self.get(rid)
        if current is not None:                   # a stale entry stays stale
            self.update(rid, max(0, current - 1))


class RayRouter:
    """The handle's router for one pool: `submit` a request; `replicas_changed` when a replica becomes
    routable or stops being so. `rng` draws the two candidates (and their order) as Ray's `random` does."""

    def __init__(self, env: simpy.Environment, pool, backoff: RouterBackoff | None = None,
                 rng: random.Random | None = None):
        self.env, self.pool = env, pool
        self.backoff = backoff or RouterBackoff()
        self.rng = rng or random.Random(0)
        self.to_route: deque = deque()        # waiting and maybe not yet taken by a task (lazily cleaned)
        self.waiting: set[int] = set()        # id() of the requests in the pool's queue
        self.updated = env.event()            # `_replicas_updated_event`: a task with no replica waits on it
        self.tasks: set = set()               # the routing tasks' processes
        self.owner: dict[int, object] = {}    # id(request) -> the task routing it
        self.cache = QueueLenCache(env)

    # -- what the pool calls -----------------------------------------------------------------------
    def submit(self, job, first: bool = False) -> None:
        """A request to route (`first`: one given back, to the head: Ray inserts a retry by its age)."""
        if first:
            self.pool.queue.appendleft(job)
            self.to_route.appendleft(job)
        else:
            self.pool.queue.append(job)
            self.to_route.append(job)
        self.waiting.add(id(job))
        self.maybe_start_tasks()

    def slot_freed(self, rep) -> None:
        """A request ended on `rep` (the done-callback of its result)."""
        self.cache.done(rep.id)

    def replicas_changed(self) -> None:
        """RequestRouter.update_replicas: more replicas allow more tasks (fresh ones try at once); a task
        waiting for any replica tries again; the cache forgets replicas no longer routable."""
        routable = {r.id for r in self.replicas()}
        self.cache.entries = {rid: e for rid, e in self.cache.entries.items() if rid in routable}
        if not self.updated.triggered:
            self.updated.succeed()
        self.updated = self.env.event()
        self.maybe_start_tasks()

    def withdraw(self, job) -> None:
        """A request the pool took back from its queue before any replica got it: its task is cancelled."""
        self.waiting.discard(id(job))
        owner = self.owner.pop(id(job), None)
        if owner is not None:
            self.cancel(owner)

    def next_to_route(self):
        """RequestRouter._get_next_pending_request_to_route: the oldest untaken request still waiting."""
        while self.to_route:
            job = self.to_route.popleft()
            if id(job) in self.waiting:
                return job
        return None

    # -- Ray's task count ----------------------------------------------------------------------------
    def replicas(self) -> list:
        return [r for r in self.pool.active if r.routable]

    def target_tasks(self) -> int:
        """RequestRouter.target_num_routing_tasks: min(pending, min(cap, 2 x replicas))."""
        return min(len(self.pool.queue), min(self.backoff.max_tasks_cap, 2 * len(self.replicas())))

    def maybe_start_tasks(self) -> None:
        """RequestRouter._maybe_start_routing_tasks: enough tasks for the pending requests."""
        for _ in range(self.target_tasks() - len(self.tasks)):
            self.tasks.add(self.env.process(self.routing_task()))

    # -- one task ------------------------------------------------------------------------------------
    def routing_task(self):
        """RequestRouter._fulfill_pending_requests: route requests while the task count allows."""
        me = self.env.active_process
        try:
            while len(self.tasks) <= self.target_tasks():
                job = self.next_to_route()
                if job is None:
                    break
                self.owner[id(job)] = me
                yield from self.route(job, me)
        except simpy.Interrupt:               # cancelled: another task gave its request a replica
            pass
        finally:
            self.tasks.discard(me)
            if self.to_route:
                self.maybe_start_tasks()

    def route(self, job, me):
        """Try until `job` has a replica: a try that finds one serves the oldest waiting request; after
        a failed (or another's) try, no sleep the first time, then the backoff (`_choose_replicas_with_backoff`)."""
        attempt, entered_backoff = 0, False
        while True:
            while not self.replicas():
                yield self.updated
            rep = self.choose()
            if rep is not None:
                self.fulfill_oldest(rep, me)
                if id(job) not in self.waiting:
                    return
            if not entered_backoff:
                entered_backoff = True
            else:
                yield self.env.timeout(self.backoff.backoff_s(attempt))
                attempt += 1

    def choose(self):
        """One try: two random routable replicas and `select`'s pick of them, else None. A mechanics replay
        takes the run's own choice where it can."""
        replicas = self.replicas()
        own = self.measured_choice(replicas)
        if own is not None:
            return own
        return self.select(self.rng.sample(replicas, min(2, len(replicas))))

    def select(self, pair: list):
        """RequestRouter._select_from_candidate_replicas with the cache: a fresh free entry wins without a
        probe (the others probed in the background), else the probed replicas' lower free one."""
        limit = self.pool.max_ongoing
        cached, probed = [], []                    # (queue length, draw order, replica)
        for i, r in enumerate(pair):
            q = self.cache.get(r.id)
            if q is not None and q < limit:
                cached.append((q, i, r))
            else:                                  # a probe answers the replica's own count
                self.cache.update(r.id, r.ongoing)
                probed.append((r.ongoing, i, r))
        free = cached or [x for x in probed if x[0] < limit]
        return min(free, key=lambda x: x[:2])[2] if free else None

    def measured_choice(self, replicas: list):
        """A mechanics replay: the replica that served the oldest waiting request in the run, when it is
        routable with a free slot (else Ray's draw). Between free replicas Ray's pick is a coin; a replay
        that flipped it otherwise would give the request's busy time to another replica, and when that one
        stops the router drops its series, so the controller's mean (from the series' first change) moves:
        the demo's 3rd scale-up came 3 s early in every grid phase."""
        own = getattr(self.pool.queue[0], "measured_replica", None) if self.pool.queue else None
        for rep in replicas:
            if rep.id == own and rep.ongoing < self.pool.max_ongoing:
                return rep
        return None

    def fulfill_oldest(self, rep, me) -> None:
        """FIFOMixin._fulfill_next_pending_request: the replica goes to the oldest waiting request; the
        task routing that one, when another, is cancelled."""
        job = self.pool.queue.popleft()
        self.waiting.discard(id(job))
        owner = self.owner.pop(id(job), None)
        if owner is not None and owner is not me:
            self.cancel(owner)
        if rep in self.pool.idle:
            self.pool.idle.remove(rep)
        self.cache.sent(rep.id)
        self.pool.give(rep, job)

    def cancel(self, task) -> None:
        if task.is_alive and task is not self.env.active_process:
            task.interrupt("cancelled")
