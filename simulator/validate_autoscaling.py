"""`simulator validate` on an autoscaling run (a measured report with a `ReplicaRun`, target "rayserve"):
the run's recorded arrivals (each job's `scheduled`, else `submitted`, and case, every stage in one
continuous replay) go through the `ray-serve` policy with the run's autoscaler settings
(`config.server.autoscaling`), the service times and the replica start-up of separate calibration runs.

The simulated report is on the simulation clock: t = 0 is the measured `replicas.window` start. It
carries its own `ReplicaRun` (timeline, intervals, scale events, replica-seconds over the same window)
and the errors: per stage the rows of `simulator.validate.stage_errors`; for the whole run
(`stage=None`) replica_seconds, scale_ups, scale_downs, cold_starts (the first job of each new replica),
waited_for_start (jobs that waited for a starting replica), first_request_at_zero_e2e_s (mean end-to-end
latency of the first request of each period with no replica running) and one row per scale decision
(`scale_up_1_t_s`, ...: the measured and simulated times from the window start, `difference` =
simulated - measured in s; the k-th decision of a direction is paired with the k-th). Every figure comes
from `ReplicaRun.figures`, the same code the recorder's report uses. Run-level figures are the mean over
replications, discrete ones (counts, decision times; the median) with their distribution over the
replications and where the measured one falls (simulator/scoring.py).

The mechanics layer (`layers` holds "mechanics") replays each job's measured service time, each
replica's measured start-up (the k-th started in the replay takes the k-th measured) and the run's own
request-at-zero -> decision delay (simulator/mechanics.py); the overhead then is each job's measured one.
What the run did not record is the phase of the router's record and push grids (they drift by the
event loop's latency): the layer replays the run once per phase (`grid_lags`, evenly over a push
interval), so a decision on a knife edge shows as a distribution over the phases, not as one number.

Requests reach replicas through Ray's handle router (simulator/deployments/ray_router.py, in both layers):
a request waiting for a busy replica is sent at a routing task's next try (backoff up to 0.5 s), not
when the slot frees. The mechanics layer's part of an overhead after the slot (`after_slot_s`) is the one
at which the replay's hand-offs (next start - result at the client, over every back-to-back pair) match
the run's (simulator/mechanics.py `fitted_after_slot_s`): taken as the plain mean lead, it left out the
replay's own router wait, and the demo's loaded stages came out 9-15 % slow (2026-12-02).

The handle counts a request until its result is back, a little after the replica's slot frees for the
next request (the router sends once the replica says its method returned): `count_after_slot_s`, fitted
in the mechanics layer on the run's recorded controller total (the value of `COUNT_GRID_S` whose replay
lies closest to it, simulator/controller_total.py) and in the prediction on the calibration's; 0 where no
total was recorded. Without it the demo's replay lay 0.07 below Ray's total and decided a scale-up 1.55 s
late (2026-12-04).

Two inputs come from the calibration runs as Ray's source places them: the per-request overhead
(e2e - queue - service) is held inside the replica's slot (the router frees a replica's slot only when its
result is back: router.py `_process_finished_request`), and a fresh router's lag before its first push
(Router.update_deployment_config by long poll) is the calibration's first `coldstart.zero_to_decision_s`
(the request that created its router) less half a control period (the mean wait for the tick that
decides, which that measurement includes).
"""

from __future__ import annotations

import random

from loadlab.schema import DROPPED, JobRecord, ReplicaRun, Report, ServerConfig, Stage
from simulator.autoscaling.ray_serve import RayServeConfig
from simulator.controller_total import compare_totals, fitted_count_after_slot_s, measured_totals
from simulator.deployments.ray_router import RAY_DEFAULT_BACKOFF
from simulator.deployments.ray_serve import RayServeDeployment
from simulator.mechanics import (
    arrival_order,
    decision_delay_s,
    fitted_after_slot_s,
    handoffs,
    measured_times,
    mechanics_sampler,
    ready_times,
    replica_order,
    replica_startups,
)
from simulator.openloop import run_open_stage
from simulator.pricing import DEFAULT_PRICES
from simulator.profiles import ARTICLE_STARTUP, ServiceTimeProfile
from simulator.scoring import imprecise_cases, run_rows, stage_errors
from simulator.validate import LAYERS, base_report, calibration_draw, set_max_errors

# what --max-error checks on an autoscaling run: the stages' mean, p95, throughput, and the bill
GATED = ("mean_s", "p95_s", "throughput_per_s", "replica_seconds")
DECISION_GRACE_S = 30.0
GRID_PHASES = 8          # the mechanics layer's replays, one per phase of the router's grids


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


