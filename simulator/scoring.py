"""The scoring both validators share (simulator/validate.py, simulator/validate_autoscaling.py): one
`ErrorRow` per stage and metric with the measured figure's 95 % interval, the simulated one's 95 %
prediction interval over the replications and whether the first lies inside the second; the discrete
outcomes of a replicated run (scale events, their times, cold starts) as a distribution over the
replications with the measured one placed in it.

Measured intervals (loadlab.stats): a stage whose jobs arrive over time (open loop, trace, a closed loop
held for a duration) takes a moving-block bootstrap of its jobs in arrival order (waits in one queue are
correlated); a burst (every job submitted at once) is one realisation whose figures scale with the
service time (FIFO: mean = (n+1)/2 x S), so its interval is the figure scaled by the bootstrap interval
of its mean service time. A prediction row whose measured interval is wider than +-10 % is marked
`too_few` ("too few jobs"): shown, never scored; when it is the mean's, every row of the stage is. A mechanics row (the same jobs replayed) is a paired
comparison: no sampling noise between the two sides, so it carries no interval and is scored, except a
throughput of fewer than 10 jobs (`too_few_to_count`: a count whose resolution is one job)."""

from __future__ import annotations

import numpy as np

from loadlab.schema import COMPLETED, ErrorRow, ReplicaRun, Stage
from loadlab.stats import (
    PRECISION,
    block_bootstrap_ci,
    discrete_distribution,
    inside,
    mean,
    precise_enough,
    prediction_interval,
    rank_share,
    relative_error,
)

# metric of an ErrorRow -> key of Stage.summary
METRICS = {"mean_s": "mean", "p95_s": "p95", "p99_s": "p99", "slo_attainment": "slo_attainment",
           "throughput_per_s": "throughput_per_s"}
STATISTIC = {"mean_s": np.mean, "p95_s": lambda a: np.percentile(a, 95), "p99_s": lambda a: np.percentile(a, 99)}
PRECISION_METRICS = ("mean_s", "p95_s", "p99_s", "slo_attainment")


def is_burst(stage: Stage) -> bool:
    return bool(stage.jobs_per_user) and not stage.duration_s and len({j.submitted for j in stage.jobs}) <= (
        stage.concurrency or 1)


def measured_ci(stage: Stage, metric: str, value: float | None) -> tuple[float, float] | None:
    """The 95 % interval of a measured stage figure (see the module's docstring); None when it has none."""
    if value is None or metric not in PRECISION_METRICS:
        return None
    jobs = sorted(stage.jobs, key=lambda j: j.origin)
    done = [j for j in jobs if j.status == COMPLETED and j.e2e_s is not None]
    if is_burst(stage) and metric != "slo_attainment":
        services = [j.service_s for j in done if j.service_s is not None]
        ci = block_bootstrap_ci(services, np.mean)
        base = mean(services)
        return None if ci is None or not base else (value * ci[0] / base, value * ci[1] / base)
    if metric == "slo_attainment":
        slo = stage.slo_e2e_s
        hits = [1.0 if j.status == COMPLETED and j.e2e_s is not None and j.e2e_s <= slo else 0.0 for j in jobs]
        return block_bootstrap_ci(hits, np.mean)
    return block_bootstrap_ci([j.e2e_s for j in done], STATISTIC[metric])


def imprecise_cases(service_samples: dict[str, list[float]]) -> list[str]:
    """The cases whose calibrated mean service time is not known to +-10 % (95 % interval, or fewer than 5
    samples): a prediction from them cannot support a +-10 % statement either."""
    return sorted(case for case, values in service_samples.items()
                  if not precise_enough(block_bootstrap_ci(values, np.mean), mean(values)))


def stage_errors(mstage: Stage, sims: list[Stage], scored: bool, layer: str = "prediction",
                 calibration_too_few: bool = False) -> list[ErrorRow]:
    """One row per metric: the measured stage's figure against the mean of the simulated ones. A
    prediction from a calibration too small for +-10 % (`calibration_too_few`) is "too few jobs" too."""
    ms = mstage.summary
    rows = []
    stage_too_few = calibration_too_few
    for metric, key in METRICS.items():
        if key == "slo_attainment" and mstage.slo_e2e_s is None:
            continue
        values = [v for s in sims if (v := getattr(s.summary, key)) is not None]
        sim, value = mean(values), getattr(ms, key)
        row = ErrorRow(stage=mstage.name, metric=metric, measured=value, simulated=sim,
                       error=relative_error(sim, value), scored=scored, layer=layer, jobs=len(mstage.jobs))
        if metric == "throughput_per_s" and too_few_to_count(ms):
            row.too_few = True
        if layer == "prediction":
            row.measured_ci = measured_ci(mstage, metric, value)
            row.simulated_pi = prediction_interval(values, floor=0.0)   # every stage figure is >= 0
            row.inside = inside(value, row.simulated_pi)
            # the mean's interval decides for the whole stage; a tail figure or the SLO also by its own
            own = metric in PRECISION_METRICS and not precise_enough(row.measured_ci, value)
            stage_too_few = stage_too_few or (metric == "mean_s" and own)
            row.too_few = own or stage_too_few
        rows.append(row)
    return rows


