"""The autoscaling scenario: idle at zero replicas -> a ramp of three steps -> a burst, sized from the
calibrated warm service time S; or any arrival trace (`--trace`, e.g. from `simulator trace import`),
cut into windows of equal length. Written as an arrival trace for Locust, and the replayed jobs regrouped
into one stage per phase (a window of a trace)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadlab.schema import JobRecord, Stage
from loadlab.stats import mean
from loadlab.trace import read_provenance, read_trace, write_trace

# Ramp steps as shares of one replica's rate 1/S: well under, near, and over what one replica serves.
RAMP_SHARES = (0.3, 0.6, 1.2)
# A trace replayed against Ray Serve on this machine is bounded: its arrivals and span after --time-scale.
MAX_TRACE_ARRIVALS = 2000
MAX_TRACE_SPAN_S = 3600.0
TRACE_WINDOWS = 6          # default windows (stages) of a trace
MAX_WINDOWS = 100


@dataclass(frozen=True)
class ScenarioShape:
    idle_s: float     # at zero replicas before the first arrival
    step_s: float     # length of each ramp step
    burst: int        # arrivals at once after the ramp
    gap_s: float      # end of the ramp -> the burst
    cold_starts: int  # calibration: cycles from zero replicas (each one measured replica start)
    warm_runs: int    # calibration: warm requests per case and cycle


SCENARIOS = {
    "demo": ScenarioShape(idle_s=30.0, step_s=20.0, burst=8, gap_s=5.0, cold_starts=2, warm_runs=5),
    "short": ScenarioShape(idle_s=10.0, step_s=8.0, burst=6, gap_s=3.0, cold_starts=1, warm_runs=3),
}


@dataclass(frozen=True)
class Phase:
    """A phase of the scenario with its arrivals (seconds from the run's origin)."""

    name: str
    start_s: float
    end_s: float
    times: tuple[float, ...]
    held: bool = True      # a rate held for [start_s, end_s); False: arrivals at once (the burst)

    @property
    def rate_per_s(self) -> float | None:
        return len(self.times) / (self.end_s - self.start_s) if self.held else None


@dataclass
class Scenario:
    shape: ScenarioShape
    service_s: float
    cases: list[str]
    phases: list[Phase]
    first_step_s: float = 0.0     # the first ramp step held at least this long (`settle_s`)

    def rows(self) -> list[tuple[float, str, str]]:
        """(t_s, case, phase) of every arrival in time order; cases round robin by arrival index."""
        times = sorted((t, p.name) for p in self.phases for t in p.times)
        return [(t, self.cases[i % len(self.cases)], phase) for i, (t, phase) in enumerate(times)]

    @property
    def last_arrival_s(self) -> float:
        return max(t for p in self.phases for t in p.times)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": asdict(self.shape), "service_s": self.service_s, "cases": self.cases,
                "ramp_shares_of_one_replica": list(RAMP_SHARES), "first_step_at_least_s": self.first_step_s,
                "phases": [{"name": p.name, "start_s": p.start_s, "end_s": p.end_s, "arrivals": len(p.times),
                            "rate_per_s": p.rate_per_s} for p in self.phases]}


@dataclass
class TraceScenario(Scenario):
    """A trace replayed as it is (its own cases, times / time_scale), its windows the phases."""

    trace: list[tuple[float, str, str]] = field(default_factory=list)    # (t_s, case, window)
    source: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[tuple[float, str, str]]:
        return self.trace

    def to_dict(self) -> dict[str, Any]:
        return {"trace": self.source, "service_s": self.service_s, "cases": self.cases,
                "phases": [{"name": p.name, "start_s": p.start_s, "end_s": p.end_s, "arrivals": len(p.times),
                            "rate_per_s": p.rate_per_s} for p in self.phases]}