def config_delay_s(calibration: list[Report], config: RayServeConfig) -> tuple[float, str]:
    """A fresh router's lag before it can push, from each calibration's first request at zero (its app is
    new, so that request creates the router) -> scale-up decision (mean, less the mean wait of half a
    control period for the deciding tick); 0 when no calibration measured it. A later request at zero
    finds its router and pushes at once, which is not this lag: the mean of all of them made it 0.51 s
    for a first request measured at 0.96 s (the demo's, 2026-12-03; 0.89 / 0.25, 1.55 / 0.70 elsewhere)."""
    firsts, names = [], []
    for report in calibration:
        values = report.coldstart.zero_to_decision_s if report.coldstart else []
        if values:
            firsts.append(float(values[0]))
            names.append(report.path or report.name)
    if not firsts:
        return 0.0, "none measured: 0"
    mean_s = sum(firsts) / len(firsts)
    delay = max(0.0, mean_s - config.control_loop_interval_s / 2)
    return delay, (f"the first request at zero -> decision {mean_s:.3f} s (the router's creation) of "
                   f"{', '.join(names)} - half a control period")


def validate_autoscaling(measured: Report, profile: ServiceTimeProfile, seed: int = 1, replications: int = 5,
                         slo_e2e_s: float | None = None, calibration: list[str] | None = None,
                         layers: tuple[str, ...] = ("prediction",)) -> Report:
    if "prediction" in layers and profile.startup_from == ARTICLE_STARTUP:
        raise ValueError("no calibration run measured a replica start-up: give a --calibration report with "
                         "replica intervals (a Ray Serve run) or a bench coldstart report")
    config, ignored = ray_settings(measured)
    t0, t1 = measured.replicas.window
    index = replay_index(measured)
    measured_jobs = [j for _, j in index]
    rng = random.Random(seed)
    report = base_report(measured, profile, seed, replications, measured.config.server or ServerConfig(),
                         calibration or [])
    report.extra.update(title=f"{measured.name}: measured vs simulated autoscaling (ray-serve policy)",
                        calibration_too_few=imprecise_cases(profile.service_samples))
    calibrations = [Report.load(path) for path in calibration or []]    # read once, for both layers
    after_slot = calibrated_slot_s(calibrations, profile) if "prediction" in layers else (0.0, "", 0.0, "")
    for layer in (x for x in LAYERS if x in layers):
        replays, decisions, inputs = replay_layer(layer, measured, profile, config, calibrations, index, rng,
                                                  replications, after_slot)
        inputs.update(layer=layer, ignored_settings=ignored)
        first = layer == ("prediction" if "prediction" in layers else "mechanics")
        if first:
            # the first replication's decisions with the controller's total (queued + ongoing) behind
            # each, to read beside the controller log's "Current ongoing requests"
            report.extra.update(replay=inputs, simulated_decisions=decisions)
            report.replicas = replays[0][1]
        else:
            report.extra[f"{layer}_replay"] = inputs
            report.extra[f"{layer}_replicas"] = replays[0][1].model_dump(mode="json")
        add_stage_rows(report, measured, index, replays, t0, slo_e2e_s, layer, first)
        report.errors += run_rows(measured.replicas, measured_jobs, replays, t0, layer)
    set_max_errors(report, GATED)
    return report


def calibrated_slot_s(calibration: list[Report], profile: ServiceTimeProfile) -> tuple[float, str, float, str]:
    """The prediction's part of an overhead after the slot and the handle's count after it: each
    calibration that recorded its replicas replayed in the mechanics layer, the parts fitted there
    (`fitted_after_slot_s`, `fitted_count_after_slot_s`), their means; 0 without."""
    after, counted, names, counted_names = [], [], [], []
    for report in calibration:
        if not is_autoscaling_run(report):
            continue
        config, _ = ray_settings(report)
        # only the fits are read, but over every grid phase as the run's own mechanics fit is: on one phase
        # the count lag fitted a demo calibration 0.40 s, on all eight 0.30 s (2026-12-07)
        inputs = replay_layer("mechanics", report, profile, config, [], replay_index(report), random.Random(0), 1)[2]
        after.append(inputs["after_slot_s"])
        names.append(report.path or report.name)
        if inputs["controller_total"] is not None:
            counted.append(inputs["count_after_slot_s"])
            counted_names.append(report.path or report.name)
    fitted = "fitted on the mechanics replay of "
    return (sum(after) / len(after) if after else 0.0,
            fitted + ", ".join(names) if after else "none: no calibration recorded its replicas",
            sum(counted) / len(counted) if counted else 0.0,
            fitted + ", ".join(counted_names) + "'s controller total" if counted
            else "none: no calibration recorded the controller's total")