def too_few_to_count(summary) -> bool:
    """A throughput is a count of jobs finished inside the stage: below 1 / PRECISION of them one job
    more or less (one finishing a hair either side of the stage's end) moves it by more than +-10 %, in
    either layer, so it is shown and not scored."""
    if summary.throughput_per_s is None or not summary.wall_s:
        return True
    return round(summary.throughput_per_s * summary.wall_s) < round(1 / PRECISION)


def run_rows(measured_run: ReplicaRun, measured_jobs, replays, t0: float, layer: str) -> list[ErrorRow]:
    """The whole run's figures (the mean over replications; their distribution and where the measured one
    falls), then each scale decision's time (the median over the replications that made it)."""
    m = measured_run.figures(measured_jobs)
    sims = [run.figures(jobs) for jobs, run in replays]
    rows = []
    for metric, value, values, discrete in (
            ("replica_seconds", m.replica_seconds, [f.replica_seconds for f in sims], False),
            ("scale_ups", m.scale_ups, [f.scale_ups for f in sims], True),
            ("scale_downs", m.scale_downs, [f.scale_downs for f in sims], True),
            ("cold_starts", m.cold_starts, [f.cold_starts for f in sims], True),
            ("waited_for_start", m.waited_for_start, [f.waited_for_start for f in sims], True),
            ("first_request_at_zero_e2e_s", m.first_request_at_zero_mean_s,
             [f.first_request_at_zero_mean_s for f in sims], False)):
        rows.append(run_row(metric, None if value is None else float(value), values, layer, discrete))
    rows += decision_rows(measured_run, [run for _, run in replays], t0, layer)
    return rows


def run_row(metric: str, value: float | None, values: list, layer: str, discrete: bool) -> ErrorRow:
    present = [float(v) for v in values if v is not None]
    sim = mean(present)
    row = ErrorRow(stage=None, metric=metric, measured=value, simulated=sim, error=relative_error(sim, value),
                   difference=None if sim is None or value is None else sim - value, layer=layer)
    if discrete:
        row.distribution = discrete_distribution(present, gap=0.5)
        row.quantile = rank_share(present, value) if value is not None and present else None
    elif layer == "prediction":
        row.simulated_pi = prediction_interval(present, floor=0.0)
        row.inside = inside(value, row.simulated_pi)
    return row


def decision_rows(measured: ReplicaRun, simulated: list[ReplicaRun], t0: float, layer: str) -> list[ErrorRow]:
    """The k-th decision of a direction paired with the k-th: measured and simulated times from the window
    start, `difference` = simulated (median over replications) - measured in s, the replications' times."""
    rows = []
    for direction in ("up", "down"):
        m = measured.decisions(direction)
        s = [run.decisions(direction) for run in simulated]
        for k in range(max([len(m), *(len(x) for x in s)])):
            mt = m[k].t - t0 if k < len(m) else None
            times = [x[k].t if k < len(x) else None for x in s]
            present = [t for t in times if t is not None]
            st = float(np.median(present)) if present else None
            rows.append(ErrorRow(stage=None, metric=f"scale_{direction}_{k + 1}_t_s", measured=mt, simulated=st,
                                 error=None, difference=None if mt is None or st is None else st - mt, layer=layer,
                                 distribution=discrete_distribution(times, gap=2.0, unit=" s"),
                                 quantile=rank_share(present, mt) if mt is not None and present else None))
    return rows


def layer_max_abs_error_pct(errors: list[ErrorRow], metrics, layer: str = "prediction") -> float | None:
    """Largest |error| of the scored rows of one layer (a "too few jobs" row is no score)."""
    values = [abs(e.error) for e in errors if e.scored and not e.too_few and e.layer == layer
              and e.metric in metrics and e.error is not None]
    return 100 * max(values) if values else None
