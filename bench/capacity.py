"""python -m bench capacity: the highest Poisson arrival rate at which the measured server still meets an
end-to-end SLO at a percentile (e.g. 95 % of requests within S seconds), with the simulator's
prediction for the same service times beside it — the measured counterpart of `simulator sweep`.

A calibration run (single jobs, or `--calibration REPORT` from `bench single`) gives the time S of a
job alone; the search starts at about half of one worker's capacity (0.5 x workers / S), doubles the
rate until a probe misses the SLO (halves it until one meets it), then bisects until the bracket is
within `--tolerance`. Each probe is a bounded open-loop Locust stage in a subprocess (`--arrival
poisson --rates R --stage-seconds T`, the same `--seed` for every probe, `--max-in-flight` so an
overloaded probe drops arrivals instead of queueing them for ever). A request meets the SLO when it
completed within S seconds of its scheduled arrival; a dropped, rejected or failed one misses it.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.concurrency import LOCUSTFILE, run_locust
from bench.measure import add_target_options, model_info, server_config, target_server
from bench.pinning import service_inflation
from bench.single import run_cases, single_report
from clients.factory import make_client
from loadlab.cases import parse_cases
from loadlab.schema import (
    COMPLETED,
    DROPPED,
    REJECTED,
    JobRecord,
    LoadConfig,
    Report,
    RunConfig,
    Stage,
    environment,
)
from loadlab.stats import format_s, mean, pct_key, relative_error

# --- the search (pure: a probe is any function rate -> Probe) ----------------------------------------


@dataclass
class Probe:
    """One arrival rate tried: its stage (every arrival's record) and the verdict."""

    rate_per_s: float
    stage: Stage
    meets: bool
    attainment: float | None          # share of arrivals completed within the SLO
    source: str = ""                  # the probe's own report (measured) or "simulated"


def judge(rate_per_s: float, stage: Stage, slo_e2e_s: float, percentile: float, source: str = "") -> Probe:
    """The SLO is met at `percentile` when at least that share of the stage's arrivals completed within
    `slo_e2e_s` (the stage's summary scores it; a stage without arrivals meets nothing)."""
    stage.slo_e2e_s = slo_e2e_s
    attainment = stage.summary.slo_attainment
    return Probe(rate_per_s, stage, attainment is not None and attainment >= percentile / 100, attainment, source)


@dataclass
class CapacitySearch:
    """`capacity_per_s`: the highest rate that met the SLO (None: none did); `missed_at_per_s`: the
    lowest rate that missed it (None: none did up to the maximum rate)."""

    capacity_per_s: float | None
    missed_at_per_s: float | None
    status: str                     # bracketed | at_max_rate | none_met | probe_budget
    probes: list[Probe] = field(default_factory=list)


def search(probe: Callable[[float], Probe], start_per_s: float, max_per_s: float, tolerance: float = 0.1,
           max_probes: int = 10, max_halvings: int = 4) -> CapacitySearch:
    """Bracket (double the rate from `start_per_s` while probes meet the SLO, capped at `max_per_s`;
    halve it, at most `max_halvings` times, while they miss), then bisect until the bracket's width is
    at most `tolerance` x its lower end, within `max_probes` probes in all."""
    probes: list[Probe] = []
    met: float | None = None
    missed: float | None = None
    rate = min(start_per_s, max_per_s)
    lowest = start_per_s / 2 ** max_halvings

    def run(r: float) -> bool:
        result = probe(r)
        probes.append(result)
        return result.meets

    while len(probes) < max_probes:
        if run(rate):
            met = rate
            if missed is not None or rate >= max_per_s:
                break
            rate = min(rate * 2, max_per_s)
        else:
            missed = rate
            if met is not None or rate / 2 < lowest:
                break
            rate /= 2
    while met is not None and missed is not None and missed - met > tolerance * met and len(probes) < max_probes:
        mid = (met + missed) / 2
        if run(mid):
            met = mid
        else:
            missed = mid
    if met is None:
        status = "none_met" if missed is not None and missed / 2 < lowest else "probe_budget"
    elif missed is None:
        status = "at_max_rate" if met >= max_per_s else "probe_budget"
    else:
        status = "bracketed" if missed - met <= tolerance * met else "probe_budget"
    return CapacitySearch(met, missed, status, probes)


# --- the simulator's prediction -------------------------------------------------------------------------


def simulated_stage(calibration: Report, rate_per_s: float, seconds: float, seed: int, max_in_flight: int,
                    case_names: list[str], workers: int = 1, replications: int = 20) -> Stage:
    """Poisson arrivals at `rate_per_s` for `seconds` into `workers` FIFO workers whose service times
    (and the client's overhead around them) are resampled from the calibration run, replayed by the
    simulator's open-loop stage; `replications` independent runs pooled into one stage (their clocks
    10^6 s apart). The load generator's in-flight cap becomes the queue bound (over it: a miss)."""
    import random

    import numpy as np

    from simulator.deployments.local import LocalGPU
    from simulator.openloop import run_open_stage
    from simulator.profiles import from_report

    profile = from_report(calibration)
    queue_limit = max(0, max_in_flight - workers)
    records: list[JobRecord] = []
    for rep in range(replications):
        offset = rep * 1e6
        rng, prng = np.random.default_rng(seed + rep), random.Random(seed + rep)
        n = int(rng.poisson(rate_per_s * seconds))
        times = np.sort(rng.uniform(0.0, seconds, n))  # a Poisson process, conditioned on its count
        arrivals = [(t, prng.choice(case_names)) for t in times.tolist()]
        stage, _ = run_open_stage(
            lambda env, ledger, r: LocalGPU(env, ledger, profile.sampler(r), gpus=workers, queue_limit=queue_limit),
            arrivals, profile.overhead_sampler(prng), prng, name="probe")
        for rec in stage.jobs:
            update = {k: None if getattr(rec, k) is None else offset + getattr(rec, k)
                      for k in ("scheduled", "submitted", "started", "finished")}
            if rec.status == REJECTED:  # turned away by the queue bound = dropped by the load generator's cap
                update["status"] = DROPPED
            records.append(rec.model_copy(update=update))
    records.sort(key=lambda r: r.submitted)
    return Stage(name=f"simulated {rate_per_s:.4g}/s", arrival_rate_per_s=rate_per_s, jobs=records)


# --- the measured probe: one bounded open-loop Locust stage ----------------------------------------------


def locust_probe_command(args: argparse.Namespace, url: str, rate_per_s: float, max_in_flight: int,
                         out: Path, prefix: Path) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
           "--arrival", "poisson", "--rates", f"{rate_per_s:.6g}", "--stage-seconds", f"{args.probe_seconds:g}",
           "--seed", str(args.seed), "--slo-e2e", f"{args.slo_e2e:g}", "--max-in-flight", str(max_in_flight),
           "--cases", args.cases, "--target", args.target,
           "--report-out", str(out), "--report-name", out.stem,
           "--csv", str(prefix), "--html", f"{prefix}.html",
           "--stop-timeout", str(args.stop_timeout), "--loglevel", "INFO"]
    if args.client_factory:
        cmd += ["--client-factory", args.client_factory]
    return cmd


