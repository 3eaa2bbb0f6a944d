"""The `vertex` policy: Vertex AI online prediction's autoscaler as modelled here, and its min/max
schedules by hour of day.

Every `tick_s` it samples the load (busy replicas + queued requests, the request-count view; a GPU duty
cycle alone cannot see a queue) and averages it over `window_s`; the wanted count is
ceil(average / target_utilisation) (Kubernetes HPA rule, Vertex default target 60 %), clamped to the
min/max of the hour. Scale up at once (new replicas still provision and load); scale down only after
the wanted count stayed lower for `scale_down_delay_s` (the endpoint stops only idle ones). The window
and delays are not published by Google: defaults 60 s and 300 s (the Kubernetes HPA's down-scale
stabilisation) are our choice. min = 0 is the "scale to zero" preview: the last replica stops only
after no request for `idle_scaledown_period_s` and at least `min_scaleup_period_s` after scaling up
from zero; a request arriving at zero replicas starts one at once.
"""

from __future__ import annotations

import math
from collections import deque

from simulator.autoscaling.base_policy import AutoscalingPolicy


def article_schedule(hour: int) -> tuple[int, int]:
    """The article's settings: business hours (9-18h) min=1 max=3; night (18-9h) min=0 max=1."""
    return (1, 3) if 9 <= hour < 18 else (0, 1)


def fixed_schedule(min_replicas: int, max_replicas: int):
    def schedule(hour: int) -> tuple[int, int]:
        return min_replicas, max_replicas
    return schedule


def hours_schedule(business: tuple[int, int], night: tuple[int, int], start: int = 9, end: int = 18):
    def schedule(hour: int) -> tuple[int, int]:
        return business if start <= hour < end else night
    return schedule


class VertexPolicy(AutoscalingPolicy):
    """`config` carries schedule, target_utilisation, tick_s, window_s, scale_down_delay_s,
    idle_scaledown_period_s, min_scaleup_period_s (a `simulator.deployments.vertex.VertexConfig`)."""

    name = "vertex"

    def __init__(self, config):
        self.config = config
        self.last_request_at = -1e18
        self.scaled_from_zero_at = -1e18

    def attach(self, pool) -> None:
        self.pool = pool
        pool.env.process(self.control_loop())

    def on_request(self, job) -> None:
        self.last_request_at = self.pool.env.now

    def on_arrival(self, job) -> None:
        pool = self.pool
        now = pool.env.now
        if not pool.active:
            _, hi = self.config.schedule(int(now // 3600) % 24)
            if hi > 0:
                pool.set_target(1)
                pool.start_replica()
                self.scaled_from_zero_at = now

    def control_loop(self):
        """Every tick: average load over the window -> wanted replicas within the hour's min/max."""
        cfg, pool, env = self.config, self.pool, self.pool.env
        samples: deque = deque(maxlen=max(1, int(round(cfg.window_s / cfg.tick_s))))
        lower_since = None
        while True:
            now = env.now
            lo, hi = cfg.schedule(int(now // 3600) % 24)
            samples.append(pool.busy + len(pool.queue))
            avg = sum(samples) / len(samples)      # the autoscaler's own moving average (hot loop: no numpy)
            wanted = math.ceil(avg / cfg.target_utilisation - 1e-9)
            if lo == 0 and wanted == 0 and pool.active:
                idle_long = now - self.last_request_at >= cfg.idle_scaledown_period_s
                up_long = now - self.scaled_from_zero_at >= cfg.min_scaleup_period_s
                if not (idle_long and up_long) or pool.busy or pool.queue:
                    wanted = 1
            wanted = max(lo, min(hi, wanted))
            current = len(pool.active)
            if wanted > current:
                lower_since = None
                if current == 0:
                    self.scaled_from_zero_at = now
                pool.set_target(wanted)
                for _ in range(wanted - current):
                    pool.start_replica()
            elif wanted < current:
                if lower_since is None:
                    lower_since = now
                if now - lower_since >= cfg.scale_down_delay_s or current > hi:
                    pool.stop_replicas(current - wanted)   # those it can stop now; the target follows
            else:
                lower_since = None
            yield env.timeout(cfg.tick_s)
