"""python -m bench overhead: what each client adds on top of the server's queue + inference, per case.

    python -m bench overhead                      # starts the tiny-model server, cases small,medium,large
    python -m bench overhead --url http://127.0.0.1:8000 --cases light --runs 5

For each case the same image goes through the local job API client (upload + decompose + long-poll + zip
download) and the Vertex AI adapter (base64 + JSON + SDK `predict` + base64 PNG decoding) against the
same server, one request at a time (no queueing). Overhead = client total − server-reported queue_s −
inference_s: encoding, HTTP, polling, transfer and decoding. The server we start keeps its result cache
on, so after one warm-up call per client and case only the client and transport cost remains; the
table gives the mean over `--runs` and the Vertex adapter's extra cost relative to the job API."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import pinning
from bench.measure import add_pin_options, started_server
from clients.factory import make_client
from clients.record import run_job
from loadlab.cases import parse_cases, test_image
from loadlab.schema import COMPLETED, Case, JobRecord
from loadlab.stats import summarize

TARGETS = ("local", "vertex")


def overhead_s(rec: JobRecord) -> float:
    """The client's own share of a completed job: its total minus the server's queue and model time."""
    return rec.extra["client_total_s"] - (rec.queue_s or 0.0) - (rec.service_s or 0.0)


def noise_image(case: Case, directory: str | Path) -> Path:
    """An incompressible RGB image of the case's upload size (the request size a photo-like poster
    has; 2048 px noise is over Vertex's 1.5 MB shared-endpoint limit), written once."""
    from PIL import Image

    path = Path(directory) / f"noise_{case.image_px}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        px = case.image_px
        Image.frombytes("RGB", (px, px), os.urandom(px * px * 3)).save(path, compress_level=1)
    return path


def measure(url: str, cases: list[Case], runs: int, image_dir: str, content: str = "white") -> list[dict]:
    """Per case and client: mean and std of the overhead over `runs` calls after one warm-up call."""
    clients = {target: make_client(target, url) for target in TARGETS}
    rows = []
    try:
        for case in cases:
            path = str(test_image(case, image_dir) if content == "white" else noise_image(case, image_dir))
            row: dict = {"case": case.name, "image_px": case.image_px, "layers": case.layers,
                         "resolution": case.resolution}
            for target, client in clients.items():
                first = run_job(client, case, path, served_by=target)  # warm-up; fills the server's cache
                records = [run_job(client, case, path, served_by=target) for _ in range(runs)]
                failed = [r.error for r in (first, *records) if r.status != COMPLETED]
                if failed:
                    raise RuntimeError(f"{target} client, case {case.name}: {failed[0]}")
                spread = summarize(overhead_s(r) for r in records)
                row[target] = {"overhead_s": spread["mean"], "overhead_sd": spread["std"],
                               "total_s": summarize(r.extra["client_total_s"] for r in records)["mean"],
                               "server_s": summarize((r.queue_s or 0.0) + (r.service_s or 0.0) for r in records)["mean"],
                               "cached": sum(bool(r.extra.get("cached")) for r in records),
                               "first_overhead_s": overhead_s(first), "first_cached": bool(first.extra.get("cached"))}
            row["request_bytes"] = clients["vertex"].last_request_info.get("request_bytes")
            rows.append(row)
            print(format_row(row), file=sys.stderr, flush=True)
    finally:
        for client in clients.values():
            client.close()
    return rows


def format_row(r: dict) -> str:
    lo, ve = r["local"], r["vertex"]
    return (f"| {r['case']:<6} | {r['image_px']:>5} px / {r['layers']} / {r['resolution']:<4} | "
            f"{lo['overhead_s'] * 1000:7.1f} ± {lo['overhead_sd'] * 1000:5.1f} | "
            f"{ve['overhead_s'] * 1000:7.1f} ± {ve['overhead_sd'] * 1000:5.1f} | "
            f"{(ve['overhead_s'] - lo['overhead_s']) * 1000:+8.1f} | {lo['server_s']:6.2f} / {ve['server_s']:6.2f} | "
            f"{(r['request_bytes'] or 0) / 1000:8.1f} | {lo['cached']}/{ve['cached']} | "
            f"{lo['first_overhead_s'] * 1000:7.1f} / {ve['first_overhead_s'] * 1000:7.1f} |")


HEADER = ("| case   | upload / layers / res  | local overhead ms | vertex overhead ms | vertex−local ms "
          "| server s (L/V)  | req kB   | cached L/V | 1st call overhead ms L/V |\n"
          "|--------|------------------------|-------------------|--------------------|-----------------"
          "|-----------------|----------|------------|--------------------------|")


@contextlib.contextmanager
def _server(url: str, server_args: list[str], pin: bool):
    if url:
        yield url.rstrip("/")
        return
    with started_server({}, server_args, cpus=pinning.plan(pin)) as target:  # cache on: see the module docstring
        yield target.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="", help="a running server (default: start the tiny-model server)")
    parser.add_argument("--cases", default="small,medium,large", help="case set or list (loadlab/cases.py)")
    parser.add_argument("--runs", type=int, default=3, help="measured calls per client and case")
    parser.add_argument("--content", choices=["white", "noise"], default="white",
                        help="test image content: white (article) or noise (realistic request sizes)")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra argument for `python -m server` when started here (repeatable)")
    add_pin_options(parser)
    args = parser.parse_args(argv)
    cases = parse_cases(args.cases)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="overhead-") as image_dir, _server(args.url, args.server_arg, not args.no_pin) as url:
        print(HEADER, file=sys.stderr)
        rows = measure(url, cases, args.runs, image_dir, args.content)
    print(HEADER)
    for row in rows:
        print(format_row(row))
    print(f"\n{args.content} images; {args.runs} runs per client and case after one warm-up; overhead = client total − server "
          f"queue_s − inference_s; {time.perf_counter() - t0:.0f} s wall")
    return 0
