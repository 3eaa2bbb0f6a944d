"""The machine's speed across repeated calibrations (e.g. one before a run and one after), measured inputs
of a prediction's interval (simulator/validate.py `calibration_draw`):

- each calibration's speed: every warm job of it, divided by the load factor it met (not only its few
  jobs alone);
- its wander: how far the speed of one block of jobs (a stage of a calibration, a case) lies from its
  calibration's, less what its jobs' own spread explains. A run is one more block: its speed may lie off
  both calibrations by as much (in the demo of 2026-12-02 the bursts ran 3.5 % slower than either
  calibration, which lay 2 % apart), which neither the bootstrap of the jobs nor the span between the
  calibrations holds.
"""

from __future__ import annotations

import math
from typing import Any

from loadlab.schema import Report
from loadlab.stats import mean
from simulator.service_load import LoadModel, report_loads

MIN_BLOCK_JOBS = 3


def calibration_blocks(report: Report, load: LoadModel) -> dict[tuple[str, str], list[float]]:
    """A calibration's warm jobs by (stage, case), each as its time alone: service / F(the load it met).
    The drift between two calibrations measured on five jobs alone each was 0.8 %, on all their jobs 2 %
    (the demo's, 2026-12-02)."""
    stage_of = {id(j): st.name for st in report.stages for j in st.jobs}
    out: dict[tuple[str, str], list[float]] = {}
    for x in report_loads(report):
        if not x.job.cold_start:
            out.setdefault((stage_of[id(x.job)], x.job.case), []).append(x.job.service_s / load.factor(x.in_system, x.busy))
    return out


def by_case(blocks: dict[tuple[str, str], list[float]]) -> dict[str, list[float]]:
    """A calibration's speed per case: the jobs of all its blocks."""
    out: dict[str, list[float]] = {}
    for (_, case), values in blocks.items():
        out.setdefault(case, []).extend(values)
    return out


def speed_wander(calibrations: list[dict[tuple[str, str], list[float]]]) -> dict[str, Any] | None:
    """The SD of a block's speed over its calibration's (a ratio), between blocks: the blocks' squared
    deviations (with the degrees of freedom their calibrations' means took) less the mean sampling variance
    of a block's mean. `calibrations`: each one's `calibration_blocks`. None with fewer blocks of
    `MIN_BLOCK_JOBS` jobs than calibrations + 2."""
    deviations, noise, means = [], [], 0
    for every in calibrations:
        blocks = {k: v for k, v in every.items() if len(v) >= MIN_BLOCK_JOBS}
        for case in {c for _, c in blocks}:
            mine = [v for (_, c), v in blocks.items() if c == case]
            whole = mean([x for v in mine for x in v])
            means += 1
            for v in mine:
                m = mean(v)
                deviations.append(m / whole - 1.0)
                noise.append(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v) / whole ** 2)
    dof = len(deviations) - means
    if dof < 2:
        return None
    between = sum(d * d for d in deviations) / dof - mean(noise)
    return {"sd": round(math.sqrt(max(0.0, between)), 5), "blocks": len(deviations), "dof": dof,
            "method": "blocks = each calibration's stages per case, jobs / their load factor; SD of a block's "
                      "mean over its calibration's, less the sampling variance of a block mean"}
