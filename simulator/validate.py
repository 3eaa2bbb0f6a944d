"""Replaying every stage of a measured run in the simulator and scoring it (the command,
`python -m simulator validate --measured REPORT [--calibration C ...] [--service both|measured|calibrated]`,
is `simulator/validate_command.py`).

Service times, the client overhead (e2e - queue - service) and replica start-up come from separate
calibration runs (`--calibration`: a `bench single` report or any measured report), never from the run
being validated. Without one, they come from the run's own N=1 stage (else all its stages), as before,
and the stages they came from are shown but not scored (`scored=False`).

Replays: the open-loop stages (their jobs carry `scheduled` times, or the run's load mode is open/trace)
are replayed as the one stream of exact arrival times and cases the server met (a stage starts with the
queue the one before left); a closed-loop or burst stage with its concurrency,
duration or jobs per user and case mix. The server is the run's: workers / max batch
(report.config.server; default 1). Errors are (simulated - measured) / measured of the mean, p95, p99,
SLO attainment (when the stage has an SLO or `--slo-e2e` is given) and throughput of each stage; the
simulated figure is the mean of `replications` runs, with intervals on both sides (simulator/scoring.py).
A stage whose case's calibrated mean service time is not known to +-10 % (`extra["calibration_too_few"]`)
is "too few jobs" in the prediction layer, like a stage too small itself.
Each prediction replication draws from its own bootstrap resample of the calibration's service times
(`calibration_draw`), so that the prediction interval carries the calibration's own uncertainty (its
finite sample), not only the replay's; the machine's drift between calibration and run it does not see.

Two layers (`layers`): "prediction" draws service times from the calibration, as above; "mechanics"
replays each job's measured service time and client overhead (simulator/mechanics.py) and, on one
worker, its measured hold after each job (the server's own per-job work), so that for the FIFO job server
only the model of the queue remains (near-exact by construction). Each row says its
`layer`; the simulated stages are the prediction's (the mechanics' when it runs alone).

Output: a `loadlab.schema.Report` with role "validation": the simulated stages (first replication),
`errors` (one `ErrorRow` per layer, stage and metric), `extra["title"]`, `extra["max_abs_error_pct"]`
(largest |error| of the scored mean, p95 and throughput rows of the prediction layer, else of the
mechanics layer, in %: what `--max-error` checks) and `extra["max_abs_error_pct_by_layer"]`.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable

from loadlab.schema import (
    DROPPED,
    ErrorRow,
    JobRecord,
    Report,
    RunConfig,
    ServerConfig,
    SimulationConfig,
    Stage,
)
from loadlab.stats import mean
from simulator.closedloop import run_stage
from simulator.mechanics import arrival_order, held_times, mechanics_sampler, worker_holds
from simulator.openloop import run_open_stage
from simulator.profiles import ServiceTimeProfile, from_report
from simulator.scenarios import Scenario, scenario
from simulator.scoring import METRICS, imprecise_cases, layer_max_abs_error_pct, stage_errors

__all__ = ["METRICS", "stage_errors", "validate"]
LAYERS = ("prediction", "mechanics")
GATED = ("mean_s", "p95_s", "throughput_per_s")     # what --max-error checks, as it always did
COLUMNS = [("mean_s", "mean s", 2), ("p95_s", "p95 s", 2), ("p99_s", "p99 s", 2), ("slo_attainment", "SLO att.", 3),
           ("throughput_per_s", "thr /s", 4)]


def fitted_stages(measured: Report, profile: ServiceTimeProfile) -> set[str]:
    """The measured stages the profile's values came from (none when they came from other runs)."""
    return {name for report, stages in profile.fitted_on if report == measured.name for name in stages}


def is_open_loop(measured: Report, stage: Stage) -> bool:
    load = measured.config.load
    return any(j.scheduled is not None for j in stage.jobs) or (load is not None and load.mode in ("open", "trace"))


