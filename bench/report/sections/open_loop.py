"""Open-loop and trace arrivals: latency, arrivals and the queue over time, and per stage the SLO
attainment, goodput and how late the load generator sent."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded, is_open_loop
from bench.report.plotting import open_loop_plot
from bench.report.sections.base import SectionSpec
from bench.report.series import all_jobs
from bench.report.tables import slo_cells, slo_headers
from bench.report.view import MEASURED, Fig, Heading, Para, Table, fig, fmt
from loadlab.schema import Report


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = [Para("Arrivals are scheduled independently of responses; latency counts from the "
                              "scheduled time. Lateness is how late the load generator sent an arrival.")]
    for report in reports:
        twin = (loaded.twin_of.get(id(report)) or [None])[0]
        load = report.config.load
        how = (f"{load.arrival} arrivals" + (f", seed {load.seed}" if load.seed is not None else "")
               + (f", trace {load.trace}" if load.trace else "")
               + (f", time scale ×{load.time_scale:g}" if load.time_scale else ""))
        blocks.append(Heading(f"{report.target}: {report.name} ({how})"))
        if all_jobs(report):
            blocks.append(open_loop_plot(report, twin))
        blocks.append(_stages_table(report))
    return blocks


def _stages_table(report: Report) -> Table:
    rows = []
    for stage in report.stages:
        s = stage.summary
        rows.append([stage.name, fmt(stage.arrival_rate_per_s, "/s", 3), Fig(f"{s.completed}/{s.jobs}",
                     MEASURED), Fig(str(s.dropped), MEASURED), fig(s.mean, MEASURED),
                     fig(s.p95, MEASURED), fig(s.p99, MEASURED),
                     fig(s.lateness_s.p99, MEASURED, " s", 3),
                     fig(s.throughput_per_s, MEASURED, "/s", 3),
                     *slo_cells(report.stages, stage, MEASURED)])
    return Table(["stage", "arrival rate", "ok", "dropped", "mean", "p95", "p99",
                  "lateness p99", "throughput", *slo_headers(report.stages)], rows)


SECTION = SectionSpec(
    "open-loop", "Open-loop arrivals: latency, SLO attainment and goodput", (MEASURED,),
    reports=lambda loaded: [r for r in loaded.role("load", MEASURED) if is_open_loop(r)],
    missing=("No open-loop or trace load report (role 'load', mode open/trace): run Locust with "
             "`--arrival poisson --rates ...` or `--arrival trace --trace FILE`."), blocks=_blocks)