def trace_scenario(path: Path, time_scale: float, window_s: float | None, shape: ScenarioShape) -> TraceScenario:
    """The trace at `path` with its times / time_scale, cut into windows of `window_s` (default: the span
    in TRACE_WINDOWS). ValueError (one line) for a trace that cannot be read or is over the bounds."""
    if not time_scale > 0 or not math.isfinite(time_scale):
        raise ValueError(f"--time-scale must be a finite number > 0, got {time_scale!r}")
    rows = [(t / time_scale, case) for t, case in read_trace(path)]
    span = rows[-1][0]
    if len(rows) > MAX_TRACE_ARRIVALS or span > MAX_TRACE_SPAN_S:
        raise ValueError(f"trace {path}: {len(rows):,} arrivals over {span:,.0f} s after --time-scale {time_scale:g}; "
                         f"a replay against Ray Serve here is bounded to {MAX_TRACE_ARRIVALS:,} arrivals over "
                         f"{MAX_TRACE_SPAN_S:,.0f} s (cut it: trace import --busiest/--from/--to, or --time-scale)")
    if window_s is not None and not window_s > 0:
        raise ValueError(f"--window-s must be > 0, got {window_s!r}")
    window = window_s or max(1.0, math.ceil(span / TRACE_WINDOWS))
    n = max(1, math.ceil((span + 1e-9) / window)) if span > 0 else 1
    if n > MAX_WINDOWS:
        raise ValueError(f"--window-s {window:g} cuts {span:,.0f} s into {n:,} windows: at most {MAX_WINDOWS}")
    bounds = [(i * window, (i + 1) * window) for i in range(n)]
    names = [f"window {i + 1} [{a:g}, {b:g}) s" for i, (a, b) in enumerate(bounds)]
    trace = [(t, case, names[min(int(t // window), n - 1)]) for t, case in rows]
    phases = [Phase(name, a, b, tuple(t for t, _, w in trace if w == name)) for name, (a, b) in zip(names, bounds, strict=True)]
    cases = sorted({case for _, case in rows})
    source = {"path": str(path), "time_scale": time_scale, "window_s": window, "arrivals": len(rows),
              "span_s": span, "provenance": read_provenance(path)}
    return TraceScenario(replace_shape(shape, window), 0.0, cases, phases, trace=trace, source=source)


def replace_shape(shape: ScenarioShape, window_s: float) -> ScenarioShape:
    """The scripted shape's calibration counts, with Locust's windows the trace's."""
    return ScenarioShape(idle_s=0.0, step_s=window_s, burst=0, gap_s=0.0, cold_starts=shape.cold_starts,
                         warm_runs=shape.warm_runs)


def build_scenario(shape: ScenarioShape, service_s: float, cases: list[str], first_step_s: float = 0.0) -> Scenario:
    """idle -> ramp (RAMP_SHARES x 1/S, each held `step_s`, evenly spaced) -> `burst` at once; the first
    step held at least `first_step_s` (`settle_s`), in whole spacings of its arrivals. The idle tail is
    not in the trace: the run waits after the last arrival until the deployment is back at zero."""
    if not service_s > 0:
        raise ValueError(f"the scenario needs a warm service time > 0 s, got {service_s!r}")
    if not cases:
        raise ValueError("the scenario needs at least one case")
    phases, start = [], shape.idle_s
    for i, share in enumerate(RAMP_SHARES):
        n = max(1, round(share * shape.step_s / service_s))
        spacing = shape.step_s / n
        if i == 0:
            n = max(n, math.ceil(first_step_s / spacing - 1e-9))
        phases.append(Phase(f"ramp {share:g}/S", start, start + n * spacing,
                            tuple(start + k * spacing for k in range(n))))
        start += n * spacing
    burst_at = start + shape.gap_s
    phases.append(Phase(f"burst {shape.burst}", burst_at, burst_at, (burst_at,) * shape.burst, held=False))
    return Scenario(shape, service_s, list(cases), phases, first_step_s)


def settle_s(look_back_s: float, first_request_e2e_s: list[float | None]) -> float:
    """How long the ramp's first step holds so that the cold start has left the autoscaler's look-back
    window before the load doubles: the window, plus the calibration's mean first request at zero (it
    waits a whole start-up, and the next arrivals queue behind it). Held 20 s like the other steps, the
    window's mean still held that backlog through the next step and sat at the target for ~12 s: the 1st
    scale-down fell at 57.7 s in one run and 70.3 s in another, and a prediction at x1.3 the calibrated
    service time put it after the burst in 6 of 8 replications; held 40 s, every speed from x0.9 to x1.3
    scaled up and down 3 times in 8 of 8 (2026-12-07)."""
    return look_back_s + (mean(x for x in first_request_e2e_s if x is not None) or 0.0)


def write_scenario(scenario: Scenario, path: Path) -> Path:
    """The scenario as an arrival trace (`t_s,case`, loadlab/trace.py)."""
    return write_trace(path, ((t, case) for t, case, _ in scenario.rows()))


def phase_stages(jobs: list[JobRecord], scenario: Scenario, origin: float, slo_e2e_s: float | None) -> list[Stage]:
    """The jobs of a trace replay regrouped into one stage per phase (Locust cuts a trace into equal
    windows; a phase is what the scenario varies). A job is placed by its arrival index, the row of the
    trace (Locust's `extra["arrival"]`), else by its scheduled time."""
    rows = scenario.rows()
    by_phase: dict[str, list[JobRecord]] = {p.name: [] for p in scenario.phases}
    for job in jobs:
        index = job.extra.get("arrival")
        if isinstance(index, int) and 0 <= index < len(rows):
            phase = rows[index][2]
        else:
            t = job.origin - origin
            phase = next((p.name for p in reversed(scenario.phases) if t >= p.start_s - 1e-6), scenario.phases[0].name)
        by_phase[phase].append(job)
    return [Stage(name=p.name, arrival_rate_per_s=p.rate_per_s, started_at=origin + p.start_s,
                  duration_s=(p.end_s - p.start_s) if p.held else None, slo_e2e_s=slo_e2e_s,
                  jobs=sorted(by_phase[p.name], key=lambda j: j.origin))
            for p in scenario.phases]