def base_report(measured: Report, profile: ServiceTimeProfile, seed: int, replications: int,
                server: ServerConfig, calibration: list[str]) -> Report:
    return Report(role="validation", kind="simulated", name=f"validate-{measured.name}", target=measured.target,
                  cases=list(measured.cases), environment={"simulator": "simpy", "seed": seed},
                  model=profile.describe(),
                  config=RunConfig(driver="simulator validate", cases=measured.config.cases, server=server,
                                   load=measured.config.load, slo_e2e_s=measured.config.slo_e2e_s,
                                   simulation=SimulationConfig(seed=seed, replications=replications,
                                                               measured=measured.path or measured.name,
                                                               calibration=", ".join(calibration) or None)))


def validate(measured: Report, profile: ServiceTimeProfile | None = None, seed: int = 1, replications: int = 5,
             slo_e2e_s: float | None = None, calibration: list[str] | None = None,
             layers: tuple[str, ...] = ("prediction",)) -> Report:
    """The simulated report of `measured`'s stages with measured-vs-simulated `errors`, per layer."""
    profile = profile or from_report(measured)
    server = measured.config.server or ServerConfig()
    workers, max_batch = server.workers or 1, server.max_batch or 1
    rng = random.Random(seed)
    fitted = fitted_stages(measured, profile)
    report = base_report(measured, profile, seed, replications, ServerConfig(workers=workers, max_batch=max_batch),
                         calibration or [])
    report.extra["title"] = f"{measured.name}: measured vs simulated ({workers} worker(s), max batch {max_batch})"
    shown = "prediction" if "prediction" in layers else "mechanics"
    report.extra["calibration_too_few"] = imprecise_cases(profile.service_samples)
    stages = [st.model_copy(update={"slo_e2e_s": slo_e2e_s if slo_e2e_s is not None
                                    else (st.slo_e2e_s or measured.config.slo_e2e_s)})
              for st in measured.stages if st.jobs]
    opened = [st for st in stages if is_open_loop(measured, st)]
    run_sims = {layer: replay_open_run(opened, workers, max_batch, profile, rng, replications, layer == "mechanics")
                for layer in LAYERS if layer in layers and opened}
    place = {id(st): k for k, st in enumerate(opened)}
    for mstage in stages:
        for layer in (x for x in LAYERS if x in layers):
            mechanics = layer == "mechanics"
            sims = (run_sims[layer][place[id(mstage)]] if id(mstage) in place else
                    replay_closed_stages(mstage, workers, max_batch, profile, rng, replications, mechanics))
            if layer == shown:
                report.stages.append(sims[0])
            thin = bool({j.case for j in mstage.jobs} & set(report.extra["calibration_too_few"]))
            report.errors += stage_errors(mstage, sims, scored=mechanics or mstage.name not in fitted, layer=layer,
                                          calibration_too_few=thin and not mechanics)
    set_max_errors(report, GATED)
    return report


def set_max_errors(report: Report, metrics) -> None:
    """`max_abs_error_pct` (the prediction layer's, else the mechanics') and the figure of each layer."""
    by_layer = {layer: layer_max_abs_error_pct(report.errors, metrics, layer) for layer in LAYERS
                if any(e.layer == layer for e in report.errors)}
    report.extra["max_abs_error_pct_by_layer"] = by_layer
    report.extra["max_abs_error_pct"] = by_layer.get("prediction", by_layer.get("mechanics"))


def mechanics_build(build: Callable) -> Callable:
    """A deployment builder whose service sampler returns each job's measured service time."""
    def make(env, ledger, rng):
        dep = build(env, ledger, rng)
        dep.sample = mechanics_sampler(dep.sample)
        return dep
    return make


