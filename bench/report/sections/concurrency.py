"""Article benchmark 3: closed-loop bursts of N jobs at once, ours (and the simulator's replays) against
the article's table and the FIFO ideal (N+1)/2 x S."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded, is_open_loop, load_mode
from bench.report.plotting import concurrency_plot
from bench.report.sections.base import SectionSpec
from bench.report.series import fifo_of
from bench.report.tables import slo_cells, slo_headers
from bench.report.view import MEASURED, QUOTED, SIMULATED, Fig, Table, fig
from loadlab import article
from loadlab.schema import Report
from loadlab.stats import fifo_ideal_mean


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    return [concurrency_plot(reports, loaded.twin_of), _article_table(), *map(_stages_table, reports)]


def _article_table() -> Table:
    """The article's bursts, with the FIFO ideal its own single-job time implies."""
    rows = []
    s_local = article.CONCURRENCY["local"][1][1]
    for n, (ok, mean) in article.CONCURRENCY["local"].items():
        v_ok, v_mean = article.CONCURRENCY["vertex"][n]
        rows.append([str(n), Fig(f"{ok}/{n}, " + (f"{mean} s" if mean else "–"), QUOTED),
                     Fig(f"{fifo_ideal_mean(n, s_local):.1f} s", QUOTED),
                     Fig(f"{v_ok}/{n}, {v_mean} s", QUOTED)])
    return Table(["N at once", "article local", f"FIFO ideal from the article's {s_local} s", "article Vertex"],
                 rows, title="The article")


def _stages_table(report: Report) -> Table:
    rows = []
    for stage in report.stages:
        s = stage.summary
        ideal, ratio = fifo_of(report, stage)
        rows.append([stage.name, Fig(f"{s.completed}/{s.jobs}", MEASURED), fig(s.mean, MEASURED),
                     fig(s.p95, MEASURED), fig(s.throughput_per_s, MEASURED, "/s", 3),
                     fig(ideal, MEASURED), fig(ratio, MEASURED, "", 2),
                     *slo_cells(report.stages, stage, MEASURED)])
    return Table(
        ["stage", "ok", "mean", "p95", "throughput", "FIFO ideal (N+1)/2·S", "mean ÷ FIFO ideal",
         *slo_headers(report.stages)],
        rows, title=f"Ours: {report.target}, {load_mode(report)} ({report.name})")


SECTION = SectionSpec(
    "concurrency", "Concurrency (article benchmark 3)", (MEASURED, SIMULATED, QUOTED),
    reports=lambda loaded: [r for r in loaded.role("load", MEASURED) if not is_open_loop(r)],
    missing="No closed-loop or burst load report (role 'load'): run `python -m bench concurrency`.", blocks=_blocks)
