"""python -m bench server: the job server's own figures under the article's concurrency test, through
the local client — single-job time S, server overhead at N=1, N jobs at once against the FIFO ideal,
completion-detection delay, and the micro-batching gain (`--max-batch 3` against 1). Prints; writes
no report. The result cache of the servers it starts is off (the test images are identical)."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time

from bench import pinning
from bench.measure import add_pin_options, started_server
from clients.factory import make_client
from clients.record import run_job
from loadlab.cases import parse_cases, test_image
from loadlab.schema import COMPLETED, Case, JobRecord
from loadlab.stats import fifo_ideal_mean, summarize


def until_done_s(rec: JobRecord) -> float | None:
    """Submit → the client learned the job ended: the client's total minus its upload and its download
    of the layers, i.e. the part of a job that the server's queue, model and long-poll decide."""
    x = rec.extra
    if rec.status != COMPLETED or x.get("client_total_s") is None:
        return None
    return x["client_total_s"] - (x.get("upload_s") or 0.0) - (x.get("transfer_s") or 0.0)


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.1f} ms"


class JobServerBench:
    """Jobs of one case against one server through the local client (or `client_factory`'s stand-in)."""

    def __init__(self, url: str, case: Case, image: str, client_factory: str = ""):
        self.url, self.case, self.image, self.client_factory = url, case, image, client_factory

    def client(self):
        client = make_client("local", self.url, factory=self.client_factory)
        upload = getattr(client, "upload", None)
        if upload is not None:
            upload(self.image)  # before any gate: a burst measures submits, not uploads
        return client

    def one(self, client) -> JobRecord:
        return run_job(client, self.case, self.image, served_by="local")

    def singles(self, runs: int) -> list[JobRecord]:
        """One warm-up job (the first call pays lazy initialisation), then `runs` jobs one at a time."""
        with contextlib.closing(self.client()) as client:
            self.one(client)
            return [self.one(client) for _ in range(runs)]

    def burst(self, n: int) -> tuple[list[JobRecord], float]:
        """n clients, one thread each, released together; the records and the makespan (s)."""
        clients = [self.client() for _ in range(n)]
        records: list[JobRecord | None] = [None] * n
        gate = threading.Barrier(n + 1)

        def user(i: int) -> None:
            gate.wait()
            records[i] = self.one(clients[i])

        threads = [threading.Thread(target=user, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        t0 = time.time()
        gate.wait()
        for t in threads:
            t.join()
        for client in clients:
            client.close()
        done = [r for r in records if r is not None]
        return done, max((r.finished or t0 for r in done), default=t0) - t0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench server", description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", default="1,5,10,20", help="comma list of N")
    p.add_argument("--single-runs", type=int, default=3, help="runs that measure S")
    p.add_argument("--batch-jobs", type=int, default=6, help="jobs per batching comparison run (0 = skip it)")
    p.add_argument("--case", default="light", help="the jobs' case (loadlab/cases.py; light = 256 px, 2 layers, 640)")
    p.add_argument("--model", default="tiny")
    p.add_argument("--url", default="", help="measure this server (no batching comparison: it needs two servers)")
    p.add_argument("--client-factory", default="", help=argparse.SUPPRESS)
    add_pin_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x]
    (case,) = parse_cases(args.case)
    image = str(test_image(case, tempfile.mkdtemp(prefix="loadlab-server-bench-")))
    started = time.time()
    batching = bool(args.batch_jobs and not args.url)   # the comparison needs a second server of ours

    with _server(args, max_batch=1) as url:
        bench = JobServerBench(url, case, image, args.client_factory)
        service_s = print_singles(bench, args.single_runs, case)
        print_bursts(bench, levels, service_s)
        if batching:
            _, makespan1 = bench.burst(args.batch_jobs)   # the max-batch 1 side, on the server already up

    if batching:
        print_batching(args, case, image, makespan1)
    print(f"\ntotal bench time {time.time() - started:.0f} s")
    return 0