def calibration_draw(profile: ServiceTimeProfile, rng: random.Random) -> ServiceTimeProfile:
    """One replication's view of what the calibration could have measured: each case's service samples
    and the replica start-ups resampled with replacement (a bootstrap), each load factor drawn within its
    interval. With repeated
    calibrations (`calibration_groups`, e.g. one before the run and one after) the run's speed lies
    somewhere in their span: the draw takes a pair of
    neighbouring calibrations, a point uniformly between them, and scales the first one's resample to that
    point's time alone, times one speed ~ N(1, the calibrations' block-to-block wander) for the run (a run is
    one more block: simulator/machine_speed.py), so that the prediction interval holds the drift the
    calibrations measured."""
    groups = profile.calibration_groups
    load = profile.load.drawn(rng) if profile.load is not None else None
    startups = {busy: _resample(v, rng) for busy, v in profile.startup_samples.items()}
    if len(groups) < 2:
        samples = profile.service_samples
        return dataclasses.replace(profile, service_samples={c: _resample(v, rng) for c, v in samples.items() if v},
                                   load=load, startup_samples=startups)
    k = int(rng.random() * (len(groups) - 1))
    w = rng.random()
    wander = profile.speed_wander["sd"] if profile.speed_wander else 0.0
    jitter = max(0.5, rng.gauss(1.0, wander)) if wander else 1.0     # one speed for every case of the run
    first, second = groups[k], groups[k + 1]
    drawn = {}
    for case, values in profile.service_samples.items():
        a, b = first.get(case) or values, second.get(case) or values
        a, b = _resample(a, rng), _resample(b, rng)
        scale = ((1 - w) + w * mean(b) / mean(a)) * jitter
        drawn[case] = [x * scale for x in a]
    return dataclasses.replace(profile, service_samples=drawn, load=load, startup_samples=startups)


def _resample(values: list[float], rng: random.Random) -> list[float]:
    return [values[int(rng.random() * len(values))] for _ in values]


def replication(profile: ServiceTimeProfile, rng: random.Random, mechanics: bool, workers: int,
                max_batch: int) -> tuple[ServiceTimeProfile, Callable]:
    """(profile, deployment builder) of one replication: a prediction's own calibration draw, whose one
    worker also holds the calibration's measured hold after each job (`held`); a mechanics replay the
    profile itself with each job's measured times (nothing is drawn, except the service of a job the run
    never completed)."""
    prof = profile if mechanics else calibration_draw(profile, rng)
    hold = not mechanics and workers == 1 and bool(prof.hold_samples)
    if hold:
        prof = prof.without_hold_in_overhead()
    build = scenario("local", Scenario(local_profile=prof, gpus=workers, max_batch=max_batch)).build
    if mechanics:
        return prof, mechanics_build(build)
    return prof, held(build, prof) if hold else build


def held(build: Callable, profile: ServiceTimeProfile) -> Callable:
    """A builder whose worker, after each job's model time, stays busy for the calibration's mean hold of
    that case: the server's own per-job work (encoding the result) that a waiting job waits out too.
    Left out, a saturated stage came out 4-8 % quick in the prediction, as fast as the model alone."""
    holds: dict[str, float] = {}

    def make(env, ledger, rng):
        dep = build(env, ledger, rng)
        sample = dep.sample

        def held_sample(case: str, **kw) -> float:
            if case not in holds:            # a mean over the calibration's holds, once per case
                holds[case] = profile.hold_s(case)
            return sample(case, **kw) + holds[case]
        dep.sample = held_sample
        return dep
    return make


def replay_closed_stages(mstage: Stage, workers: int, max_batch: int, profile: ServiceTimeProfile,
                         rng: random.Random, replications: int, mechanics: bool) -> list[Stage]:
    """A closed-loop or burst stage's replications (one in a mechanics replay)."""
    sims = []
    for _ in range(1 if mechanics else max(1, replications)):
        prof, build = replication(profile, rng, mechanics, workers, max_batch)
        sims += replay_closed_stage(mstage, build, prof, rng, 1, mechanics, workers)
    return sims


def replay_open_run(stages: list[Stage], workers: int, max_batch: int, profile: ServiceTimeProfile,
                    rng: random.Random, replications: int, mechanics: bool) -> list[list[Stage]]:
    """A run's open-loop stages replayed as the one stream the server met, each stage's replications
    (one in a mechanics replay): a stage starts with the queue the one before it left. Replayed alone
    from an empty queue, the busy windows of a trace replay came out 7-14 % quick even in the mechanics
    layer, with every job's measured time."""
    t0 = min(stage_start(st) for st in stages)
    whole = Stage(name="run", jobs=[j for st in stages for j in st.jobs], started_at=t0)
    home = {id(j): k for k, st in enumerate(stages) for j in st.jobs}
    sent = sorted((j for j in whole.jobs if j.status != DROPPED), key=arrival_order)
    order = [home[id(j)] for j in sent] + [home[id(j)] for j in whole.jobs if j.status == DROPPED]
    out: list[list[Stage]] = [[] for _ in stages]
    for _ in range(1 if mechanics else max(1, replications)):
        prof, build = replication(profile, rng, mechanics, workers, max_batch)
        sim, _ = replay_open_stage(whole, build, prof, rng, mechanics=mechanics, workers=workers)
        split = [Stage(name=st.name, duration_s=st.duration_s, started_at=stage_start(st) - t0,
                       arrival_rate_per_s=st.arrival_rate_per_s, slo_e2e_s=st.slo_e2e_s) for st in stages]
        for k, job in zip(order, sim.jobs, strict=True):
            split[k].jobs.append(job)
        for k, st in enumerate(split):
            out[k].append(st)
    return out