def locust_probe(args: argparse.Namespace, url: str, max_in_flight: int, folder: Path) -> Callable[[float], Probe]:
    """rate -> Probe: one Locust run of `--probe-seconds` at that Poisson rate, read back from its report."""
    count = 0

    def probe(rate_per_s: float) -> Probe:
        nonlocal count
        count += 1
        rate_per_s = float(f"{rate_per_s:.6g}")  # the rate as Locust is told it, and as the report records it
        out = folder / f"probe{count:02d}-{rate_per_s:.4g}per_s.json"
        prefix = folder / out.stem
        cmd = locust_probe_command(args, url, rate_per_s, max_in_flight, out, prefix)
        print(f"probe {count}: {rate_per_s:.4g} arrivals/s for {args.probe_seconds:g} s", flush=True)
        rc = run_locust(cmd, Path(f"{prefix}.log"))
        if not out.exists():
            raise RuntimeError(f"Locust exited with {rc} and wrote no report; its log: {prefix}.log")
        stages = Report.load(out).stages
        if len(stages) != 1:
            raise RuntimeError(f"probe report {out} has {len(stages)} stages, expected 1")
        return judge(rate_per_s, stages[0], args.slo_e2e, args.percentile, str(out))

    return probe


# --- the command ----------------------------------------------------------------------------------------


