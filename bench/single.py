"""python -m bench single: the source article's benchmark 1 — one request at a time, each case
`--runs` times (5 by default) after `--warmup` unmeasured runs, on the local or the Vertex target.

Per case: mean, std, min, max, p50, p95 of the end-to-end time, and its split into upload, queue,
inference and transfer. Writes a measured report with one stage per case, named `<case> [u=1]`
(concurrency 1, `jobs_per_user` = runs), so the simulator can replay the service times.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

from bench.measure import (
    Target,
    add_target_options,
    model_info,
    server_config,
    target_server,
)
from clients.factory import make_client
from clients.record import run_job
from loadlab import article
from loadlab.cases import parse_cases, test_image
from loadlab.schema import COMPLETED, Case, LoadConfig, Report, RunConfig, Stage, environment
from loadlab.stats import format_s, summarize

SPLIT = ("upload_s", "queue_s", "inference_s", "transfer_s")


def split_of(stage: Stage) -> dict[str, dict]:
    """Summaries of the parts of each completed job's time (None parts left out)."""
    done = [j for j in stage.jobs if j.status == COMPLETED]
    parts = {"upload_s": [j.extra.get("upload_s") for j in done], "queue_s": [j.queue_s for j in done],
             "inference_s": [j.service_s for j in done], "transfer_s": [j.extra.get("transfer_s") for j in done]}
    return {k: summarize(v for v in vals if v is not None) for k, vals in parts.items()}


def run_cases(client, cases: list[Case], runs: int, warmup: int, served_by: str) -> list[Stage]:
    """Each case `runs` times, one job at a time, after `warmup` unrecorded jobs: a stage per case."""
    images = Path(tempfile.mkdtemp(prefix="loadlab-single-"))
    stages = []
    for case in cases:
        image = str(test_image(case, images / case.name))
        for i in range(warmup):
            rec = run_job(client, case, image, served_by=served_by)
            print(f"  {case.name} warm-up {i + 1}/{warmup}: {rec.status} {format_s(rec.e2e_s).strip()} s", flush=True)
        stage = Stage(name=f"{case.name} [u=1]", concurrency=1, jobs_per_user=runs)
        for i in range(runs):
            rec = run_job(client, case, image, served_by=served_by)
            stage.jobs.append(rec)
            print(f"  {case.name} run {i + 1}/{runs}: {rec.status} {format_s(rec.e2e_s).strip()} s"
                  + (f" ({rec.error})" if rec.error else ""), flush=True)
        stages.append(stage)
    return stages


def single_report(args: argparse.Namespace, target: Target, cases: list[Case], stages: list[Stage]) -> Report:
    """The measured report of a single-request run (`args`: this command's options, or a caller's with
    the same target options, `cases`, `runs` and `warmup`)."""
    report = Report(
        role="single", kind="measured", name=f"single-{args.target}", target=args.target, cases=cases, stages=stages,
        environment=environment(), model=model_info(target, args),
        config=RunConfig(driver="bench single", cases=args.cases, server=server_config(args, target),
                         load=LoadConfig(mode="single", runs=args.runs, warmup=args.warmup, cpus=target.load_cpus)))
    report.extra["split"] = {s.name: split_of(s) for s in stages}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench single", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="article", help="article | light | small | small,medium,... (loadlab/cases.py)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per case (article: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs per case first (warm target)")
    parser.add_argument("--out", type=Path, default=None, help="report path (default reports/measured/single-<target>-<time>.json)")
    parser.add_argument("--short", action="store_true", help="CI mode: light case, 2 runs, 1 warm-up")
    add_target_options(parser)
    args = parser.parse_args(argv)
    if args.short:
        args.cases, args.runs, args.warmup = "light", 2, 1
    cases = parse_cases(args.cases)

    with target_server(args) as target:
        print(f"target {args.target} at {target.url}; {len(cases)} case(s) x {args.runs} run(s), {args.warmup} warm-up",
              flush=True)
        with contextlib.closing(make_client(args.target, target.url, factory=args.client_factory)) as client:
            stages = run_cases(client, cases, args.runs, args.warmup, args.target)
        report = single_report(args, target, cases, stages)
    out = args.out or Path("reports/measured") / f"single-{args.target}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path = report.save(out)

    quoted = article.SINGLE["vertex-t4" if args.target == "vertex" else "local-3090"]
    print(f"\n{'case':<8} {'ok':>5} {'mean':>7} {'std':>7} {'min':>7} {'max':>7} {'p50':>7} {'p95':>7} | "
          f"{'upload':>7} {'queue':>7} {'infer':>7} {'xfer':>7} | article mean±std")
    for stage in stages:
        s, sp = stage.summary, report.extra["split"][stage.name]
        case = stage.jobs[0].case if stage.jobs else stage.name
        q = quoted.get(case)
        print(f"{case:<8} {s.completed:>2}/{s.jobs:<2} {format_s(s.mean)} {format_s(s.std)} {format_s(s.min)} "
              f"{format_s(s.max)} {format_s(s.p50)} {format_s(s.p95)} | "
              + " ".join(format_s(sp[k]["mean"]) for k in SPLIT)
              + (f" | {q[0]} ± {q[1]} s" if q else " | -"))
    print(f"\nmeasured report: {path}")
    return 0 if all(s.summary.completed == s.summary.jobs for s in stages) else 1
