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
from simulator.controller_total import describe as describe_totals
from simulator.controller_total import layer_inputs

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
            line = describe_totals(layer_inputs(v.extra, layer))
            if line:
                blocks.append(Para(f"[{layer}] {line}"))
        if v.extra.get("service_check"):
            blocks.append(service_check_table(v))
    return blocks


def service_check_table(v: Report) -> Table:
    """The run's own model time against the calibration's at the loads its jobs met (a diagnostic), with
    the drift the repeated calibrations measured in the title."""
    rows = [[r["stage"] or "whole run", r["n"], _s(r["measured_s"]), _s(r["predicted_s"]),
             "-" if r["ratio"] is None else f"×{r['ratio']:.3f}",
             "-" if r["ci95"] is None else f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}", r["verdict"]]
            for r in v.extra["service_check"]]
    drift = v.model.get("drift") or {}
    spans = [f"{case} ×{d['last_over_first']:.3f} from the first to the last"
             for case, d in (drift.get("cases") or {}).items()]
    wander = drift.get("wander")
    spans += [f"speed wander between their blocks SD {100 * wander['sd']:.2f} % ({wander['dof']} dof)"] if wander else []
    said = (f"drift between {drift['calibrations']} calibrations: {', '.join(spans)}" if spans
            else drift.get("note", ""))
    return Table(["stage", "jobs", "measured service s", "calibrated s", "ratio", "95 % CI", "verdict"], rows,
                 title=f"{v.name}: service check (a diagnostic, not an input); {said}")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


SECTION = SectionSpec(
    "validation", "Simulator vs measured", (MEASURED, SIMULATED), by_role("validation"),
    missing="No validation report (role 'validation'): run `python -m simulator validate`.", blocks=_blocks)