def replay_layer(layer: str, measured: Report, profile: ServiceTimeProfile, config: RayServeConfig,
                 calibration: list[Report], index: list[tuple[int, JobRecord]], rng: random.Random,
                 replications: int, after_slot: tuple[float, str, float, str] = (0.0, "", 0.0, ""),
                 phases: int = GRID_PHASES):
    """One layer's replications: (jobs, ReplicaRun) each, the first one's decisions, and its inputs. The
    mechanics layer replays once per grid phase (`phases`; 1: the lag-0 grid alone)."""
    (t0, t1), mechanics, startups = measured.replicas.window, layer == "mechanics", []
    initial_running, startup_s = measured.replicas.running_at(t0), profile.provision_s + profile.load_s
    after_s, after_from, counted_s, counted_from = after_slot
    if mechanics:
        startups = replica_startups(measured.replicas, t0)
        own = decision_delay_s([j for _, j in index], measured.replicas, config.control_loop_interval_s / 2)
        delay_s, delay_from = (own, "the run's own request at zero -> decision - half a control period") \
            if own is not None else config_delay_s(calibration, config)
        startup_s = startups[-1] if startups else startup_s
        arrivals = mechanics_arrivals(measured.replicas, [j for _, j in index])
    else:
        delay_s, delay_from = config_delay_s(calibration, config)
        arrivals = [(j.origin - t0, j.case) for _, j in index]

    def build(after: float, draw: random.Random, lags: list[float] | None = None, counted: float = 0.0):
        phases = iter(lags or [])

        def make(env, ledger, _rng):
            # the overhead is spent inside the replica's slot (its result travelling back), not after it
            drawn = profile if mechanics else calibration_draw(profile, draw)
            sample = drawn.sampler(draw)
            # a predicted replica takes one measured start-up (of its load), not the mean: see startup_source
            start = None if mechanics else drawn.startup_sampler(draw)
            lag = next(phases, None)
            lag = draw.uniform(0.0, config.metrics_interval_s) if lag is None else lag
            return RayServeDeployment(env, ledger, mechanics_sampler(sample) if mechanics else sample, config,
                                      DEFAULT_PRICES, startup_s=startup_s, initial_running=initial_running,
                                      router_at_start=initial_running > 0, record_timeline=True,
                                      return_s=profile.overhead_sampler(draw), config_delay_s=delay_s,
                                      startups=startups, after_slot_s=after, grid_lag_s=lag, draw_startup=start,
                                      count_after_slot_s=counted)
        return make

    recorded = measured_totals(measured.replicas)
    lags = grid_lags(config, phases) if mechanics else None
    if mechanics:          # the two parts of an overhead's timing the run itself measured
        after_s = fitted_handoff(build, arrivals, t1 - t0, grid_lags(config, 1), [j for _, j in index])
        after_from = "fitted on the run's own hand-offs (each job's measured times)"
        counted_s, counted_from = fitted_count_lag(lambda counted, draw, lags: build(after_s, draw, lags, counted),
                                                   arrivals, t1 - t0, lags, recorded)
    replays, decisions, totals = replay(build(after_s, rng, lags, counted_s), arrivals, t1 - t0, rng,
                                        len(lags) if mechanics else replications, [t for t, _ in recorded])
    inputs = {"window": [t0, t1], "initial_running": initial_running, "startup_s": startup_s,
              "startup_from": startup_source(profile, mechanics, startups), "measured_startups_s": startups, "after_slot_s": after_s, "after_slot_from": after_from, "router_at_start": initial_running > 0,
              "settings": config.__dict__, "config_delay_s": delay_s, "config_delay_from": delay_from,
              "router_backoff": RAY_DEFAULT_BACKOFF.__dict__, "grid_lags_s": lags if mechanics else
              f"uniform on [0, {config.metrics_interval_s}) s, one a replication",
              "count_after_slot_s": counted_s, "count_after_slot_from": counted_from,
              "controller_total": compare_totals(recorded, totals),
              "overhead": "inside the replica's slot (" + ("each job's measured e2e - queue - service)" if mechanics
                                                           else "calibration e2e - queue - service)")}
    return replays, decisions, inputs


def fitted_handoff(build, arrivals: list[tuple], window: float, lags: list[float], jobs: list[JobRecord]) -> float:
    """The mechanics layer's part of an overhead after the slot: trial replays (`build(after, draw, lags)`,
    on their own random stream) whose hand-offs match the run's (`fitted_after_slot_s`)."""
    def handoff(after: float) -> float | None:
        trial = random.Random(0)
        gaps = handoffs(replay(build(after, trial, lags), arrivals, window, trial, 1)[0][0][0], lambda j: j.served_by)
        return sum(gaps) / len(gaps) if gaps else None
    return fitted_after_slot_s(jobs, handoff)


