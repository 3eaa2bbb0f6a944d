"""Article benchmark 2: a cold start's parts, the article's Vertex T4 and ours, stacked and tabled."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded
from bench.report.plotting import coldstart_plot
from bench.report.sections.base import SectionSpec, by_role
from bench.report.series import coldstart_parts
from bench.report.view import MEASURED, QUOTED, Fig, Table, fig
from loadlab import article
from loadlab.schema import Report


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    rows: list[list[Any]] = [[k, Fig(f"{v:g} s", QUOTED)] for k, v in article.COLDSTART_S.items()]
    for report in reports:
        rows += [[f"{k} ({report.target})", fig(v, MEASURED, " s", 3)]
                 for k, v in coldstart_parts(report.coldstart).items()]
    return [coldstart_plot(reports), Table(["part", "seconds"], rows)]


SECTION = SectionSpec(
    "coldstart", "Cold start (article benchmark 2)", (MEASURED, QUOTED), by_role("coldstart", MEASURED),
    missing="No cold-start report (role 'coldstart'): run `python -m bench coldstart`.", blocks=_blocks)
