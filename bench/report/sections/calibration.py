"""The calibration runs (`bench calibrate`, `bench autoscale --calibrate`): each stage's model time, and the
service time under load the simulator fits from them (simulator/service_load.py), with n and 95 % intervals."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec, by_role
from bench.report.view import MEASURED, Fig, Para, Table, fmt
from loadlab.schema import Report
from simulator.service_load import fit_reports


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = [Para("Separate runs the simulator takes its service times from (never a run it scores). "
                              "A load factor is the mean model time at that load over the time alone; the "
                              "simulator multiplies a time drawn from the jobs alone by it.")]
    for report in reports:
        rows = []
        for stage in report.stages:
            s = stage.summary
            rows.append([stage.name, str(s.completed),
                         Fig(f"{fmt(s.service_s.mean)} s", MEASURED) if s.service_s.mean else None])
        blocks.append(Table(["stage", "jobs", "model time, mean"], rows, title=f"{report.name} ({report.target})"))
        model = fit_reports([report])
        if model is None:
            blocks.append(Para(f"{report.name}: no jobs alone and under load, so no load model (the time alone "
                               "at every load)."))
            continue
        d = model.describe()
        loo = {(e["covariate"], e["level"]): e["error"] for e in d["fit_error"]["levels"]}
        factors = [[name, f"{lvl['level']:g}", str(lvl["n"]),
                    Fig(f"× {lvl['factor']:.3f}" + (f" ± {lvl['ci95']:.3f}" if lvl["ci95"] is not None else ""),
                        MEASURED),
                    f"{100 * loo[(name, lvl['level'])]:+.1f} %"]
                   for name in ("in_system", "busy") for lvl in d[name]]
        blocks.append(Table(["load", "level", "jobs", "factor (95 % interval)", "error, predicted without it"], factors,
                            title=f"{report.name}: service time under load (alone: "
                                  + ", ".join(f"{c} {v:.2f} s, n {d['alone_n'][c]}" for c, v in d["alone_s"].items())
                                  + ")"))
    return blocks


SECTION = SectionSpec(
    "calibration", "Calibration: service time alone and under load", (MEASURED,), by_role("calibration", MEASURED),
    missing="No calibration report (role 'calibration'): run `python -m bench calibrate`.", blocks=_blocks)
