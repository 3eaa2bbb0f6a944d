"""python -m bench coldstart: the source article's benchmark 2, measured for real on this machine.

Stages, each timed on the wall clock:
  process_start   spawn of `python -m server` -> its process is up (interpreter, imports);
  model_load      the model load the server reports in /readyz (`model.load_s`);
  ready           spawn -> /readyz says ready (covers both of the above and the app start);
  first_inference first job after ready, submit -> layers in hand (cold caches);
  warm_inference  the next identical job (warm).
Compared with the article's Vertex cold start: instance start 127 s + model load 43 s +
inference 34 s = 204 s, against 34 s warm. The article's "instance start" (a VM and container
being scheduled) has no local equivalent; here it is the process start.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import pinning
from bench.measure import (
    add_target_options,
    server_config,
    server_options,
    started_server,
)
from clients.factory import make_client
from clients.record import run_job
from loadlab import article
from loadlab.cases import parse_cases, test_image
from loadlab.schema import COMPLETED, LoadConfig, Report, RunConfig, Stage, environment
from loadlab.stats import format_s


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench coldstart", description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="medium", help="case of the two inferences (article: medium)")
    parser.add_argument("--warm-runs", type=int, default=1, help="warm inferences after the first")
    parser.add_argument("--out", type=Path, default=None, help="report path (default reports/measured/coldstart-<target>-<time>.json)")
    parser.add_argument("--short", action="store_true", help="CI mode: the light case")
    add_target_options(parser)
    args = parser.parse_args(argv)
    if args.url:
        parser.error("coldstart starts its own server; --url cannot measure a cold start")
    if args.short:
        args.case = "light"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    (case,) = parse_cases(args.case)
    image = str(test_image(case, Path(tempfile.mkdtemp(prefix="loadlab-cold-")) / case.name))

    print(f"cold start: spawning python -m server ({server_options(args)}) ...", flush=True)
    spawned = time.time()
    # pinned once ready (process start and model load are not competing with any load)
    with started_server(server_options(args), cpus=pinning.plan(not args.no_pin)) as target:
        ready = time.time()
        info = target.ready_info
        stages_s = startup_stages(spawned, ready, info)
        stage = run_jobs(args, target.url, case, image)
    first, warm = stage.jobs[0], [j.e2e_s for j in stage.jobs[1:] if j.status == COMPLETED]
    stages_s["first_inference"] = first.e2e_s if first.status == COMPLETED else None
    stages_s["warm_inference"] = min(warm) if warm else None
    cold_total = (stages_s["ready"] + stages_s["first_inference"]) if stages_s["first_inference"] else None

    report = coldstart_report(args, case, stage, target, stages_s, cold_total, spawned, ready, info)
    out = args.out or Path("reports/measured") / f"coldstart-{args.target}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path = report.save(out)
    print_table(stages_s, cold_total)
    print(f"\nmeasured report: {path}")
    return 0 if first.status == COMPLETED and len(warm) == args.warm_runs else 1


def startup_stages(spawned: float, ready: float, info: dict) -> dict[str, float | None]:
    """The stages up to ready, from the wall clock of this process and what /readyz said (the
    process's own start time and the model load it timed); printed as soon as the server is up."""
    started_at = info.get("process_started_at")
    process_start_s = (started_at - spawned) if started_at else None
    load_s = (info.get("model") or {}).get("load_s")
    print(f"  ready after {ready - spawned:.2f} s (process up {format_s(process_start_s).strip()} s, "
          f"model load {format_s(load_s).strip()} s)", flush=True)
    return {"process_start": process_start_s, "model_load": load_s, "ready": ready - spawned}


def run_jobs(args: argparse.Namespace, url: str, case, image: str) -> Stage:
    """The first job after ready (marked cold start), then `--warm-runs` identical ones: one stage."""
    client = make_client(args.target, url, factory=args.client_factory)
    stage = Stage(name=f"{case.name} [u=1]", concurrency=1, jobs_per_user=1 + args.warm_runs)
    try:
        first = run_job(client, case, image, served_by=args.target)
        first.cold_start = True
        stage.jobs.append(first)
        print(f"  first inference: {first.status} {format_s(first.e2e_s).strip()} s", flush=True)
        for i in range(args.warm_runs):
            rec = run_job(client, case, image, served_by=args.target)
            stage.jobs.append(rec)
            print(f"  warm inference {i + 1}/{args.warm_runs}: {rec.status} {format_s(rec.e2e_s).strip()} s", flush=True)
    finally:
        close = getattr(client, "close", None)
        if close:
            close()
    return stage


def coldstart_report(args: argparse.Namespace, case, stage: Stage, target, stages_s: dict, cold_total: float | None,
                     spawned: float, ready: float, info: dict) -> Report:
    """The coldstart report: the jobs as one stage, the stage times beside the article's figures and
    which of its stages each of ours stands for."""
    model = dict(info.get("model") or {})
    return Report(
        role="coldstart", kind="measured", name=f"coldstart-{args.target}", target=args.target, cases=[case], stages=[stage],
        environment=environment(), model={**model, "source": model.get("source", args.model)},
        config=RunConfig(driver="bench coldstart", cases=args.case, server=server_config(args, target),
                         load=LoadConfig(mode="coldstart", cpus=target.load_cpus)),
        coldstart={"stages_s": stages_s, "cold_total_s": cold_total, "warm_s": stages_s["warm_inference"],
                   "spawned_at": spawned, "ready_at": ready, "process_started_at": info.get("process_started_at"),
                   "ready_info": info,
                   "article_s": {**article.COLDSTART_S, "warm": article.WARM_S},
                   "mapping": {"instance_start": "process_start", "model_load": "model_load",
                               "inference": "first_inference"}})


def print_table(stages_s: dict, cold_total: float | None) -> None:
    """Measured stage times beside the article's (its instance start against our process start)."""
    a = article.COLDSTART_S
    print(f"\n{'stage':<16} {'measured s':>11} {'article s':>10}")
    rows = [("process_start", a["instance_start"]), ("model_load", a["model_load"]), ("ready", None),
            ("first_inference", a["inference"]), ("warm_inference", article.WARM_S)]
    for key, quoted in rows:
        print(f"{key:<16} {format_s(stages_s[key], 11)} {format_s(quoted, 10)}")
    print(f"{'cold total':<16} {format_s(cold_total, 11)} {format_s(sum(a.values()), 10)}")
