"""`simulator validate` on an autoscaling run (a measured report with a `ReplicaRun`, target "rayserve"):
the run's recorded arrivals (each job's `scheduled`, else `submitted`, and case, every stage in one
continuous replay) go through the `ray-serve` policy with the run's autoscaler settings
(`config.server.autoscaling`), the service times and the replica start-up of separate calibration runs.

The simulated report is on the simulation clock: t = 0 is the measured `replicas.window` start. It
carries its own `ReplicaRun` (timeline, intervals, scale events, replica-seconds over the same window)
and the errors: per stage the rows of `simulator.validate.stage_errors`; for the whole run
(`stage=None`) replica_seconds, scale_ups, scale_downs, cold_starts (jobs that waited for their replica
to start), first_request_at_zero_e2e_s (mean end-to-end latency of the first request of each period
with no replica running) and one row per scale decision (`scale_up_1_t_s`, ...: the measured and
simulated times from the window start, `difference` = simulated - measured in s; the k-th decision of
a direction is paired with the k-th). Run-level figures are the mean over replications; decision times
come from the first replication.

Two inputs come from the calibration runs as Ray's source places them: the per-request overhead
(e2e - queue - service) is held inside the replica's slot (the router frees a replica's slot only when its
result is back: router.py `_process_finished_request`), and a fresh router's lag before its first push
(Router.update_deployment_config by long poll) is the calibration's `coldstart.zero_to_decision_s` less
half a control period (the mean wait for the tick that decides, which that measurement includes).
"""

from __future__ import annotations

import random

from loadlab.schema import DROPPED, ErrorRow, JobRecord, ReplicaRun, Report, ServerConfig, Stage
from loadlab.stats import mean, relative_error
from simulator.autoscaling.ray_serve import RayServeConfig
from simulator.deployments.ray_serve import RayServeDeployment
from simulator.openloop import run_open_stage
from simulator.pricing import DEFAULT_PRICES
from simulator.profiles import ARTICLE_STARTUP, ServiceTimeProfile
from simulator.validate import base_report, max_abs_error_pct, stage_errors

# what --max-error checks on an autoscaling run: the stages' mean, p95, throughput, and the bill
GATED = ("mean_s", "p95_s", "throughput_per_s", "replica_seconds")


def is_autoscaling_run(report: Report) -> bool:
    server = report.config.server
    return report.replicas is not None and server is not None and server.autoscaling is not None


def ray_settings(measured: Report) -> tuple[RayServeConfig, list[str]]:
    """The autoscaler settings of the run, and the keys of `config.server.autoscaling` the model has not."""
    settings = dict(measured.config.server.autoscaling)
    known = set(RayServeConfig.__dataclass_fields__)
    ignored = sorted(set(settings) - known)
    config = RayServeConfig.from_dict({k: v for k, v in settings.items() if k in known})
    return config, ignored


def running_at(run: ReplicaRun, t: float) -> int:
    """Replicas able to serve at t (ready <= t < end)."""
    return sum(1 for i in run.intervals if i.ready is not None and i.ready <= t and (i.end is None or t < i.end))


def first_requests_at_zero(jobs: list[JobRecord], run: ReplicaRun) -> list[JobRecord]:
    """The first request of each period with no replica running (jobs and replicas on one clock)."""
    firsts, previous = [], None
    for job in sorted(jobs, key=lambda j: j.origin):
        t = job.origin
        if running_at(run, t) == 0:
            ran_between = previous is None or running_at(run, previous) > 0 or any(
                i.ready is not None and previous < i.ready <= t for i in run.intervals)
            if ran_between:
                firsts.append(job)
        previous = t
    return firsts


def run_figures(jobs: list[JobRecord], run: ReplicaRun) -> dict[str, float | None]:
    firsts = [j.e2e_s for j in first_requests_at_zero(jobs, run) if j.e2e_s is not None]
    return {"replica_seconds": run.replica_seconds,
            "scale_ups": float(sum(e.direction == "up" for e in run.events)),
            "scale_downs": float(sum(e.direction == "down" for e in run.events)),
            "cold_starts": float(sum(j.cold_start for j in jobs)),
            "first_request_at_zero_e2e_s": mean(firsts)}


def decision_rows(measured: ReplicaRun, simulated: ReplicaRun, t0: float) -> list[ErrorRow]:
    rows = []
    for direction in ("up", "down"):
        m = [e for e in measured.events if e.direction == direction]
        s = [e for e in simulated.events if e.direction == direction]
        for k in range(max(len(m), len(s))):
            mt = m[k].t - t0 if k < len(m) else None
            st = s[k].t if k < len(s) else None
            rows.append(ErrorRow(stage=None, metric=f"scale_{direction}_{k + 1}_t_s", measured=mt, simulated=st,
                                 error=None, difference=None if mt is None or st is None else st - mt))
    return rows


def config_delay_s(calibration: list[str] | None, config: RayServeConfig) -> tuple[float, str]:
    """A fresh router's lag before it can push, from the calibration runs' request-at-zero -> scale-up
    decision times (mean, less the mean wait of half a control period for the deciding tick); 0 when no
    calibration measured it."""
    measured: list[float] = []
    names = []
    for path in calibration or []:
        coldstart = Report.load(path).coldstart
        values = coldstart.zero_to_decision_s if coldstart else []
        if values:
            measured += [float(v) for v in values]
            names.append(path)
    if not measured:
        return 0.0, "none measured: 0"
    delay = max(0.0, mean(measured) - config.control_loop_interval_s / 2)
    return delay, f"mean zero_to_decision_s {mean(measured):.3f} s of {', '.join(names)} - half a control period"


