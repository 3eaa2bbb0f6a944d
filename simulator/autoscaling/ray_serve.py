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
- The deployment then starts replicas (each RUNNING after the start-up time) or stops them: starting
  ones first, then the newest running; a stopping replica takes no request, finishes what it holds and
  stops at the next graceful-shutdown check (every graceful_shutdown_wait_loop_s = 2 s, at most
  graceful_shutdown_timeout_s = 20 s). A replica serves at most `max_ongoing_requests` at once (the
  router holds the rest), one at a time here (the app runs one pipeline call at a time).

The control loop is simulated exactly on its 0.1 s grid but event by event: between two changes of
its inputs (a push, a replica becoming RUNNING or stopping) the mean moves monotonically toward the last
value, so the next tick where the decision or a delay timestamp changes is found by search instead of
stepping through every tick.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from simulator.autoscaling.base_policy import AutoscalingPolicy

CONTROL_LOOP_INTERVAL_S = 0.1          # ray/serve/_private/constants.py (RAY_SERVE_CONTROL_LOOP_INTERVAL_S)
RECORD_INTERVAL_FACTOR = 0.2           # RAY_SERVE_AUTOSCALING_METRIC_RECORD_INTERVAL_FACTOR
DELAY_EPS_S = 1e-6                     # _DELAY_ELAPSED_EPS_S in autoscaling_policy.py
NO_CHANGE_HORIZON_TICKS = 864_000      # look at most a day ahead before waiting for an input change


@dataclass
class RayServeConfig:
    """Ray Serve 2.60's AutoscalingConfig and the deployment options the model uses, with their defaults."""

    min_replicas: int = 1
    max_replicas: int = 1
    initial_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    max_ongoing_requests: int = 5
    upscale_delay_s: float = 30.0
    downscale_delay_s: float = 600.0
    downscale_to_zero_delay_s: float | None = None
    look_back_period_s: float = 30.0
    metrics_interval_s: float = 10.0
    upscaling_factor: float | None = None
    downscaling_factor: float | None = None
    smoothing_factor: float = 1.0
    graceful_shutdown_wait_loop_s: float = 2.0
    graceful_shutdown_timeout_s: float = 20.0
    control_loop_interval_s: float = CONTROL_LOOP_INTERVAL_S

    @classmethod
    def from_dict(cls, settings: dict) -> RayServeConfig:
        """From a report's `config.server.autoscaling` (Ray's field names); unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown Ray Serve autoscaling setting(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in settings.items() if v is not None or k in ("downscale_to_zero_delay_s",
                                                                                   "initial_replicas")})

    def check(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError("Ray Serve: need 0 <= min_replicas <= max_replicas, max_replicas >= 1")
        if self.target_ongoing_requests <= 0 or self.max_ongoing_requests < 1:
            raise ValueError("Ray Serve: target_ongoing_requests > 0 and max_ongoing_requests >= 1")
        if self.look_back_period_s <= 0 or self.metrics_interval_s <= 0 or self.control_loop_interval_s <= 0:
            raise ValueError("Ray Serve: look_back_period_s, metrics_interval_s and the control period must be > 0")

    @property
    def upscaling(self) -> float:
        return self.upscaling_factor or self.smoothing_factor

    @property
    def downscaling(self) -> float:
        return self.downscaling_factor or self.smoothing_factor

    @property
    def record_interval_s(self) -> float:
        return min(self.look_back_period_s * RECORD_INTERVAL_FACTOR, self.metrics_interval_s)


# -- the controller's aggregation (autoscaling_metrics_merge.py, exact semantics) ------------------
def _round_10ms(t: float) -> float:
    return math.floor(t * 100.0 + 0.5) / 100.0


def merge_instantaneous_total(series: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Sum right-continuous gauges into one step function: with one source, the source itself; else
    each source's change points (baseline 0) at 10 ms-rounded times, summed, cumulated."""
    active = [s for s in series if s]
    if not active:
        return []
    if len(active) == 1:
        return list(active[0])
    deltas: dict[float, float] = {}
    for s in active:
        prev = 0.0
        for t, v in s:
            if v != prev:
                key = _round_10ms(t)
                deltas[key] = deltas.get(key, 0.0) + (v - prev)
            prev = v
    total, out = 0.0, []
    for t in sorted(deltas):
        total += deltas[t]
        out.append((t, total))
    return out


class TotalRequests:
    """The controller's total (queued + ongoing) from one set of series, as a function of `now`:
    time-weighted mean of the merged step function over [window start, now], last value held to now."""

    def __init__(self, series: list[list[tuple[float, float]]]):
        merged = merge_instantaneous_total(series)
        self.empty = not merged
        if self.empty:
            return
        non_empty = [s for s in series if s]
        ws = merged[0][0]
        if len(non_empty) > 1:
            aligned = max(s[0][0] for s in non_empty)
            if aligned <= merged[-1][0]:
                ws = max(aligned, merged[0][0])
        self.ws = ws
        self.t_last, self.v_last = merged[-1]
        # integral of the step function from ws to t_last (LOCF: a value holds from its point to the next)
        area = 0.0
        times = [t for t, _ in merged]
        i = bisect.bisect_right(times, ws) - 1
        value = merged[i][1] if i >= 0 else 0.0
        t = ws
        for tj, vj in merged[i + 1:]:
            if tj > t:
                area += value * (tj - t)
                t = tj
            value = vj
        self.area = area if self.t_last > ws else 0.0

    def at(self, now: float) -> float:
        if self.empty:
            return 0.0
        last_window = now - self.t_last
        if last_window <= 0:
            last_window = 1e-3
        end = self.t_last + last_window
        if end <= self.ws:
            return 0.0
        if self.t_last <= self.ws:                 # the window starts at (or after) the last point
            return self.v_last
        return (self.area + self.v_last * (end - self.t_last)) / (end - self.ws)


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