def calibrate(args: argparse.Namespace, target, cases, folder: Path) -> tuple[Report, Path]:
    """The separate single-job run the start rate, the inflation and the simulator's service times
    come from: `--calibration` as given, else `--calibration-runs` jobs per case measured now."""
    if args.calibration:
        return Report.load(args.calibration), args.calibration
    print(f"calibration: {args.calibration_runs} single job(s) per case after 1 warm-up", flush=True)
    with contextlib.closing(make_client(args.target, target.url, factory=args.client_factory)) as client:
        stages = run_cases(client, cases, args.calibration_runs, 1, args.target)
    single_args = argparse.Namespace(**{**vars(args), "runs": args.calibration_runs, "warmup": 1})
    report = single_report(single_args, target, cases, stages)
    path = report.save(folder / "calibration.json")
    return report, path


def completed_mean(report: Report, attr: str) -> float | None:
    return mean(getattr(j, attr) for s in report.stages for j in s.jobs
                if j.status == COMPLETED and getattr(j, attr) is not None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench capacity", description=__doc__.split("\n")[0])
    parser.add_argument("--slo-e2e", type=float, required=True, help="end-to-end SLO in seconds (from the scheduled arrival)")
    parser.add_argument("--percentile", type=float, default=95.0, help="share of arrivals that must meet it, in %% (default 95)")
    parser.add_argument("--cases", default="light", help="case set or list (loadlab/cases.py)")
    parser.add_argument("--probe-seconds", type=float, default=30.0, help="length of each probe's arrival window")
    parser.add_argument("--max-rate", type=float, default=0.0,
                        help="highest rate tried, arrivals/s (default: 2 x workers / S, twice what the workers can serve)")
    parser.add_argument("--tolerance", type=float, default=0.1, help="stop when the bracket is this fraction of its lower end")
    parser.add_argument("--max-probes", type=int, default=10, help="measured probes at most")
    parser.add_argument("--max-in-flight", type=int, default=0,
                        help="arrivals over this many in flight are dropped (default: 2 x SLO / S x workers, "
                             "past which a new arrival would miss the SLO anyway)")
    parser.add_argument("--seed", type=int, default=1, help="arrival sequence seed (the same for every probe)")
    parser.add_argument("--calibration", type=Path, default=None, help="a `bench single` report of this server")
    parser.add_argument("--calibration-runs", type=int, default=3, help="single jobs per case when measuring it here")
    parser.add_argument("--replications", type=int, default=20, help="simulated runs pooled per simulated probe")
    parser.add_argument("--stop-timeout", type=int, default=0, help="seconds a probe's jobs may take to finish (default: derived)")
    parser.add_argument("--out", type=Path, default=None, help="report path (default reports/measured/capacity-...json)")
    parser.add_argument("--probe-dir", type=Path, default=None, help="probe reports and Locust outputs (default reports/locust/<name>)")
    add_target_options(parser)
    args = parser.parse_args(argv)
    if args.slo_e2e <= 0 or not 0 < args.percentile < 100:
        parser.error("--slo-e2e must be > 0 and --percentile within (0, 100)")
    return run(args)


@dataclass
class Bounds:
    """What the calibration says about this server, shared by the measured and simulated searches:
    the time of a job alone and, from it, where the search starts and stops and the in-flight cap."""

    calibration: Report
    path: Path
    alone_s: float
    alone_service_s: float | None
    start: float
    max_rate: float
    max_in_flight: int


def run(args: argparse.Namespace, make_probe=locust_probe) -> int:
    """The command after parsing; `make_probe(args, url, max_in_flight, folder)` builds the measured
    probe (Locust by default)."""
    cases = parse_cases(args.cases)
    name = f"capacity-{args.target}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    out = args.out or Path("reports/measured") / f"{name}.json"
    folder = args.probe_dir or Path("reports/locust") / name
    folder.mkdir(parents=True, exist_ok=True)

    with target_server(args) as target:
        bounds = calibrated_bounds(args, target, cases, folder)
        if bounds is None:
            return 2
        measured = measured_search(args, target, bounds, make_probe, folder)
        model = model_info(target, args)
    simulated, at_measured_rates = simulated_search(args, cases, bounds, measured)
    report = capacity_report(args, name, cases, target, model, bounds, measured, simulated, at_measured_rates)
    path = report.save(out)
    print_table(report)
    print(f"\ncapacity report: {path}")
    return 0 if measured.status in ("bracketed", "at_max_rate", "slo_below_service_time") else 1


def calibrated_bounds(args: argparse.Namespace, target, cases, folder: Path) -> Bounds | None:
    """Calibrate (or read `--calibration`) and derive the search's bounds from a job alone; None, said
    on stderr, when the calibration has no completed job to take the time of. Sets the probes'
    `--stop-timeout` when not given: long enough for a full in-flight queue to drain."""
    calibration, calibration_path = calibrate(args, target, cases, folder)
    alone_s, alone_service_s = completed_mean(calibration, "e2e_s"), completed_mean(calibration, "service_s")
    if alone_s is None:
        print(f"calibration {calibration_path} has no completed job", file=sys.stderr)
        return None
    workers = args.server_workers
    max_rate = args.max_rate or 2 * workers / alone_s
    start = 0.5 * workers / alone_s
    max_in_flight = args.max_in_flight or max(2, math.ceil(2 * args.slo_e2e / alone_s) * workers)
    args.stop_timeout = args.stop_timeout or math.ceil(2 * max_in_flight * alone_s / workers) + 30
    print(f"calibration: a job alone takes {alone_s:.3f} s end to end (model {format_s(alone_service_s).strip()} s), "
          f"{calibration_path}; start {start:.4g}/s, max {max_rate:.4g}/s, max in flight {max_in_flight}; "
          f"server CPUs {target.server_cpus or 'not pinned'}, load CPUs {target.load_cpus or 'not pinned'}", flush=True)
    return Bounds(calibration, calibration_path, alone_s, alone_service_s, start, max_rate, max_in_flight)


def measured_search(args: argparse.Namespace, target, bounds: Bounds, make_probe, folder: Path) -> CapacitySearch:
    """The search over real probes of the running server."""
    if bounds.alone_s > args.slo_e2e:
        # even without any queue the typical job is over the SLO: no rate can meet it
        return CapacitySearch(None, None, "slo_below_service_time")
    return search(make_probe(args, target.url, bounds.max_in_flight, folder), bounds.start, bounds.max_rate,
                  args.tolerance, args.max_probes)


def simulated_search(args: argparse.Namespace, cases, bounds: Bounds,
                     measured: CapacitySearch) -> tuple[CapacitySearch, dict[float, float | None]]:
    """The simulator's search from the same calibration and bounds, and its attainment at each rate
    the measured search probed (so the table compares the two rate by rate)."""
    case_names = [c.name for c in cases]

    def simulated_probe(rate: float) -> Probe:
        stage = simulated_stage(bounds.calibration, rate, args.probe_seconds, args.seed, bounds.max_in_flight,
                                case_names, args.server_workers, args.replications)
        return judge(rate, stage, args.slo_e2e, args.percentile, "simulated")

    simulated = (search(simulated_probe, bounds.start, bounds.max_rate, args.tolerance, max_probes=40)
                 if measured.status != "slo_below_service_time" else CapacitySearch(None, None, measured.status))
    at_measured_rates = {p.rate_per_s: simulated_probe(p.rate_per_s).attainment for p in measured.probes}
    return simulated, at_measured_rates


def capacity_report(args: argparse.Namespace, name: str, cases, target, model, bounds: Bounds,
                    measured: CapacitySearch, simulated: CapacitySearch,
                    at_measured_rates: dict[float, float | None]) -> Report:
    """The capacity report: the measured probes as its stages, both searches' results in `extra`."""
    rows = []
    for p in measured.probes:
        s = p.stage.summary
        rows.append({"rate_per_s": p.rate_per_s, "stage": p.stage.name, "meets": p.meets, "attainment": p.attainment,
                     "simulated_attainment": at_measured_rates[p.rate_per_s],
                     "inflation": service_inflation(s.service_s.mean, bounds.alone_service_s),
                     "report": p.source})
    return Report(
        role="capacity", kind="measured", name=name, target=args.target, cases=cases,
        stages=[p.stage for p in measured.probes], environment=environment(), model=model,
        config=RunConfig(driver="bench capacity", cases=args.cases, slo_e2e_s=args.slo_e2e,
                         server=server_config(args, target),
                         load=LoadConfig(mode="open", arrival="poisson", seed=args.seed,
                                         max_in_flight=bounds.max_in_flight,
                                         rates_per_s=[p.rate_per_s for p in measured.probes],
                                         stage_seconds=args.probe_seconds, cpus=target.load_cpus)),
        extra={"capacity": {
            "percentile": args.percentile, "slo_e2e_s": args.slo_e2e, "tolerance": args.tolerance,
            "measured_per_s": measured.capacity_per_s, "measured_missed_at_per_s": measured.missed_at_per_s,
            "measured_status": measured.status, "simulated_per_s": simulated.capacity_per_s,
            "simulated_missed_at_per_s": simulated.missed_at_per_s, "simulated_status": simulated.status,
            "error": relative_error(simulated.capacity_per_s, measured.capacity_per_s),
            "replications": args.replications, "calibration": str(bounds.path), "alone_e2e_s": bounds.alone_s,
            "alone_service_s": bounds.alone_service_s, "start_per_s": bounds.start, "max_per_s": bounds.max_rate},
            "probes": rows})


def print_table(report: Report) -> None:
    cap = report.extra["capacity"]
    p = cap["percentile"]
    key = pct_key(p)
    print(f"\n{'probe':>5} {'rate/s':>8} {'jobs':>5} {'done':>5} {'drop':>5} {key + ' s':>8} {'attain':>7} {'meets':>5} "
          f"{'infl':>5} {'late p99 ms':>11} | {'sim attain':>10}")
    for i, (stage, row) in enumerate(zip(report.stages, report.extra["probes"], strict=True), 1):
        s = stage.summary
        late = s.lateness_s.p99
        print(f"{i:>5} {row['rate_per_s']:>8.4g} {s.jobs:>5} {s.completed:>5} {s.dropped:>5} "
              f"{format_s(s.pct(p), 8)} {format_s(row['attainment'], 7, 3)} {'yes' if row['meets'] else 'no':>5} "
              f"{format_s(row['inflation'], 5)} {format_s(None if late is None else late * 1000, 11, 1)} | "
              f"{format_s(row['simulated_attainment'], 10, 3)}")
    measured, simulated = cap["measured_per_s"], cap["simulated_per_s"]
    print(f"\ncapacity at p{p:g} <= {cap['slo_e2e_s']:g} s ({cap['measured_status']}): measured "
          f"{'-' if measured is None else f'{measured:.4g}/s'}"
          + (f" (missed at {cap['measured_missed_at_per_s']:.4g}/s)" if cap["measured_missed_at_per_s"] else "")
          + f"; simulated {'-' if simulated is None else f'{simulated:.4g}/s'} ({cap['simulated_status']}, "
          f"{cap['replications']} replications per rate)"
          + ("" if cap["error"] is None else f"; simulated vs measured {cap['error'] * 100:+.1f} %"))