def validate_autoscaling(measured: Report, profile: ServiceTimeProfile, seed: int = 1, replications: int = 5,
                         slo_e2e_s: float | None = None, calibration: list[str] | None = None) -> Report:
    if profile.startup_from == ARTICLE_STARTUP:
        raise ValueError("no calibration run measured a replica start-up: give a --calibration report with "
                         "replica intervals (a Ray Serve run) or a bench coldstart report")
    config, ignored = ray_settings(measured)
    t0, t1 = measured.replicas.window
    initial_running = running_at(measured.replicas, t0)
    startup_s = profile.provision_s + profile.load_s
    delay_s, delay_from = config_delay_s(calibration, config)
    index = replay_index(measured)
    rng = random.Random(seed)

    def make(env, ledger, _rng):
        # the overhead is spent inside the replica's slot (its result travelling back), not after it
        return RayServeDeployment(env, ledger, profile.sampler(rng), config, DEFAULT_PRICES, startup_s=startup_s,
                                  initial_running=initial_running, router_at_start=initial_running > 0,
                                  record_timeline=True, return_s=profile.overhead_sampler(rng),
                                  config_delay_s=delay_s)

    replays, decisions = replay(make, [(j.origin - t0, j.case) for _, j in index], t1 - t0, rng, replications)
    report = base_report(measured, profile, seed, replications, measured.config.server or ServerConfig(),
                         calibration or [])
    report.extra.update(title=f"{measured.name}: measured vs simulated autoscaling (ray-serve policy)",
                        replay={"window": [t0, t1], "initial_running": initial_running, "startup_s": startup_s,
                                "router_at_start": initial_running > 0, "settings": config.__dict__,
                                "overhead": "inside the replica's slot (calibration e2e - queue - service)",
                                "config_delay_s": delay_s, "config_delay_from": delay_from,
                                "ignored_settings": ignored},
                        # the first replication's decisions with the controller's total (queued + ongoing)
                        # behind each, to read beside the controller log's "Current ongoing requests"
                        simulated_decisions=decisions)
    report.replicas = replays[0][1]
    add_stage_rows(report, measured, index, replays, t0, slo_e2e_s)
    add_run_rows(report, measured, [j for _, j in index], replays, t0)
    report.extra["max_abs_error_pct"] = max_abs_error_pct(report.errors, GATED)
    return report


def replay_index(measured: Report) -> list[tuple[int, JobRecord]]:
    """Every job of every stage (not dropped) with its stage's index, by arrival: one replay, because the
    autoscaler carries its state across stages."""
    index: list[tuple[int, JobRecord]] = []
    for s_i, stage in enumerate(measured.stages):
        index += [(s_i, j) for j in stage.jobs if j.status != DROPPED]
    index.sort(key=lambda x: x[1].origin)
    return index


def replay(make, arrivals: list[tuple[float, str]], window: float, rng: random.Random,
           replications: int) -> tuple[list[tuple[list[JobRecord], ReplicaRun]], list[dict]]:
    """Each replication's jobs and replicas over the window, and the first replication's decisions."""
    replays, decisions = [], []
    for _ in range(max(1, replications)):
        stage, dep = run_open_stage(make, arrivals, lambda case: 0.0, rng, "run",
                                    until_s=window + 86400.0, at_least_s=window)
        replays.append((stage.jobs, dep.replica_run(window)))
        if len(replays) == 1:
            decisions = [{"t": t, "to": to, "total_requests": total} for t, to, total in dep.policy.decisions]
    return replays, decisions


def add_stage_rows(report: Report, measured: Report, index: list[tuple[int, JobRecord]], replays, t0: float,
                   slo_e2e_s: float | None) -> None:
    """Per stage: the simulated jobs back in their measured stages (with its dropped ones), scored."""
    for s_i, mstage in enumerate(measured.stages):
        if not mstage.jobs:
            continue
        slo = slo_e2e_s if slo_e2e_s is not None else (mstage.slo_e2e_s or measured.config.slo_e2e_s)
        mstage = mstage.model_copy(update={"slo_e2e_s": slo})
        start = (mstage.started_at if mstage.started_at is not None else min(j.origin for j in mstage.jobs)) - t0
        sims = []
        for jobs, _ in replays:
            mine = [jobs[k] for k, (owner, _) in enumerate(index) if owner == s_i]
            dropped = [JobRecord(case=j.case, status=DROPPED, submitted=j.submitted - t0, scheduled=j.origin - t0)
                       for j in mstage.jobs if j.status == DROPPED]
            sims.append(Stage(name=mstage.name, duration_s=mstage.duration_s, started_at=start,
                              arrival_rate_per_s=mstage.arrival_rate_per_s, concurrency=mstage.concurrency,
                              slo_e2e_s=slo, jobs=mine + dropped))
        report.stages.append(sims[0])
        report.errors += stage_errors(mstage, sims, scored=True)


def add_run_rows(report: Report, measured: Report, measured_jobs: list[JobRecord], replays, t0: float) -> None:
    """The whole run: its figures (mean over replications) and the first replication's decision times."""
    m = run_figures(measured_jobs, measured.replicas)
    sim = [run_figures(jobs, run) for jobs, run in replays]
    for metric, value in m.items():
        s = mean(v for f in sim if (v := f[metric]) is not None)
        report.errors.append(ErrorRow(stage=None, metric=metric, measured=value, simulated=s,
                                      error=relative_error(s, value),
                                      difference=None if s is None or value is None else s - value))
    report.errors += decision_rows(measured.replicas, replays[0][1], t0)