# -- the handle's router metrics (router.py) --------------------------------------------------------
class RouterMetrics:
    """The router's gauges over time (queued, ongoing per replica), sampled lazily on the record grid
    when a report is pushed."""

    def __init__(self, cfg: RayServeConfig, created_at: float):
        self.cfg, self.created_at = cfg, created_at
        self.times: list[float] = []
        self.states: list[tuple[int, dict[int, int]]] = []    # (queued, {replica: ongoing}) from each time on

    def change(self, now: float, queued: int, sent: dict[int, int]) -> None:
        if self.times and self.times[-1] == now:
            self.states[-1] = (queued, dict(sent))
        else:
            self.times.append(now)
            self.states.append((queued, dict(sent)))
        # keep one state before the look-back window of the next push
        keep = now - self.cfg.look_back_period_s - self.cfg.metrics_interval_s - self.cfg.record_interval_s
        cut = bisect.bisect_right(self.times, keep) - 1
        if cut > 0:
            del self.times[:cut]
            del self.states[:cut]

    def state_at(self, t: float) -> tuple[int, dict[int, int]]:
        i = bisect.bisect_right(self.times, t) - 1
        return self.states[i] if i >= 0 else (0, {})

    def report(self, now: float) -> tuple[list[tuple[float, float]], dict[int, list[tuple[float, float]]]]:
        """What a push at `now` sends: the recorded points of the last look_back_period_s (recorded every
        record interval since the router was created; a key with none sends its current value)."""
        rec = self.cfg.record_interval_s
        start = now - self.cfg.look_back_period_s
        first = max(0, math.floor((start - self.created_at) / rec) + 1)
        last = math.floor((now - self.created_at) / rec + 1e-9)
        queued: list[tuple[float, float]] = []
        running: dict[int, list[tuple[float, float]]] = {}
        for k in range(first, last + 1):
            g = self.created_at + k * rec
            if g <= start:
                continue
            q, sent = self.state_at(g)
            queued.append((g, float(q)))
            for rid, n in sent.items():
                running.setdefault(rid, []).append((g, float(n)))
        q_now, sent_now = self.state_at(now)
        if not queued:
            queued = [(now, float(q_now))]
        for rid, n in sent_now.items():
            if rid not in running:
                running[rid] = [(now, float(n))]
        # keys no longer in the router's dict are pruned: only those it holds now are reported
        return queued, {rid: s for rid, s in running.items() if rid in sent_now}


class RayServePolicy(AutoscalingPolicy):
    """`initial_running` replicas are RUNNING at t=0 (a replay that starts with warm replicas) and the
    router already exists when `router_at_start`. A router created by a request learns the deployment's
    config `config_delay_s` later (its first push, the push-at-zero, comes then)."""

    name = "ray-serve"

    def __init__(self, config: RayServeConfig, initial_running: int = 0, router_at_start: bool = False,
                 config_delay_s: float = 0.0):
        config.check()
        if config_delay_s < 0:
            raise ValueError("Ray Serve: config_delay_s must be >= 0")
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
            self.router = RouterMetrics(cfg, 0.0)
            self.config_known = True
            env.process(self.pusher())
        env.process(self.control_loop())

    def on_arrival(self, job) -> None:
        if self.router is None:                 # the handle's router is created by its first request
            env = self.pool.env
            # its record grid and pusher start when it has the config; its gauges count from now
            self.router = RouterMetrics(self.config, env.now + self.config_delay_s)
            self._record()
            env.process(self.learn_config())

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

    def _record(self) -> None:
        if self.router is None:
            return
        pool = self.pool
        for r in pool.active:
            if r.ongoing or r.id in self.sent:
                self.sent[r.id] = r.ongoing
        for rid in list(self.sent):
            if not any(r.id == rid for r in pool.active):
                self.sent[rid] = 0
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
        """A push every metrics_interval_s from the router's creation; while the router has been idle for a
        whole look-back window the pushes would repeat zeros, so it sleeps until it is busy again."""
        env, cfg = self.pool.env, self.config
        created = self.router.created_at
        k = 0
        while True:
            self.push()
            k += 1
            self.next_push_at = created + k * cfg.metrics_interval_s
            yield env.timeout(self.next_push_at - env.now)
            quiet_since = self._quiet_since()
            if quiet_since is not None and env.now - quiet_since > cfg.look_back_period_s + cfg.metrics_interval_s \
                    and self._idle_report():
                self.next_push_at = None
                self.push_wakeup = env.event()
                yield self.push_wakeup
                k = math.ceil((env.now - created) / cfg.metrics_interval_s)
                self.next_push_at = created + k * cfg.metrics_interval_s
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
        if self.inputs_changed is not None and not self.inputs_changed.triggered:
            self.inputs_changed.succeed()

    def _total(self) -> TotalRequests:
        running = {r.id for r in self.pool.running}
        series = list(self.report_series) + [s for rid, s in self.report_keys.items() if rid in running]
        return TotalRequests(series)

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
        """DeploymentState: start replicas up to the target, or stop the surplus (starting first, then the
        newest running)."""
        pool = self.pool
        pool.set_target(decision)
        up = [r for r in pool.active if not r.stop_requested]
        if decision > len(up):
            for _ in range(decision - len(up)):
                pool.start_replica()
        elif decision < len(up):
            starting = [r for r in up if r.state == "starting"]
            running = [r for r in up if r.state == "ready"]
            order = list(reversed(starting)) + list(reversed(running))
            for rep in order[: len(up) - decision]:
                pool.stop_replica(rep)
