"""Table rows that more than one section shows: the SLO columns of a stage, a validation's error rows
(its metrics formatted by their names) and the tables a producer put in `extra["tables"]`."""

from __future__ import annotations

from typing import Any

from bench.report.view import LABELS, MEASURED, SIMULATED, Fig, Table, fig, fmt, pct
from loadlab.schema import Report, Stage

SLO_HEADERS = ["SLO e2e", "SLO attainment", "goodput"]
ERROR_HEADERS = ["stage", "metric", "measured", "simulated", "error (sim − meas) / meas", "jobs", "measured 95 % CI",
                 "simulated 95 % PI", "inside", "over the replications (measured falls at)"]


def slo_headers(stages: list[Stage]) -> list[str]:
    return SLO_HEADERS if any(s.slo_e2e_s is not None for s in stages) else []


def slo_cells(stages: list[Stage], stage: Stage, origin: str) -> list[Any]:
    """SLO, attainment and goodput cells, only when some stage of the table has an SLO."""
    if not any(s.slo_e2e_s is not None for s in stages):
        return []
    s = stage.summary
    if stage.slo_e2e_s is None:
        return ["–", None, None]
    return [f"{stage.slo_e2e_s:g} s", pct(s.slo_attainment, origin), fig(s.goodput_per_s, origin, "/s", 3)]


def extra_tables(report: Report) -> list[Table]:
    """Tables a producer put in `extra["tables"]`: {title, headers, rows, origins?}, `origins` one per
    column (measured / simulated / quoted / null); without it numbers get the report's kind."""
    tables = []
    for spec in report.extra.get("tables") or []:
        origins = spec.get("origins")
        rows = []
        for row in spec.get("rows", []):
            cells: list[Any] = []
            for i, value in enumerate(row):
                origin = origins[i] if origins and i < len(origins) else (
                    None if origins else (report.kind if isinstance(value, (int, float)) else None))
                if value is None:
                    cells.append(None)
                elif origin in LABELS and isinstance(value, (int, float, str)):
                    cells.append(Fig(fmt(value) if not isinstance(value, str) else value, origin))
                else:
                    cells.append(fmt(value))
            rows.append(cells)
        tables.append(Table([str(h) for h in spec.get("headers", [])], rows, title=spec.get("title")))
    return tables


def fmt_metric(metric: str, value: float | None, origin: str) -> Fig | None:
    """A validation metric in the unit its name says: a share, a rate, seconds, else a count."""
    if value is None:
        return None
    if "attainment" in metric or metric.endswith("_share"):
        return pct(value, origin)
    if metric.endswith("_per_s"):
        return fig(value, origin, "/s", 3)
    if metric.endswith("_s") or metric == "replica_seconds":
        return fig(value, origin, " s")
    if float(value).is_integer():
        return Fig(f"{int(value):,}", origin)
    return fig(value, origin, "")


def error_rows(validation: Report, stage_level: bool | None = None, layer: str | None = None) -> list[list[Any]]:
    """A validation's ErrorRows (of one `layer`, or all) as table rows; `scored=False` rows (the simulator
    was fitted on them) say 'fit' and `too_few` ones 'too few jobs' instead of an error. stage_level
    None: all rows; True: per-stage; False: whole run."""
    rows = []
    for e in validation.errors:
        if stage_level is not None and (e.stage is not None) != stage_level:
            continue
        if layer is not None and e.layer != layer:
            continue
        error = ("fit (not scored)" if not e.scored else "too few jobs" if e.too_few
                 else "–" if e.error is None else f"{100 * e.error:+.1f} %")
        where = e.distribution or ""
        if e.quantile is not None:
            where += f" (at {e.quantile:.2f})"
        rows.append([e.stage if e.stage is not None else "whole run", e.metric,
                     fmt_metric(e.metric, e.measured, MEASURED), fmt_metric(e.metric, e.simulated, SIMULATED), error,
                     str(e.jobs) if e.jobs is not None else "", _interval(e.metric, e.measured_ci, MEASURED),
                     _interval(e.metric, e.simulated_pi, SIMULATED),
                     "" if e.inside is None else ("yes" if e.inside else "no"), where])
    return rows


def _interval(metric: str, interval: tuple[float, float] | None, origin: str) -> Fig | None:
    if interval is None:
        return None
    lo, hi = (fmt_metric(metric, v, origin) for v in interval)
    return Fig(f"{lo.text} – {hi.text}", origin)
