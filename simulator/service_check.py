"""The calibration checked against a validated run: did the run's jobs take the service time the
calibration predicts at the loads they met? A diagnostic shown beside the scores, never an input: the
prediction stays fitted on the calibration alone.

Why: a prediction is only as good as the speed it was calibrated at, and a machine drifts (another
process, a noisy neighbour, a new server process: ×1.16-1.28 seen on this project's machines). When the
run's own model time is off the calibration's, every wait figure downstream is off more; this says so,
with its interval, instead of leaving a user to guess whether the queue model or the speed was wrong.

Per stage: the ratio of the run's mean service time to the mean the profile predicts for the same jobs
(each job: its case's time alone x the load model's factor at the in_system and busy it met, from the
run's own timestamps), and a 95 % interval by a block bootstrap of the per-job ratios in start order.
First jobs of a new replica are left out (they have their own calibrated time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loadlab.schema import Report
from loadlab.stats import block_bootstrap_ci, mean
from simulator.profiles import ServiceTimeProfile
from simulator.service_load import job_loads

# a run slower or faster than its calibration by more than this (and its interval excluding 1) is flagged
TOLERANCE = 0.05


@dataclass(frozen=True)
class ServiceCheck:
    stage: str | None          # None: the whole run
    n: int
    measured_s: float | None   # the run's mean service time
    predicted_s: float | None  # the calibration's at the same jobs' loads
    ratio: float | None        # measured / predicted
    ci95: tuple[float, float] | None

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "no jobs"
        if self.ci95 is None:
            return "too few jobs"
        lo, hi = self.ci95
        if not lo <= 1 <= hi and abs(self.ratio - 1) > TOLERANCE:
            return "slower than calibrated" if self.ratio > 1 else "faster than calibrated"
        return "as calibrated"

    def to_dict(self) -> dict:
        return {"stage": self.stage, "n": self.n, "measured_s": self.measured_s, "predicted_s": self.predicted_s,
                "ratio": self.ratio, "ci95": self.ci95, "verdict": self.verdict}


def expected_s(profile: ServiceTimeProfile, case: str, in_system: int, busy: int) -> float | None:
    """The profile's mean service time of a job of `case` at that load (None: a case it does not know)."""
    if case not in profile.cases:
        return None
    factor = profile.load.factor(in_system, busy) if profile.load is not None else 1.0
    return profile.mean_service_s(case) * factor


def check_jobs(name: str | None, loads, profile: ServiceTimeProfile) -> ServiceCheck:
    pairs = []
    for x in sorted(loads, key=lambda x: x.job.started):
        if x.job.cold_start:
            continue
        e = expected_s(profile, x.job.case, x.in_system, x.busy)
        if e:
            pairs.append((x.job.service_s, e))
    if not pairs:
        return ServiceCheck(name, 0, None, None, None, None)
    measured, predicted = mean([p[0] for p in pairs]), mean([p[1] for p in pairs])
    ratios = [m / e for m, e in pairs]
    ci = block_bootstrap_ci(ratios, np.mean)
    return ServiceCheck(name, len(pairs), measured, predicted, measured / predicted, ci)


def service_checks(measured: Report, profile: ServiceTimeProfile) -> list[ServiceCheck]:
    """Each stage's check, then the whole run's (one clock: a stage's jobs meet the next stage's)."""
    loads = job_loads([j for s in measured.stages for j in s.jobs])
    by_stage = {id(j): s.name for s in measured.stages for j in s.jobs}
    rows = [check_jobs(s.name, [x for x in loads if by_stage[id(x.job)] == s.name], profile)
            for s in measured.stages if s.jobs]
    return [*rows, check_jobs(None, loads, profile)]