def print_singles(bench: JobServerBench, runs: int, case: Case) -> float:
    """S (the mean submit → done-known time of a job alone) and the server's overhead at N=1 over
    the inference; returns S, which the bursts' FIFO ideals are computed from."""
    singles = [r for r in bench.singles(runs) if until_done_s(r) is not None]
    service_s = summarize(until_done_s(r) for r in singles)["mean"]
    infer_s = summarize(r.service_s for r in singles)["mean"]
    overhead = summarize(until_done_s(r) - r.service_s for r in singles)
    print(f"\nsingle job ({case.image_px}px, {case.layers} layers, {case.resolution}): S = {service_s:.3f} s "
          f"(inference {infer_s:.3f} s, {len(singles)} runs)")
    print(f"server overhead at N=1 (submit → done known, − inference_s): mean {ms(overhead['mean'])}, "
          f"max {ms(overhead['max'])}; goal ≤ 15 ms + 2 % of S = {ms(0.015 + 0.02 * service_s)}")
    return service_s


def print_bursts(bench: JobServerBench, levels: list[int], service_s: float) -> None:
    """One burst of N jobs at once per level against the FIFO ideal, and the completion-detection
    delay per level and over all jobs."""
    # Two ideals: from S measured above, and from this burst's own service time (makespan / N). On a
    # shared CPU the second is the fair one: it does not mistake other load for queueing.
    print(f"\n{'N':>3} {'ok':>6} {'mean s':>8} {'p95 s':>8} {'ideal s':>8} {'mean/ideal':>10} "
          f"{'mean/ideal(burst S)':>19} {'detect mean':>12} {'detect max':>11} {'makespan s':>10}")
    detects: list[float] = []
    for n in levels:
        records, makespan = bench.burst(n)
        ok = [r for r in records if until_done_s(r) is not None]
        stats = summarize(until_done_s(r) for r in ok)
        ideal = fifo_ideal_mean(n, service_s)
        burst_ideal = fifo_ideal_mean(n, makespan / n)
        stage_detects = [r.extra["detect_s"] for r in ok if r.extra.get("detect_s") is not None]
        detects += stage_detects
        d = summarize(stage_detects)
        print(f"{n:>3} {len(ok):>3}/{n:<2} {stats['mean']:>8.2f} {stats['p95']:>8.2f} {ideal:>8.2f} "
              f"{stats['mean'] / ideal:>10.3f} {stats['mean'] / burst_ideal:>19.3f} "
              f"{ms(d['mean']):>12} {ms(d['max']):>11} {makespan:>10.2f}")
    detect = summarize(detects)
    print(f"completion-detection delay over all jobs: mean {ms(detect['mean'])}, "
          f"p95 {ms(detect['p95'])}, max {ms(detect['max'])} (goal ≤ 10 ms)")


def print_batching(args: argparse.Namespace, case: Case, image: str, makespan1: float) -> None:
    """The same burst on a second server with `--max-batch 3`: the micro-batching gain over max-batch 1."""
    with _server(args, max_batch=3) as url:
        bench3 = JobServerBench(url, case, image, args.client_factory)
        bench3.singles(0)  # warm-up
        records, makespan3 = bench3.burst(args.batch_jobs)
    sizes = [r.extra.get("batch_size") for r in records]
    gain = makespan1 / makespan3
    print(f"\nmicro-batching, {args.batch_jobs} jobs at once: max-batch 1 {args.batch_jobs / makespan1 * 60:.2f} "
          f"jobs/min, max-batch 3 {args.batch_jobs / makespan3 * 60:.2f} jobs/min (batch sizes {sizes}); "
          f"gain ×{gain:.2f}")


@contextlib.contextmanager
def _server(args: argparse.Namespace, max_batch: int):
    """`--url` as given, else a tiny-model server with this batch size (cache off, queue 64)."""
    if args.url:
        yield args.url.rstrip("/")
        return
    options = {"model": args.model, "max_batch": max_batch, "cache_ttl": 0, "queue_limit": 64}
    with started_server(options, cpus=pinning.plan(not args.no_pin)) as target:
        server = target.server
        print(f"server (max-batch {max_batch}): {target.url} ready in {server.time_to_ready_s:.2f} s "
              f"(model load {server.ready_info['model']['load_s']:.2f} s); server CPUs "
              f"{target.server_cpus or 'not pinned'}, load CPUs {target.load_cpus or 'not pinned'}")
        yield target.url
