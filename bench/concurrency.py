"""python -m bench concurrency: the source article's benchmark 3 on Locust — stages of 1, 5, 10, 20
concurrent users against a server this command starts and stops (or `--url`).

It runs `locust --headless -f locustfiles/decompose.py` in a subprocess (Locust's gevent patching
stays out of this process), shows the stage progress, and then reads the measured report the
locustfile wrote (reports/measured/) plus Locust's own CSV/HTML/JSON under reports/locust/.

Per stage it prints count, mean, p95 and throughput, and the ratio of the mean to the FIFO ideal:
one worker serving N jobs submitted at once gives a mean of (N+1)/2 x S (burst, `--jobs-per-user 1`),
and N jobs always in flight give N x S (closed loop), S being the single-job time: the `u=1` stage
of the same run, else `--service-s`, else the matching stage of `--single-report`.
A ratio near 1 is a FIFO queue; the article's local figures (142.3 s at N=5, 285.1 s at N=10 for
S = 28.7 s) are ratios of 1.65 and 1.81: every job finished at the end, as if all shared the GPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.measure import add_target_options, model_info, server_config, target_server
from bench.pinning import service_inflation
from loadlab import article
from loadlab.blocks import FifoIdeal, FifoIdealStage
from loadlab.schema import Report
from loadlab.stats import fifo_ideal_mean, format_s

LOCUSTFILE = Path(__file__).resolve().parent.parent / "locustfiles" / "decompose.py"


def ideal_mean(users: int, jobs_per_user: int | None, service_s: float, workers: int = 1) -> float | None:
    """FIFO-ideal mean latency of a stage on one worker: burst of one job per user -> (N+1)/2 x S;
    closed loop (N in flight) -> N x S. None where neither applies (bursts of several jobs per user)
    or with more than one worker (no single-queue ideal here)."""
    if workers != 1:
        return None
    if jobs_per_user == 1:
        return fifo_ideal_mean(users, service_s)
    if not jobs_per_user:
        return users * service_s
    return None


def service_time(report: Report, args: argparse.Namespace) -> tuple[float | None, str]:
    """S for the FIFO ideal and where it came from."""
    for stage in report.stages:
        if stage.concurrency == 1 and stage.summary.mean:
            return stage.summary.mean, f"stage {stage.name} of this run"
    if args.service_s:
        return args.service_s, "--service-s"
    if args.single_report:
        single = Report.load(args.single_report)
        for stage in single.stages:
            if stage.summary.mean:
                return stage.summary.mean, f"{args.single_report} stage {stage.name}"
    return None, "unknown"


def single_service_s(report: Report, args: argparse.Namespace) -> tuple[float | None, str]:
    """The model time of a job run on its own (server-measured service_s), which each stage's model time
    is compared with: the u=1 stage of this run, else the matching stage of `--single-report`."""
    for stage in report.stages:
        if stage.concurrency == 1 and stage.summary.service_s.mean:
            return stage.summary.service_s.mean, f"stage {stage.name} of this run"
    if args.single_report:
        for stage in Report.load(args.single_report).stages:
            if stage.summary.service_s.mean:
                return stage.summary.service_s.mean, f"{args.single_report} stage {stage.name}"
    return None, "unknown"


def locust_command(args: argparse.Namespace, url: str, report_out: Path, prefix: Path) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
           "--stages", args.stages, "--cases", args.cases, "--target", args.target,
           "--report-out", str(report_out), "--report-name", f"concurrency-{args.target}-{mode_of(args)}",
           "--csv", str(prefix), "--html", f"{prefix}.html", "--json-file", str(prefix),
           "--stop-timeout", str(int(args.stop_timeout)),
           "--loglevel", "INFO"]
    if args.jobs_per_user:
        cmd += ["--jobs-per-user", str(args.jobs_per_user)]
        if args.max_stage_seconds:
            cmd += ["--max-stage-seconds", str(args.max_stage_seconds)]
    else:
        cmd += ["--stage-seconds", str(args.stage_seconds)]
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    if args.client_factory:
        cmd += ["--client-factory", args.client_factory]
    return cmd


def mode_of(args: argparse.Namespace) -> str:
    return "burst" if args.jobs_per_user else "closed"


def run_locust(cmd: list[str], log_path: Path) -> int:
    """Run Locust, keep its whole log in `log_path` and echo the stage progress lines."""
    started = time.monotonic()
    done = threading.Event()

    def heartbeat():
        while not done.wait(15):
            print(f"  ... {time.monotonic() - started:.0f} s", flush=True)

    threading.Thread(target=heartbeat, daemon=True).start()
    with open(log_path, "w") as log, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                       text=True, bufsize=1) as proc:
        try:
            for line in proc.stdout:
                log.write(line)
                if "[loadlab]" in line or "Traceback" in line or "Error" in line:
                    print(f"  [{time.monotonic() - started:6.1f} s] {line.split('[loadlab] ')[-1].rstrip()}", flush=True)
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()
        finally:
            done.set()


def warm_up(args: argparse.Namespace, url: str) -> None:
    """Unrecorded jobs first (one per case by default): the first inference after a server start is
    several times slower (cold caches), and would otherwise inflate the u=1 stage and so S."""
    if not args.warmup:
        return
    import tempfile

    from clients.factory import make_client
    from clients.record import run_job
    from loadlab.cases import parse_cases, test_image

    client = make_client(args.target, url, factory=args.client_factory)
    folder = Path(tempfile.mkdtemp(prefix="loadlab-warmup-"))
    try:
        for case in parse_cases(args.cases):
            for _ in range(args.warmup):
                rec = run_job(client, case, str(test_image(case, folder / case.name)), served_by=args.target)
                print(f"  warm-up {case.name}: {rec.status} {format_s(rec.e2e_s).strip()} s (not recorded)", flush=True)
    finally:
        close = getattr(client, "close", None)
        if close:
            close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench concurrency", description=__doc__.split("\n")[0])
    parser.add_argument("--stages", default="1,5,10,20", help="users per stage (article: 1,5,10,20)")
    parser.add_argument("--jobs-per-user", type=int, default=1,
                        help="burst: jobs per user per stage (1 = article's all at once); 0 = closed loop")
    parser.add_argument("--stage-seconds", type=float, default=60.0, help="closed loop: seconds per stage")
    parser.add_argument("--max-stage-seconds", type=float, default=0.0, help="bound on a burst stage (0 = none)")
    parser.add_argument("--cases", default="medium", help="case set or list (article's benchmark 3: medium)")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded jobs per case before the stages")
    parser.add_argument("--processes", type=int, default=0, help="Locust worker processes (0 = one process)")
    parser.add_argument("--stop-timeout", type=int, default=600, help="seconds running jobs may take to finish at stop (> N x S)")
    parser.add_argument("--service-s", type=float, default=0.0, help="S for the FIFO ideal when there is no u=1 stage")
    parser.add_argument("--single-report", type=Path, default=None, help="take S from a `bench single` report")
    parser.add_argument("--out", type=Path, default=None, help="report path (default reports/measured/concurrency-...json)")
    parser.add_argument("--locust-dir", type=Path, default=Path("reports/locust"), help="Locust's CSV/HTML/JSON")
    parser.add_argument("--short", action="store_true", help="CI mode: light case, stages 1,5, one job per user")
    add_target_options(parser)
    args = parser.parse_args(argv)
    if args.short:
        args.cases, args.stages = "light", "1,5"
        if args.jobs_per_user == 0:
            args.stage_seconds = min(args.stage_seconds, 20.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"concurrency-{args.target}-{mode_of(args)}-{stamp}"
    out = args.out or Path("reports/measured") / f"{name}.json"
    args.locust_dir.mkdir(parents=True, exist_ok=True)
    prefix = args.locust_dir / name
    if out.exists():
        os.remove(out)   # the report found after the run must be this run's

    with target_server(args) as target:
        warm_up(args, target.url)
        cmd = locust_command(args, target.url, out, prefix)
        print(f"target {args.target} at {target.url}; stages {args.stages}, "
              + (f"{args.jobs_per_user} job(s) per user at once" if args.jobs_per_user else f"{args.stage_seconds:g} s closed loop")
              + f", cases {args.cases}\n$ {' '.join(cmd)}", flush=True)
        rc = run_locust(cmd, Path(f"{prefix}.log"))
        model = model_info(target, args)
    if not out.exists():
        print(f"Locust exited with {rc} and wrote no report; its log: {prefix}.log", file=sys.stderr)
        return 2

    report = Report.load(out)
    add_run_context(report, args, target, model, rc, prefix)
    add_fifo_ideal(report, args)
    add_service_inflation(report, args)
    report.save(out)
    print_stages(report, args, target)
    print(f"\nmeasured report: {out}\nLocust outputs: {prefix}.html, {prefix}_stats.csv, {prefix}.json")
    return 0 if rc == 0 else 1


def add_run_context(report: Report, args: argparse.Namespace, target, model, rc: int, prefix: Path) -> None:
    """What only this process knows about the Locust run: the model, the server this tool started,
    the CPUs Locust ran on, where its outputs are and how it exited."""
    report.model = model
    report.config.server = server_config(args, target)
    if report.config.load is not None:
        report.config.load.cpus = target.load_cpus  # Locust ran as a child of this pinned process
    report.config.outputs = {"csv": f"{prefix}_stats.csv", "html": f"{prefix}.html",
                             "json": f"{prefix}.json", "log": f"{prefix}.log"}
    report.extra["locust_exit_code"] = rc


def add_fifo_ideal(report: Report, args: argparse.Namespace) -> None:
    """`extra["fifo_ideal"]`: each stage's mean against the FIFO ideal with S, and against the same
    ideal with the stage's own mean model time (which separates the queue discipline from a slower
    model — CPU contention, thermal — during the stage)."""
    service_s, source = service_time(report, args)
    fifo = {}
    for stage in report.stages:
        ideal = ideal_mean(stage.concurrency, stage.jobs_per_user, service_s, args.server_workers) if service_s else None
        mean = stage.summary.mean
        own_s = stage.summary.service_s.mean
        own_ideal = ideal_mean(stage.concurrency, stage.jobs_per_user, own_s, args.server_workers) if own_s else None
        fifo[stage.name] = FifoIdealStage(service_s=service_s, ideal_mean_s=ideal,
                                          ratio=(mean / ideal) if (mean and ideal) else None,
                                          stage_service_s=own_s, stage_ideal_mean_s=own_ideal,
                                          stage_ratio=(mean / own_ideal) if (mean and own_ideal) else None)
    report.extra[FifoIdeal.KEY] = FifoIdeal(
        service_s=service_s, source=source, stages=fifo,
        formula="burst: (N+1)/2 x S; closed loop: N x S (one FIFO worker)").to_extra()


def add_service_inflation(report: Report, args: argparse.Namespace) -> None:
    """`extra["service_inflation"]`: how much slower the model ran in each stage than alone."""
    alone_s, alone_source = single_service_s(report, args)
    inflation = {stage.name: service_inflation(stage.summary.service_s.mean, alone_s) for stage in report.stages}
    report.extra["service_inflation"] = {"single_service_s": alone_s, "source": alone_source, "stages": inflation}


def print_stages(report: Report, args: argparse.Namespace, target) -> None:
    """The per-stage table, with the article's quoted figures for the same target beside each stage."""
    fifo, infl = FifoIdeal.of(report), report.extra["service_inflation"]
    quoted = article.CONCURRENCY.get(args.target, {})
    print(f"\nS = {format_s(fifo.service_s).strip()} s ({fifo.source}); model time alone "
          f"{format_s(infl['single_service_s']).strip()} s ({infl['source']}); server CPUs "
          f"{target.server_cpus or 'not pinned'}, load CPUs {target.load_cpus or 'not pinned'}")
    print(f"{'stage':<7} {'ok':>7} {'mean':>7} {'p95':>7} {'max':>7} {'thr/min':>8} {'ideal':>7} {'ratio':>6} "
          f"{'S_stage':>7} {'ratio*':>6} {'infl':>5} | article")
    for stage in report.stages:
        s, f = stage.summary, fifo.stages[stage.name]
        thr = s.throughput_per_s * 60 if s.throughput_per_s else None
        q = quoted.get(stage.concurrency)
        qtxt = f"{q[0]}/{stage.concurrency}, {q[1]} s" if q and q[1] else (f"{q[0]}/{stage.concurrency}" if q else "-")
        print(f"{stage.name:<7} {s.completed:>3}/{s.jobs:<3} {format_s(s.mean)} {format_s(s.p95)} {format_s(s.max)} "
              f"{format_s(thr, 8)} {format_s(f.ideal_mean_s)} {format_s(f.ratio, 6)} {format_s(f.stage_service_s)} "
              f"{format_s(f.stage_ratio, 6)} {format_s(infl['stages'][stage.name], 5)} | {qtxt}")
    print("ratio = mean / ideal with S; ratio* = the same with the stage's own mean model time (server-measured); "
          "infl = S_stage / the model time alone")
