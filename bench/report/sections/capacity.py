"""Capacity under an SLO: the probes `bench capacity` (or its simulated twin) ran, per arrival rate."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec, by_role
from bench.report.tables import extra_tables, slo_cells, slo_headers
from bench.report.view import MEASURED, SIMULATED, Fig, Heading, Table, fig, fmt
from loadlab.schema import Report


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = []
    for report in reports:
        rows = []
        for stage in report.stages:
            s = stage.summary
            rows.append([stage.name, fmt(stage.arrival_rate_per_s, "/s", 3),
                         Fig(f"{s.completed}/{s.jobs}", report.kind), fig(s.p95, report.kind),
                         fig(s.p99, report.kind), *slo_cells(report.stages, stage, report.kind)])
        blocks += [Heading(f"{report.target}: {report.name}"),
                   Table(["probe", "arrival rate", "ok", "p95", "p99", *slo_headers(report.stages)], rows,
                         title="Probes"),
                   *extra_tables(report)]
    return blocks


SECTION = SectionSpec(
    "capacity", "Capacity under an SLO", (MEASURED, SIMULATED), by_role("capacity"),
    missing="No capacity report (role 'capacity'): run `python -m bench capacity --slo-e2e S`.", blocks=_blocks)
