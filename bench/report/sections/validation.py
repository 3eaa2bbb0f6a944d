"""Simulator vs measured: each validation's error rows, one table per layer (mechanics: the measured service
times replayed; prediction: service times from the calibration, with intervals on both sides), titled with
the run it replayed, where its service times came from and the layer's largest scored error."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded, match_measured
from bench.report.sections.base import SectionSpec, by_role
from bench.report.tables import ERROR_HEADERS, error_rows
from bench.report.view import MEASURED, SIMULATED, Para, Table
from loadlab.schema import Report

LAYERS = ("mechanics", "prediction")


def _blocks(validations: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = [Para("Each measured run replayed by the simulator, in two layers. Mechanics: each job's "
                              "measured service time (and on Ray Serve each replica's measured start-up) replayed, "
                              "so only the model of the queue, router and autoscaler remains. Prediction: service "
                              "times from separate calibration runs; the measured figure's 95 % interval (block "
                              "bootstrap) beside the simulated 95 % prediction interval over the replications. A row "
                              "marked 'fit' is one the simulator's inputs came from, 'too few jobs' one whose "
                              "measured interval is wider than ±10 %: shown, never scored.")]
    for v in validations:
        m = match_measured(v, loaded.measured)
        sim = v.config.simulation
        against = m.name if m else f"{sim.measured if sim else '?'} (not among the reports given)"
        calib = f"; service times from {sim.calibration}" if sim and sim.calibration else ""
        for layer in LAYERS:
            if not any(e.layer == layer for e in v.errors):
                continue
            scored = [e.error for e in v.errors if e.layer == layer and e.scored and not e.too_few
                      and e.error is not None]
            worst = f"; largest |error| {100 * max(map(abs, scored)):.1f} %" if scored else ""
            blocks.append(Table(ERROR_HEADERS, error_rows(v, layer=layer),
                                title=f"{v.name}: replays {against}{calib}{worst} [{layer}]",
                                empty="This validation report has no error rows."))
    return blocks


SECTION = SectionSpec(
    "validation", "Simulator vs measured", (MEASURED, SIMULATED), by_role("validation"),
    missing="No validation report (role 'validation'): run `python -m simulator validate`.", blocks=_blocks)
