"""A simulated month: per deployment and volume what was served, the latency, the cold-start share and
the bill (`python -m simulator --monthly N`)."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec, by_role
from bench.report.tables import extra_tables
from bench.report.view import SIMULATED, Para, Table, fig, fmt, money, pct
from loadlab.schema import Report


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    rows = [_row(r) for report in reports for r in report.extra.get("results", [])]
    return [Para("Service times from the profiles named in each report (the article's by "
                 "default); prices in simulator/pricing.py."),
            Table(["requests", "deployment", "served", "failed", "rejected", "mean", "p95",
                   "cold starts", "replica-h", "per month", "per request"], rows),
            *(table for report in reports for table in extra_tables(report))]


def _row(r: dict[str, Any]) -> list[Any]:
    lat = r.get("latency_s", {})
    return [fmt(r.get("arrivals")), r.get("deployment"), fig(r.get("served"), SIMULATED, ""),
            fig(r.get("failed"), SIMULATED, ""), fig(r.get("rejected"), SIMULATED, ""),
            fig(lat.get("mean"), SIMULATED, " s", 1), fig(lat.get("p95"), SIMULATED, " s", 1),
            pct(r.get("cold_start_share"), SIMULATED), fig(r.get("replica_hours"), SIMULATED, "", 0),
            money(r.get("monthly_cost"), SIMULATED), money(r.get("cost_per_request"), SIMULATED, 4)]


SECTION = SectionSpec(
    "monthly", "A simulated month", (SIMULATED,), by_role("monthly"),
    missing="No monthly simulation (role 'monthly'): run `python -m simulator --monthly 10000`.", blocks=_blocks)
