"""A trace priced as what it is: `simulator run --trace` bills the replica time of the trace's own span
(its arrivals plus the drain) and the fixed GPUs for that span; `--repeat-to-month` bills the same traffic
repeated to 30 days instead (simulator/traffic/sweep_trace.py recommends a setting for a trace)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadlab.trace import read_provenance
from simulator.workload import MONTH_S


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


def provenance_line(path: str | Path) -> str | None:
    """Where the trace came from (its `# provenance:` line), and a warning when its times were scaled."""
    prov = read_provenance(path)
    if not prov:
        return None
    line = (f"trace from {prov.get('source')} (window {prov.get('window')}, {prov.get('window_start')} .., "
            f"{prov.get('window_start_weekday_hour')} on the log's clock), scaling {prov.get('scaling')}")
    start = prov.get("window_start_weekday_hour")
    if start and start != "Monday 00:00":
        line += (f"\n  note: the simulator replays t = 0 as Monday 00:00 (its hour-of-day replica schedules); this "
                 f"trace began {start} on the log's clock")
    k = prov.get("time_scale")
    if isinstance(k, (int, float)) and k != 1:
        line += (f"\n  note: the trace's times are the log's / {k:g}: this prices the compressed traffic, "
                 "not the log's own")
    return line
