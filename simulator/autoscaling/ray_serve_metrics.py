"""The metrics Ray Serve 2.60's autoscaler reads, with Ray's semantics: the handle's router gauges
(`RouterMetrics`: queued requests and ongoing requests per replica, recorded on a grid and pushed as
series; router.py) and the controller's aggregation of a push (`merge_instantaneous_total`, and
`TotalRequests`: the time-weighted mean of the merged series; _private/autoscaling_metrics_merge.py,
autoscaling_state.py). Apart from the policy (simulator/autoscaling/ray_serve.py) because they are
Ray's arithmetic, checked against Ray's own kernel by the tests, while the policy is the timing of
decisions."""

from __future__ import annotations

import bisect
import math


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


# -- the handle's router metrics (router.py) --------------------------------------------------------
class RouterMetrics:
    """The router's gauges over time (queued, ongoing per replica), sampled lazily on the record grid
    when a report is pushed. The grid's first point is at `created_at`; the later ones lag the ideal grid
    by `lag_s` (modulo the record interval): Ray's MetricsPusher sleeps a full interval after each run of
    the task (metrics_utils.py `metrics_task`), so every period overshoots by the task's own time and the
    event loop's latency, and after a minute of a loaded run the grid's phase is unknown."""

    def __init__(self, created_at: float, look_back_period_s: float, metrics_interval_s: float,
                 record_interval_s: float, lag_s: float = 0.0):
        self.created_at = created_at
        self.record_lag_s = lag_s % record_interval_s
        self.look_back_s, self.push_interval_s, self.record_interval_s = (look_back_period_s, metrics_interval_s,
                                                                          record_interval_s)
        self.times: list[float] = []
        self.states: list[tuple[int, dict[int, int]]] = []    # (queued, {replica: ongoing}) from each time on

    def change(self, now: float, queued: int, sent: dict[int, int]) -> None:
        if self.times and self.times[-1] == now:
            self.states[-1] = (queued, dict(sent))
        else:
            self.times.append(now)
            self.states.append((queued, dict(sent)))
        # keep one state before the look-back window of the next push
        keep = now - self.look_back_s - self.push_interval_s - self.record_interval_s
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
        rec = self.record_interval_s
        start = now - self.look_back_s
        origin = self.created_at + self.record_lag_s       # the grid of the points after the first
        first = max(1, math.floor((start - origin) / rec) + 1)
        last = math.floor((now - origin) / rec + 1e-9)
        points = [self.created_at] if self.created_at <= now + 1e-9 else []
        points += [origin + k * rec for k in range(first, last + 1)]
        queued: list[tuple[float, float]] = []
        running: dict[int, list[tuple[float, float]]] = {}
        for g in points:
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
