"""Simulator vs measured: each validation's error rows, titled with the run it replayed, where its service
times came from and its largest scored error."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded, match_measured
from bench.report.sections.base import SectionSpec, by_role
from bench.report.tables import ERROR_HEADERS, error_rows
from bench.report.view import MEASURED, SIMULATED, Para, Table
from loadlab.schema import Report


def _blocks(validations: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = [Para("Each measured run replayed by the simulator. A row marked 'fit' is one the "
                              "simulator's inputs came from; it is shown, never scored.")]
    for v in validations:
        m = match_measured(v, loaded.measured)
        sim = v.config.simulation
        against = m.name if m else f"{sim.measured if sim else '?'} (not among the reports given)"
        calib = f"; service times from {sim.calibration}" if sim and sim.calibration else ""
        scored = [e.error for e in v.errors if e.scored and e.error is not None]
        worst = f"; largest |error| {100 * max(map(abs, scored)):.1f} %" if scored else ""
        blocks.append(Table(ERROR_HEADERS, error_rows(v), title=f"{v.name}: replays {against}{calib}{worst}",
                            empty="This validation report has no error rows."))
    return blocks


SECTION = SectionSpec(
    "validation", "Simulator vs measured", (MEASURED, SIMULATED), by_role("validation"),
    missing="No validation report (role 'validation'): run `python -m simulator validate`.", blocks=_blocks)
