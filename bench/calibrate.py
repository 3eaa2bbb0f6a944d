"""python -m bench calibrate: the separate calibration runs a prediction needs, in one report.

The report (role "calibration") is what `simulator validate --calibration C` and `simulator run --profile C`
take:

- every target: jobs alone (one at a time, after a warm-up), then Locust closed loops at `--loads` users
  (each sized to about `--jobs` jobs from the time alone): the service time under load
  (simulator/service_load.py fits it from the jobs' own timestamps);
- `--target rayserve` (any further option is `bench autoscale`'s: the deployment's autoscaling settings,
  e.g. `--max-replicas 2 --upscale-delay-s 2`): first the autoscale calibration (bench/autoscale/calibration.py: cycles from zero
  replicas, each a measured replica start, decision delay and first job, then warm jobs), then the loaded
  closed loops with the replica recorder on (the first job of each new replica marked, and left out of
  the load fit: it has its own calibrated time). The report's `replicas` is both recordings as one run:
  the loops' replicas start beside busy ones, the start-ups a prediction draws under load.

    python -m bench calibrate --target local --out reports/measured/calibration-local.json
    python -m bench calibrate --target rayserve --out reports/measured/calibration-rayserve.json
    python -m simulator validate --measured RUN.json --calibration reports/measured/calibration-local.json

On a closed loop of u users a job starts with about u - 1 requests in the system (its own user is still
reading the previous result), so loads of 3 and 5 users measure in_system ~2 and ~4.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

from bench.concurrency import locust_command, run_locust
from bench.measure import add_target_options, model_info, server_config, target_server
from bench.single import run_cases
from clients.factory import make_client
from loadlab.cases import parse_cases
from loadlab.schema import COMPLETED, LoadConfig, Report, RunConfig, Stage, environment
from loadlab.stats import format_s, mean
from simulator.service_load import fit_reports

MAX_LOAD_USERS = 16
MAX_JOBS = 200


def parse_loads(text: str) -> list[int]:
    try:
        loads = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--loads {text!r}: comma-separated user counts, e.g. 3,5") from None
    if len(loads) < 2 or loads[0] < 2 or loads[-1] > MAX_LOAD_USERS:
        raise argparse.ArgumentTypeError(f"--loads {text!r}: at least two loads, each 2..{MAX_LOAD_USERS} users")
    return loads


def bounded_int(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value
    return parse


def alone_service_s(stages: list[Stage]) -> float:
    values = [j.service_s for s in stages for j in s.jobs
              if j.status == COMPLETED and j.service_s is not None and not j.cold_start]
    if not values:
        raise RuntimeError("no completed job alone: nothing to calibrate from")
    return mean(values)


def loaded_stages(args: argparse.Namespace, url: str, target: str, alone_s: float, out: Path,
                  startup_s: float = 0.0) -> tuple[list[Stage], int]:
    """Locust closed loops at `args.loads` users, each held long enough for ~`args.jobs` jobs (a closed
    loop on one worker completes one job per service time whatever its users) plus `startup_s` (replicas
    starting from zero); its stages and exit code."""
    stage_seconds = math.ceil(args.jobs * alone_s + startup_s)
    loc = argparse.Namespace(stages=",".join(map(str, args.loads)), cases=args.cases, target=target,
                             stop_timeout=max(60, int(4 * max(args.loads) * alone_s + startup_s)), jobs_per_user=0,
                             stage_seconds=stage_seconds, processes=0, client_factory=args.client_factory,
                             max_stage_seconds=0)
    args.locust_dir.mkdir(parents=True, exist_ok=True)
    prefix = args.locust_dir / f"{out.stem}-load"
    report_out = out.with_name(f"{out.stem}-load.json")
    report_out.unlink(missing_ok=True)
    cmd = locust_command(loc, url, report_out, prefix)
    print(f"under load: closed loops of {loc.stages} users, {stage_seconds} s each\n$ {' '.join(cmd)}", flush=True)
    rc = run_locust(cmd, Path(f"{prefix}.log"))
    if not report_out.exists():
        raise RuntimeError(f"Locust exited with {rc} and wrote no report; its log: {prefix}.log")
    stages = Report.load(report_out).stages
    report_out.unlink()
    return stages, rc


def calibrate_server(args: argparse.Namespace) -> Report:
    """local | vertex: the job server (started and pinned here, or --url) alone, then under load."""
    cases = parse_cases(args.cases)
    with target_server(args) as target:
        print(f"target {args.target} at {target.url}: {args.runs} job(s) alone per case, then loads {args.loads}",
              flush=True)
        with contextlib.closing(make_client(args.target, target.url, factory=args.client_factory)) as client:
            alone = run_cases(client, cases, args.runs, args.warmup, args.target)
        loaded, rc = loaded_stages(args, target.url, args.target, alone_service_s(alone), args.out)
        report = Report(role="calibration", kind="measured", name=args.out.stem, target=args.target, cases=cases,
                        stages=alone + loaded, environment=environment(), model=model_info(target, args),
                        config=RunConfig(driver="bench calibrate", cases=args.cases, server=server_config(args, target),
                                         load=LoadConfig(mode="closed", users=[1, *args.loads], runs=args.runs,
                                                         warmup=args.warmup, cpus=target.load_cpus)))
    report.extra["locust_exit_code"] = rc
    return report


def calibrate_rayserve(args: argparse.Namespace) -> Report:
    """rayserve: the autoscale calibration (start-up, decision delay, first jobs, warm jobs), then the loaded
    closed loops with the replica recorder on, on the same Ray cluster."""
    from bench.autoscale.calibration import calibrate
    from bench.autoscale.cli import parse_args as autoscale_args
    from bench.autoscale.recording import recording
    from bench.autoscale.target import ray_target

    ray = autoscale_args(["--cases", args.cases, "--model", args.model, "--out", str(args.out), *(["--url", args.url] if args.url else []),
                          *(["--no-pin"] if args.no_pin else []), *args.autoscale])
    cases = parse_cases(args.cases)
    with ray_target(ray) as target:
        report = calibrate(ray, target, cases, args.cold_starts, args.runs)
        # the loops begin at the minimum replicas: give them the replicas' start-ups (one after the other,
        # at worst) on top of their jobs
        firsts = [x for x in (report.coldstart.first_request_e2e_s if report.coldstart else []) if x is not None]
        startup_s = 2 * max(firsts, default=0.0)
        with recording(target) as rec:
            start = rec.at_rest_from
            loaded, rc = loaded_stages(args, target.url, "vertex", alone_service_s(report.stages), args.out,
                                       startup_s)
            end = rec.back_at_rest(time.time())
            # marks each new replica's first job; its replicas started while others served (start-ups under load)
            _, loaded_run = rec.stop([j for s in loaded for j in s.jobs], start, end)
    report.name, report.stages = args.out.stem, report.stages + loaded
    report.replicas = report.replicas.then(loaded_run) if report.replicas is not None else loaded_run
    report.config.driver = "bench calibrate --target rayserve"
    report.extra.update(rayserve=target.info, locust_exit_code=rc, loaded_back_at_rest=end is not None)
    return report


def print_calibration(report: Report, seconds: float) -> None:
    print(f"\ncalibration {report.name} ({seconds:.0f} s):")
    for stage in report.stages:
        s = stage.summary
        print(f"  {stage.name:<16} {s.completed}/{s.jobs}  service mean "
              f"{format_s(s.service_s.mean).strip()} s  e2e mean {format_s(s.mean).strip()} s")
    model = fit_reports([report])
    if model is None:
        print("  no load model: no jobs alone and under load")
        return
    d = model.describe()
    print(f"  alone: {d['alone_s']} s (n {d['alone_n']})")
    for name in ("in_system", "busy"):
        for lvl in d[name]:
            ci = "-" if lvl["ci95"] is None else f"{lvl['ci95']:.3f}"
            print(f"  {name} {lvl['level']:.2f}: service x {lvl['factor']:.3f} ± {ci} (n {lvl['n']})")
    print(f"  leave-one-level-out error, largest: {d['fit_error']['max_abs_error']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench calibrate", description=__doc__.split("\n")[0],
                                conflict_handler="resolve")
    p.add_argument("--cases", default="light", help="case set or list (loadlab/cases.py; default light)")
    p.add_argument("--runs", type=bounded_int(2, MAX_JOBS), default=6,
                   help="jobs alone per case (rayserve: warm jobs per case and cycle); default 6")
    p.add_argument("--warmup", type=bounded_int(0, 10), default=1, help="unrecorded jobs first (default 1)")
    p.add_argument("--loads", type=parse_loads, default=[3, 5],
                   help="users of the loaded closed loops, at least two (default 3,5: in_system ~2 and ~4)")
    p.add_argument("--jobs", type=bounded_int(2, MAX_JOBS), default=8,
                   help="jobs per loaded stage, about (its length: jobs x the time alone; default 8)")
    p.add_argument("--cold-starts", type=bounded_int(1, 10), default=2,
                   help="rayserve: cycles from zero replicas, each a measured replica start (default 2)")
    p.add_argument("--locust-dir", type=Path, default=Path("reports/locust"), help="Locust's CSV/HTML/log")
    p.add_argument("--out", type=Path, default=None,
                   help="report path (default reports/measured/calibration-<target>.json)")
    add_target_options(p)
    p.add_argument("--target", choices=("local", "vertex", "rayserve"), default="local",
                   help="the job API, its Vertex AI adapter (the same job server), or the Ray Serve app")
    args, args.autoscale = p.parse_known_args(argv)
    args.out = args.out or Path("reports/measured") / f"calibration-{args.target}.json"
    if args.target != "rayserve" and args.autoscale:
        p.error(f"unrecognized arguments: {' '.join(args.autoscale)}")
    if args.target == "rayserve":
        if args.server_pid:
            p.error("--server-pid is for the job server (local, vertex)")
        from bench.autoscale.cli import parse_args as autoscale_args
        autoscale_args(args.autoscale)         # its own errors, now, before Ray starts
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    try:
        report = calibrate_rayserve(args) if args.target == "rayserve" else calibrate_server(args)
    except RuntimeError as err:
        print(f"bench calibrate: error: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    report.extra["calibration_wall_s"] = round(seconds, 1)
    path = report.save(args.out)
    print_calibration(report, seconds)
    print(f"\ncalibration report: {path}\nuse: python -m simulator validate --measured RUN.json --calibration {path}")
    return 0 if report.extra.get("locust_exit_code") == 0 else 1
