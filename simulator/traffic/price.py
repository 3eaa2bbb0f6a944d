"""A trace priced as what it is: `simulator run --trace` bills the replica time of the trace's own span
(its arrivals plus the drain) and the fixed GPUs for that span; `--repeat-to-month` bills the same traffic
repeated to 30 days instead (simulator/traffic/sweep_trace.py recommends a setting for a trace)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadlab.trace import read_provenance
from simulator.scenarios import Scenario
from simulator.workload import MONTH_S

CLOCK = re.compile(r"^\w+ (\d\d):(\d\d)$")      # "Friday 11:18", as trace import writes the window's start


def horizon_of(rows: list[tuple[float, str]], drain_s: float) -> float:
    return rows[-1][0] + drain_s


def priced(result: dict[str, Any], horizon_s: float, repeat_to_month: bool) -> dict[str, Any]:
    """The run's bill for the trace's span (`trace_cost`) and per request; `cost` is what the table shows."""
    trace_cost = result["monthly_cost"] * horizon_s / MONTH_S     # usage and fixed alike scale with the span
    result["trace_cost"] = trace_cost
    result["cost_per_request"] = trace_cost / result["served"] if result["served"] else None
    result["cost_basis"] = "repeated to 30 days" if repeat_to_month else f"the trace's {horizon_s:,.0f} s"
    if not repeat_to_month:    # the table's replica-hours are the trace's too, as its bill
        result["replica_hours_per_month"] = result["replica_hours"]
        result["replica_hours"] = result["replica_hours"] * horizon_s / MONTH_S
    return result


@dataclass(frozen=True)
class LogClock:
    """A Vertex schedule (hour of day -> min, max replicas) read on the log's clock: trace hour h is the
    log's hour (h + start_hour) % 24. A class, not a closure: `sweep --trace` sends scenarios to processes."""

    schedule: Any
    start_hour: int

    def __call__(self, hour: int) -> tuple[int, int]:
        return self.schedule((hour + self.start_hour) % 24)


def log_start_hour(path: str | Path) -> int | None:
    """The hour of day (rounded) on the log's clock at the trace's t = 0, from its provenance; None when
    the trace has none, or its times were scaled (a compressed trace has no clock of its own)."""
    prov = read_provenance(path) or {}
    m = CLOCK.match(str(prov.get("window_start_weekday_hour", "")))
    if not m or prov.get("time_scale", 1) != 1:
        return None
    return round(int(m.group(1)) + int(m.group(2)) / 60) % 24


def on_log_clock(scenario: Scenario, start_hour: int | None) -> Scenario:
    """The scenario with its Vertex schedule on the log's clock (the other deployments have no clock)."""
    if not start_hour:
        return scenario
    return replace(scenario, vertex=replace(scenario.vertex, schedule=LogClock(scenario.vertex.schedule, start_hour)))


def provenance_line(path: str | Path) -> str | None:
    """Where the trace came from (its `# provenance:` line), which clock the schedules read, and a warning
    when its times were scaled."""
    prov = read_provenance(path)
    if not prov:
        return None
    line = (f"trace from {prov.get('source')} (window {prov.get('window')}, {prov.get('window_start')} .., "
            f"{prov.get('window_start_weekday_hour')} on the log's clock), scaling {prov.get('scaling')}")
    hour = log_start_hour(path)
    if hour is not None:
        line += (f"\n  Vertex's hour-of-day schedule reads the log's clock: t = 0 is {hour:02d}:00 (the window's start "
                 "to the nearest hour)")
    k = prov.get("time_scale")
    if isinstance(k, (int, float)) and k != 1:
        line += (f"\n  note: the trace's times are the log's / {k:g}: this prices the compressed traffic, "
                 "not the log's own")
    return line
