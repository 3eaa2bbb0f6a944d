"""A trace as the traffic of `recommend --trace` and `search --trace`: its arrivals exactly, priced the way
`simulator run --trace` prices them (simulator/traffic/price.py): for the trace's own span (its arrivals
plus the drain) by default, or as that traffic repeated to 30 days with `--repeat-to-month`.

The settings are ranked and decided on `monthly_cost` (a month of the trace's traffic): the trace's own bill
is that times span / 30 days for every setting alike, so the ranking, the decision and the relative widths of
the intervals are the same on either basis; `Basis.factor` turns the figures into the basis shown. For a fixed
trace the randomness of a replication is in the service times (and Vertex's stock-outs and preemptions):
replication i runs seed `seed + i` for every setting (common random numbers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from loadlab.trace import read_trace
from simulator.engine import run_trace
from simulator.scenarios import Scenario
from simulator.traffic.price import horizon_of, log_start_hour, on_log_clock, priced
from simulator.workload import MONTH_S


class Basis(NamedTuple):
    """How a cost figure is shown: $/month x `factor`, its unit after the amount, what a replication is,
    decimals (a short trace's bill is cents: differences between settings need more than two)."""

    factor: float = 1.0
    per: str = "/month"
    replications: str = "months"
    digits: int = 2


MONTH = Basis()


@dataclass(frozen=True)
class TraceTraffic:
    path: str
    rows: list[tuple[float, str]]
    horizon_s: float
    drain_s: float
    start_hour: int | None        # the log's clock at t = 0 (Vertex's schedule reads it), None: no clock
    repeat_to_month: bool

    @property
    def monthly(self) -> int:
        """Requests per month of this traffic repeated to 30 days (the sweep's volume key)."""
        return round(len(self.rows) * MONTH_S / self.horizon_s)

    @property
    def basis(self) -> Basis:
        if self.repeat_to_month:
            return Basis(1.0, "/month", "replications of the trace")
        return Basis(self.horizon_s / MONTH_S, " for the trace", "replications of the trace", 4)

    def describe(self) -> str:
        """The traffic and its pricing, as `simulator run --trace` says it."""
        if self.repeat_to_month:
            basis = f"priced as that traffic repeated to 30 days ({self.monthly:,}/month)"
        else:
            basis = (f"priced for the trace's span ({self.horizon_s / 3600:,.2f} h: the arrivals + --drain-s "
                     f"{self.drain_s:g}); --repeat-to-month for a month of it")
        return f"{len(self.rows):,} arrivals from {self.path} over {self.horizon_s:,.0f} s, {basis}"

    def extra(self) -> dict[str, Any]:
        return {"trace": self.path, "arrivals": len(self.rows), "horizon_s": self.horizon_s, "drain_s": self.drain_s,
                "cost_basis": "repeated to 30 days" if self.repeat_to_month else f"the trace's {self.horizon_s:,.0f} s",
                "cost_factor": self.basis.factor}


def load_traffic(path: str | Path, drain_s: float, repeat_to_month: bool) -> TraceTraffic:
    rows = read_trace(path)
    return TraceTraffic(str(path), rows, horizon_of(rows, drain_s), drain_s, log_start_hour(path), repeat_to_month)


def traffic_of(args) -> TraceTraffic | None:
    """The --trace of `recommend` / `search` (with --drain-s, --repeat-to-month), its provenance printed;
    None without --trace (the workload model's --monthly)."""
    if not getattr(args, "trace", None):
        if getattr(args, "repeat_to_month", False):
            raise ValueError("--repeat-to-month prices a --trace; without one the traffic is --monthly already")
        return None
    from simulator.traffic.price import provenance_line

    traffic = load_traffic(args.trace, args.drain_s, args.repeat_to_month)
    if (line := provenance_line(args.trace)):
        print(line)
    return traffic


def run_priced(scenario: Scenario, traffic: TraceTraffic, seed: int, slo_e2e_s: float | None) -> dict[str, Any]:
    """One replication of the trace on the scenario (Vertex on the log's clock), priced as `run --trace`."""
    sc = on_log_clock(scenario, traffic.start_hour)
    result = run_trace(sc, traffic.rows, traffic.horizon_s, seed=seed, slo_e2e_s=slo_e2e_s)
    return priced(result, traffic.horizon_s, traffic.repeat_to_month)


def scaled_bill(bill: dict | None, factor: float) -> dict | None:
    """A month's bill (simulator/bill.py) on the basis shown: every quantity and cost x factor, shares kept."""
    if bill is None or factor == 1.0:
        return bill
    lines = [{**x, "quantity": x["quantity"] * factor, "cost": x["cost"] * factor} for x in bill["lines"]]
    return {**bill, "lines": lines, "total": bill["total"] * factor}
