"""The `ray-serve` policy: Ray Serve 2.60's request-based autoscaler, from its source
(ray/serve/autoscaling_policy.py, _private/autoscaling_state.py, _private/router.py,
_private/autoscaling_metrics_merge.py, _private/deployment_state.py; constants in _private/constants.py).

What the model reproduces:
- The handle's router counts queued requests (held: no replica with a free slot, or none running) and
  each replica's ongoing requests (sent, not answered); it records them every
  min(0.2 x look_back_period_s, metrics_interval_s) and pushes the points of the last look_back_period_s
  to the controller every `metrics_interval_s` (default 10 s), and at once when a request is queued
  while no replica runs. The router exists from the first request (a fresh router pushes its current
  count: Ray uses the current value when it has no recorded point). A router learns the deployment's
  config by long poll (Router.update_deployment_config): until then it neither records, pushes, nor
  takes the push-at-zero path, and on learning it starts the pusher and pushes at once when requests wait
  at zero replicas. That lag is `config_delay_s` (0 unless a calibration run measured it).
- Every control-loop period (CONTROL_LOOP_INTERVAL_S = 0.1 s) the controller merges the last pushed
  series (queued + ongoing of RUNNING replicas) into one step function and takes its time-weighted mean
  from the latest first point of the series to now (the last value held to now); desired =
  running x total / (target_ongoing_requests x running); up/down scaling factors; a decision to go up
  or down waits `upscale_delay_s` / `downscale_delay_s` (1 -> 0: `downscale_to_zero_delay_s`), the
  timestamp resetting when the direction changes; from 0 running replicas any request scales up at once
  (max(ceil(upscaling_factor), target)); the result is clamped to [min_replicas, max_replicas].
- The deployment (simulator/deployments/ray_serve.py) then starts replicas (each RUNNING after the
  start-up time) or stops them: starting ones first, then the newest running; a stopping replica takes
  no request, finishes what it holds and stops at the next graceful-shutdown check (every
  graceful_shutdown_wait_loop_s = 2 s, at most graceful_shutdown_timeout_s = 20 s). A replica serves at
  most `max_ongoing_requests` at once (the router holds the rest), one at a time here (the app runs one
  pipeline call at a time).

The router's gauges and the controller's merge of them are simulator/autoscaling/ray_serve_metrics.py,
the settings simulator/autoscaling/ray_serve_config.py; this module holds the decision and the timing of
pushes and control-loop ticks.

The control loop is simulated exactly on its 0.1 s grid but event by event: between two changes of
its inputs (a push, a replica becoming RUNNING or stopping) the mean moves monotonically toward the last
value, so the next tick where the decision or a delay timestamp changes is found by search instead of
stepping through every tick.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter

from simulator.autoscaling.base_policy import AutoscalingPolicy
from simulator.autoscaling.ray_serve_config import RayServeConfig, ray_defaults  # noqa: F401 - re-exported
from simulator.autoscaling.ray_serve_metrics import RouterMetrics, TotalRequests

DELAY_EPS_S = 1e-6                     # _DELAY_ELAPSED_EPS_S in autoscaling_policy.py
NO_CHANGE_HORIZON_TICKS = 864_000      # look at most a day ahead before waiting for an input change
NONE_LATE: Counter = Counter()          # no request counted after its slot (read only: a miss is 0)


# -- the policy (autoscaling_policy.py) ------------------------------------------------------------
def scaled_desired(desired: float, current: int, cfg: RayServeConfig) -> int:
    """_apply_scaling_factors."""
    if current == 0:
        return math.ceil(desired)
    delta = desired - current
    factor = cfg.upscaling if delta > 0 else cfg.downscaling
    scaled = math.ceil(current + factor * delta)
    if math.ceil(float(desired)) < current and scaled == current:
        scaled -= 1
    return scaled


def decide(total: float, current: int, target: int, counter: int, since: float | None, now: float,
           cfg: RayServeConfig) -> tuple[int, int, float | None]:
    """One control-loop decision: (bounded decision, decision counter, decision timestamp), as
    get_decision_num_replicas -> the wrapped default policy -> apply_bounds."""
    if current == 0 and total > 0:                                     # cold start fast path
        decision = max(math.ceil(1 * cfg.upscaling), target)
    else:
        desired = target if current == 0 else current * (total / (cfg.target_ongoing_requests * current))
        desired = scaled_desired(desired, current, cfg)
        if current == 0 and desired > 0:                               # no delay from zero running
            decision = desired
        else:
            decision, counter, since = delay(max(0, desired), target, counter, since, now, cfg)
    return max(cfg.min_replicas, min(cfg.max_replicas, math.ceil(decision))), counter, since


def delay(desired: int, target: int, counter: int, since: float | None, now: float,
          cfg: RayServeConfig) -> tuple[int, int, float | None]:
    """_apply_delay_logic: wall-clock delays, the timestamp reset when the direction changes."""
    decision = target
    if desired > target:
        if counter < 0:
            counter, since = 0, None
        counter += 1
        if since is None:
            since = now
        if now - since + DELAY_EPS_S >= cfg.upscale_delay_s:
            counter, since, decision = 0, None, desired
    elif desired < target:
        if counter > 0:
            counter, since = 0, None
        counter -= 1
        if target == 1:
            wait = cfg.downscale_to_zero_delay_s if cfg.downscale_to_zero_delay_s is not None else cfg.downscale_delay_s
        else:
            wait = cfg.downscale_delay_s
            desired = max(1, desired)
        if since is None:
            since = now
        if now - since + DELAY_EPS_S >= wait:
            counter, since, decision = 0, None, desired
    else:
        counter, since = 0, None
    return decision, counter, since


class RayServePolicy(AutoscalingPolicy):
    """`initial_running` replicas are RUNNING at t=0 (a replay that starts with warm replicas) and the
    router already exists when `router_at_start`. A router created by a request learns the deployment's
    config `config_delay_s` later (its first push, the push-at-zero, comes then)."""

    name = "ray-serve"

    def __init__(self, config: RayServeConfig, initial_running: int = 0, router_at_start: bool = False,
                 config_delay_s: float = 0.0, grid_lag_s: float = 0.0):
        config.check()
        if config_delay_s < 0 or grid_lag_s < 0:
            raise ValueError("Ray Serve: config_delay_s and grid_lag_s must be >= 0")
        self.grid_lag_s = grid_lag_s            # the record and push grids' lag after their first point
        self.config = config
        self.initial_running = initial_running
        self.router_at_start = router_at_start
        self.config_delay_s = config_delay_s
        self.config_known = False               # the router has the deployment config (pushes allowed)
        self.router: RouterMetrics | None = None
        self.sent: dict[int, int] = {}          # the router's ongoing count per replica (keys pruned as Ray does)
        self.report_series: list[list[tuple[float, float]]] = []
        self.report_keys: dict[int, list[tuple[float, float]]] = {}
        self.counter, self.since = 0, None
        self.decisions: list[tuple[float, int, float]] = []    # (t, decision, total) whenever the target changed
        self.inputs_changed = None
        self.push_wakeup = None
        self.next_push_at: float | None = None    # the pusher's next push (None: idle, waiting for load)
        # (t, the controller's inputs from t on) at every push and replica change, kept only when asked
        # (a validation compares the autoscaler's input with the one Ray reported; a month would be long)
        self.record_totals = False
        self.totals: list[tuple[float, TotalRequests]] = []
        # requests the handle still counts after their replica's slot freed: (replica id, until)
        self.counted_after: list[tuple[int, float]] = []

    # -- wiring -------------------------------------------------------------------------------------
    def attach(self, pool) -> None:
        self.pool = pool
        env = pool.env
        cfg = self.config
        self.inputs_changed = env.event()
        self.push_wakeup = env.event()
        target = cfg.initial_replicas if cfg.initial_replicas is not None else cfg.min_replicas
        target = max(cfg.min_replicas, min(cfg.max_replicas, max(target, self.initial_running)))
        pool.target = target
        for i in range(target):
            pool.start_replica(warm=i < self.initial_running)   # a replay may begin with replicas running
        if self.router_at_start:
            self.router = self._new_router(0.0)
            self.config_known = True
            env.process(self.pusher())
        env.process(self.control_loop())

    def on_arrival(self, job) -> None:
        if self.router is None:                 # the handle's router is created by its first request
            env = self.pool.env
            # its record grid and pusher start when it has the config; its gauges count from now
            self.router = self._new_router(env.now + self.config_delay_s)
            self._record()
            env.process(self.learn_config())

    def _new_router(self, created_at: float) -> RouterMetrics:
        cfg = self.config
        return RouterMetrics(created_at, cfg.look_back_period_s, cfg.metrics_interval_s, cfg.record_interval_s,
                             self.grid_lag_s)

    def learn_config(self):
        """update_deployment_config: the pusher starts (its first push at once, which is also the push at
        zero replicas when requests wait)."""
        if self.config_delay_s > 0:
            yield self.pool.env.timeout(self.config_delay_s)
        self.config_known = True
        yield from self.pusher()

    def on_queued(self, job) -> None:
        self._record()
        if not self.pool.running and self.config_known:   # Ray pushes at once when a request waits at zero
            self.push()

    def on_load_change(self) -> None:
        self._record()

    def on_replica_change(self, replica) -> None:
        # the router forgets replicas that are neither running nor holding requests
        running = {r.id for r in self.pool.running}
        self.sent = {rid: n for rid, n in self.sent.items() if n or rid in running}
        self._record()
        self._wake_controller()

    def count_after_slot(self, replica_id: int, seconds: float) -> None:
        """Keep a request in the router's gauge `seconds` after its replica's slot freed: the router sends
        the next request once the replica says its method returned, but counts this one until its result
        is back at the handle (`_process_finished_request`)."""
        env = self.pool.env
        self.counted_after.append((replica_id, env.now + seconds))

        def release():
            yield env.timeout(seconds)
            self._record()
        env.process(release())

    def _record(self) -> None:
        if self.router is None:
            return
        pool = self.pool
        late = NONE_LATE
        if self.counted_after:      # only a replay with the handle's lag: _record is the policy's hot path
            now = pool.env.now
            self.counted_after = [(rid, t) for rid, t in self.counted_after if t > now + 1e-9]
            late = Counter(rid for rid, _ in self.counted_after)
        for r in pool.active:
            if r.ongoing or late[r.id] or r.id in self.sent:
                self.sent[r.id] = r.ongoing + late[r.id]
        for rid in list(self.sent):
            if not any(r.id == rid for r in pool.active):
                self.sent[rid] = late[rid]
        self.router.change(pool.env.now, len(pool.queue), self.sent)
        if (len(pool.queue) or any(self.sent.values())) and not self.push_wakeup.triggered:
            self.push_wakeup.succeed()

    # -- the router's pushes --------------------------------------------------------------------------
    def push(self) -> None:
        queued, running = self.router.report(self.pool.env.now)
        self.report_series = [queued]
        self.report_keys = running
        self._wake_controller()

    def _idle_report(self) -> bool:
        """Whether the last push held only zeros (then the controller's total is 0, whatever the times)."""
        series = list(self.report_series) + list(self.report_keys.values())
        return all(v == 0 for s in series for _, v in s)

    def pusher(self):
        """A push at the router's creation, then every metrics_interval_s on a grid `grid_lag_s` late (see
        RouterMetrics); while the router has been idle for a whole look-back window the pushes would repeat
        zeros, so it sleeps until it is busy again."""
        env, cfg = self.pool.env, self.config
        created = self.router.created_at
        origin = created + self.grid_lag_s % cfg.metrics_interval_s
        k = 0
        while True:
            self.push()
            k += 1
            self.next_push_at = origin + k * cfg.metrics_interval_s
            yield env.timeout(self.next_push_at - env.now)
            quiet_since = self._quiet_since()
            if quiet_since is not None and env.now - quiet_since > cfg.look_back_period_s + cfg.metrics_interval_s \
                    and self._idle_report():
                self.next_push_at = None
                self.push_wakeup = env.event()
                yield self.push_wakeup
                k = max(1, math.ceil((env.now - origin) / cfg.metrics_interval_s))
                self.next_push_at = origin + k * cfg.metrics_interval_s
                yield env.timeout(self.next_push_at - env.now)

    def _quiet_since(self) -> float | None:
        """Since when the router has held nothing (None: it holds requests now)."""
        if self.pool.queue or any(self.sent.values()):
            return None
        for t, (q, sent) in zip(reversed(self.router.times), reversed(self.router.states), strict=True):
            if q or any(sent.values()):
                return t
        return self.router.times[0] if self.router.times else self.router.created_at

    # -- the controller -----------------------------------------------------------------------------
    def _wake_controller(self) -> None:
        if self.record_totals:
            self.totals.append((self.pool.env.now, self._total()))
        if self.inputs_changed is not None and not self.inputs_changed.triggered:
            self.inputs_changed.succeed()

    def _total(self) -> TotalRequests:
        running = {r.id for r in self.pool.running}
        series = list(self.report_series) + [s for rid, s in self.report_keys.items() if rid in running]
        return TotalRequests(series)

    def totals_at(self, times: list[float]) -> list[float]:
        """The controller's total at each time, as Ray's `get_total_num_requests` would have answered then
        (needs `record_totals` from the start; 0 before the first push)."""
        changed = [t for t, _ in self.totals]
        out = []
        for t in times:
            k = bisect.bisect_right(changed, t) - 1
            out.append(self.totals[k][1].at(t) if k >= 0 else 0.0)
        return out

    def control_loop(self):
        env, cfg, pool = self.pool.env, self.config, self.pool
        period = cfg.control_loop_interval_s
        tick = 0
        while True:
            now = tick * period
            if env.now < now:
                yield env.timeout(now - env.now)
            self.inputs_changed = env.event()
            total = self._total()
            current = len(pool.running)
            decision, self.counter, self.since = decide(total.at(now), current, pool.target, self.counter,
                                                        self.since, now, cfg)
            if decision != pool.target:
                self.decisions.append((now, decision, total.at(now)))
                self.apply(decision)
                tick += 1
                continue                          # the replicas changed: look again at the next tick
            nxt = self._next_change(tick, total, current)
            wait = [self.inputs_changed]
            if nxt is not None:
                wait.append(env.timeout(nxt * period - env.now))
            yield env.any_of(wait)
            if self.inputs_changed.triggered:
                tick = max(tick + 1, math.floor(env.now / period + 1e-9) + 1)
            else:
                tick = nxt

    def _next_change(self, tick: int, total: TotalRequests, current: int) -> int | None:
        """The first later tick whose decision changes the target or the delay state, inputs unchanged."""
        cfg, period, target = self.config, self.config.control_loop_interval_s, self.pool.target
        state = (self.counter > 0) - (self.counter < 0), self.since

        def changes(k: int) -> bool:
            t = k * period
            d, c, s = decide(total.at(t), current, target, self.counter, self.since, t, cfg)
            return d != target or ((c > 0) - (c < 0), s) != state

        # no need to look past the next push: the controller looks again then
        horizon = NO_CHANGE_HORIZON_TICKS
        if self.next_push_at is not None:
            horizon = max(1, math.ceil(self.next_push_at / period) + 1 - tick)
        lo, step = tick, 1
        while step <= horizon:
            if changes(tick + step):
                hi = tick + step
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if changes(mid):
                        hi = mid
                    else:
                        lo = mid
                return hi
            lo = tick + step
            step = min(step * 2, horizon) if step < horizon else horizon + 1
        return tick + horizon

    def apply(self, decision: int) -> None:
        """DeploymentState reconciling to the decision: start replicas up to it, or stop the surplus (the
        deployment picks which: `RayServeDeployment.replicas_to_stop`)."""
        pool = self.pool
        pool.set_target(decision)
        staying = pool.staying
        if decision > staying:
            for _ in range(decision - staying):
                pool.start_replica()
        elif decision < staying:
            pool.stop_replicas(staying - decision, target=decision)
