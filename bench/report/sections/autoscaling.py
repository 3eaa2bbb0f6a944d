"""Autoscaling: each measured run with a replica timeline beside the validation that replayed it (or a
validation alone): the replicas up over time, the bill in replica-seconds, the scale and cold-start
counts, and the validation's run-level errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.replicas.replica_log import PHASE_LABELS, phase_values
from bench.report.loading import Loaded, match_measured
from bench.report.plotting import replicas_plot
from bench.report.sections.base import SectionSpec
from bench.report.series import all_jobs
from bench.report.tables import ERROR_HEADERS, error_rows
from bench.report.view import MEASURED, SIMULATED, Fig, Heading, Table, fig
from loadlab.schema import Report
from loadlab.stats import mean, mean_ci95

Pair = tuple[Report | None, Report | None]     # (measured, its simulated replay)

# The whole-run figures of the table, each read from a report with a replica timeline.
# Each read from `ReplicaRun.figures` (loadlab/schema.py), the same code the recorder and the simulator use.
RUN_FIGURES: list[tuple[str, Callable[[Report], float | int | None]]] = [
    ("replica-seconds", lambda r: r.replicas.replica_seconds),
    ("scale-ups", lambda r: r.replicas.scale_count("up")),
    ("scale-downs", lambda r: r.replicas.scale_count("down")),
    ("cold starts (first job of a new replica)", lambda r: r.replicas.figures(all_jobs(r)).cold_starts
     if all_jobs(r) else None),
    ("jobs that waited for a starting replica", lambda r: r.replicas.figures(all_jobs(r)).waited_for_start
     if all_jobs(r) else None),
]


def _with_timeline(loaded: Loaded) -> list[Report]:
    """The reports with a replica timeline: measured runs, then validations."""
    return [r for r in (*loaded.measured, *loaded.role("validation")) if r.replicas is not None]


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = []
    for m, sim in _pairs(loaded.measured, loaded.role("validation")):
        name = (m or sim).name
        rows = [[label, *(_cell(get, r, o) for r, o in ((m, MEASURED), (sim, SIMULATED)))]
                for label, get in RUN_FIGURES]
        blocks += [Heading(name), replicas_plot(name, m, sim), Table(["whole run", "measured", "simulated"], rows)]
        startup = _startup_rows(m) if m is not None else []
        if startup:
            blocks.append(Table(["replica start-up part", "mean", "95 % CI", "starts"], startup,
                                title="Where a replica's start-up goes (each replica's own log)"))
        if sim is not None:
            for layer in ("mechanics", "prediction"):
                if any(e.layer == layer and e.stage is None for e in sim.errors):
                    blocks.append(Table(ERROR_HEADERS, error_rows(sim, stage_level=False, layer=layer),
                                        title=f"Run-level errors of the validation ({layer})",
                                        empty="The validation has no run-level error rows."))
    return blocks


def _startup_rows(report: Report) -> list[list[Any]]:
    """Each part of the start-up (start -> RUNNING) over the replicas that logged it: mean, 95 % CI, n."""
    rows = []
    for name, values in phase_values(report.replicas.intervals).items():
        if not values:
            return []
        lo, hi = mean_ci95(values) if len(values) > 1 else (None, None)
        rows.append([PHASE_LABELS[name], fig(mean(values), MEASURED),
                     Fig(f"{lo:.2f}–{hi:.2f} s", MEASURED) if lo is not None else None, str(len(values))])
    return rows


def _pairs(measured: list[Report], validations: list[Report]) -> list[Pair]:
    """Each measured run with a replica timeline and its first replay with one, then the replays of runs
    not among the reports."""
    pairs: list[Pair] = []
    matched: set[int] = set()
    for m in (r for r in measured if r.replicas is not None):
        twin = next((v for v in validations if v.replicas is not None and match_measured(v, measured) is m), None)
        if twin is not None:
            matched.add(id(twin))
        pairs.append((m, twin))
    pairs += [(None, v) for v in validations if v.replicas is not None and id(v) not in matched]
    return pairs


def _cell(get: Callable[[Report], float | int | None], report: Report | None, origin: str) -> Fig | None:
    if report is None:
        return None
    value = get(report)
    if value is None:
        return None
    return fig(value, origin, " s", 1) if isinstance(value, float) else Fig(f"{value:,}", origin)


SECTION = SectionSpec(
    "autoscaling", "Autoscaling: replicas over time and the bill", (MEASURED, SIMULATED),
    reports=_with_timeline,
    missing=("No report with a replica timeline: run a load test against `python -m "
             "server.rayserve` with the replica recorder, then `python -m simulator validate`."), blocks=_blocks)