def fitted_count_lag(build, arrivals: list[tuple], window: float, lags: list[float],
                     recorded: list[tuple[float, float]]) -> tuple[float, str]:
    """The mechanics layer's handle count after a slot, and where it came from: trial replays at each
    candidate (`build(counted, draw, lags)`, one a grid phase) set against the run's recorded controller
    total."""
    probes = [t for t, _ in recorded]

    def totals_of(counted: float) -> list[list[float]]:
        trial = random.Random(0)
        return replay(build(counted, trial, lags), arrivals, window, trial, len(lags), probes)[2]
    fitted = fitted_count_after_slot_s(recorded, totals_of)
    if fitted is None:
        return 0.0, "none: the run recorded no controller total"
    return fitted, "fitted on the run's recorded controller total"


def mechanics_arrivals(run: ReplicaRun, jobs: list[JobRecord]) -> list[tuple]:
    """A mechanics replay's arrivals: (t from the window's start, case, measured service s, overhead s,
    the replica that served it by start order), so that the router sends each where the run did."""
    t0 = run.window[0]
    ready, order = ready_times(run), replica_order(run)
    return [(j.origin - t0, j.case, *measured_times(j, ready.get(j.extra.get("replica_id"))),
             order.get(j.extra.get("replica_id"))) for j in jobs]


def startup_source(profile: ServiceTimeProfile, mechanics: bool, startups: list[float]) -> str:
    """Where a layer's replica start-ups come from. A prediction draws one measured start-up a replica, of
    replicas asked for beside as many busy ones: a first request at zero waits for a whole start-up, so the
    interval of that figure is their spread, not the mean's."""
    if mechanics:
        return "measured, the k-th replica the k-th" if startups else "the mean"
    if not profile.startup_samples:
        return "the mean"
    measured = ", ".join(f"{len(v)} at {busy} busy" for busy, v in sorted(profile.startup_samples.items()))
    return (f"each replica one of the calibration's start-ups beside as many busy replicas, resampled each "
            f"replication (measured: {measured})")


def grid_lags(config: RayServeConfig, phases: int = GRID_PHASES) -> list[float]:
    """The mechanics layer's lags of the router's record and push grids, evenly over one push interval:
    the run recorded no push, and its grid drifts by the event loop's latency (RouterMetrics), so each
    phase is a replay of its own and a decision is shown over the phases."""
    return [config.metrics_interval_s * k / phases for k in range(phases)]


def replay_index(measured: Report) -> list[tuple[int, JobRecord]]:
    """Every job of every stage (not dropped) with its stage's index, by arrival: one replay, because the
    autoscaler carries its state across stages."""
    index: list[tuple[int, JobRecord]] = []
    for s_i, stage in enumerate(measured.stages):
        index += [(s_i, j) for j in stage.jobs if j.status != DROPPED]
    index.sort(key=lambda x: arrival_order(x[1]))
    return index


def replay(make, arrivals: list[tuple[float, str]], window: float, rng: random.Random,
           replications: int, probes: list[float] = ()) -> tuple[list[tuple[list[JobRecord], ReplicaRun]], list[dict],
                                                                   list[list[float]]]:
    """Each replication's jobs and replicas over the window (its replica-seconds clipped to it), the
    first replication's decisions, and each one's controller total at the `probes` times. The replay runs
    `DECISION_GRACE_S` past the window: the recording ends once the deployment is back at rest, so a
    simulated last decision a little later than the measured one is paired with it, not lost."""
    replays, decisions, totals = [], [], []
    for _ in range(max(1, replications)):
        stage, dep = run_open_stage(make, arrivals, lambda case: 0.0, rng, "run",
                                    until_s=window + 86400.0, at_least_s=window + DECISION_GRACE_S)
        replays.append((stage.jobs, dep.replica_run(window)))
        totals.append(dep.policy.totals_at(list(probes)))
        if len(replays) == 1:
            decisions = [{"t": t, "to": to, "total_requests": total} for t, to, total in dep.policy.decisions]
    return replays, decisions, totals


def add_stage_rows(report: Report, measured: Report, index: list[tuple[int, JobRecord]], replays, t0: float,
                   slo_e2e_s: float | None, layer: str, shown: bool) -> None:
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
        if shown:
            report.stages.append(sims[0])
        thin = layer == "prediction" and bool({j.case for j in mstage.jobs} & set(report.extra["calibration_too_few"]))
        report.errors += stage_errors(mstage, sims, scored=True, layer=layer, calibration_too_few=thin)