def stage_start(stage: Stage) -> float:
    return stage.started_at if stage.started_at is not None else min(j.origin for j in stage.jobs)


def arrivals_of(mstage: Stage, mechanics: bool = False, workers: int = 1) -> tuple[list[tuple], list[JobRecord]]:
    """(sorted (t from the stage's start, case) of every request sent, with its measured (service s,
    overhead s) in a mechanics replay, the one worker's hold after each job in the service; the dropped
    ones never sent)."""
    sent = sorted((j for j in mstage.jobs if j.status != DROPPED), key=arrival_order)
    t0 = stage_start(mstage)
    holds = worker_holds(sent) if mechanics and workers == 1 else {}
    arrivals = [(j.origin - t0, j.case, *held_times(j, holds)) if mechanics else (j.origin - t0, j.case) for j in sent]
    return arrivals, [j for j in mstage.jobs if j.status == DROPPED]


def replay_open_stage(mstage: Stage, make_deployment: Callable, profile: ServiceTimeProfile, rng: random.Random,
                      until_s: float | None = None, mechanics: bool = False, workers: int = 1):
    """An open-loop stage replayed with its exact arrivals; (simulated Stage, deployment). Requests the
    load generator dropped (over its in-flight cap) are copied as dropped: never sent, still counted."""
    arrivals, dropped = arrivals_of(mstage, mechanics, workers)
    stage, deployment = run_open_stage(make_deployment, arrivals, profile.overhead_sampler(rng), rng, mstage.name,
                                       duration_s=mstage.duration_s, until_s=until_s,
                                       arrival_rate_per_s=mstage.arrival_rate_per_s, slo_e2e_s=mstage.slo_e2e_s)
    t0 = stage_start(mstage)
    stage.jobs += [JobRecord(case=j.case, status=DROPPED, submitted=j.submitted - t0, scheduled=j.origin - t0,
                             error=j.error) for j in dropped]
    return stage, deployment


def replay_closed_stage(mstage: Stage, build: Callable, profile: ServiceTimeProfile, rng: random.Random,
                        replications: int, mechanics: bool = False, workers: int = 1) -> list[Stage]:
    """A closed-loop or burst stage replayed: same users, duration or jobs per user, and case mix (in a
    mechanics replay the n-th job submitted is the n-th measured one, with its service and overhead)."""
    mix = Counter(j.case for j in mstage.jobs)
    users = mstage.concurrency or 1
    per_user = mstage.jobs_per_user
    duration = mstage.duration_s if not per_user else None
    if not per_user and not duration:
        per_user = max(1, round(len(mstage.jobs) / users))
    sent = sorted((j for j in mstage.jobs if j.status != DROPPED), key=lambda j: (j.submitted, arrival_order(j)[1]))
    holds = worker_holds(sent) if mechanics and workers == 1 else {}
    script = [(j.case, *held_times(j, holds)) for j in sent] if mechanics else None
    out = []
    for _ in range(max(1, replications)):
        st = run_stage(build, users, dict(mix), profile.overhead_sampler(rng), rng, duration_s=duration,
                       jobs_per_user=per_user, name=mstage.name, script=script)
        out.append(st.model_copy(update={"slo_e2e_s": mstage.slo_e2e_s}))
    return out


def max_abs_error_pct(errors: list[ErrorRow], metrics=GATED) -> float | None:
    """The prediction layer's largest scored |error| in % (simulator/scoring.py)."""
    return layer_max_abs_error_pct(errors, metrics, "prediction")
