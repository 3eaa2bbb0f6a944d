"""The clients' own overhead per request: what each client adds on top of the server's queue + inference.

    python -m clients.overhead                      # starts the tiny-model server, cases small,medium,large
    python -m clients.overhead --url http://127.0.0.1:8000 --cases light --runs 5

For each case the same image goes through `LocalClient` (upload + decompose + long-poll + zip download)
and `VertexAIClient` (base64 + JSON + SDK `predict` + base64 PNG decoding) against the same server, one
request at a time (no queueing). Overhead = client total − server-reported queue_s − inference_s, i.e.
encoding, HTTP, polling, transfer and decoding. The table gives the mean over `--runs` (after one
warm-up call per client and case) and the Vertex adapter's extra cost relative to the job API.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator

from loadlab.stats import summarize


def _overhead(result) -> float:
    t = result.timings
    return t["total_s"] - (t.get("queue_s") or 0.0) - (t.get("inference_s") or 0.0)


@contextlib.contextmanager
def _server(url: str, server_args: list[str]) -> Iterator[str]:
    if url:
        yield url
        return
    from server.process import ServerProcess

    with ServerProcess(*server_args) as proc:
        yield proc.url


def _image(case, image_dir: str, content: str) -> str:
    """White (the article's test image; PNG compresses it to almost nothing) or noise (incompressible:
    the request size a photo-like poster would have; 2048 px noise is over the 1.5 MB shared limit)."""
    from loadlab.cases import test_image

    if content == "white":
        return str(test_image(case, image_dir))
    import os
    from pathlib import Path

    from PIL import Image

    path = Path(image_dir) / f"noise_{case.image_px}.png"
    if not path.exists():
        px = case.image_px
        Image.frombytes("RGB", (px, px), os.urandom(px * px * 3)).save(path, compress_level=1)
    return str(path)


def measure(url: str, cases, runs: int, image_dir: str, content: str = "white") -> list[dict]:
    from clients.local import LocalClient
    from clients.vertex import VertexAIClient

    rows = []
    local, vertex = LocalClient(url), VertexAIClient(api_endpoint=url)
    try:
        for case in cases:
            path = _image(case, image_dir, content)
            row: dict = {"case": case.name, "image_px": case.image_px, "layers": case.layers,
                         "resolution": case.resolution}
            for label, client in (("local", local), ("vertex", vertex)):
                first = client.decompose_image(path, case.layers, case.resolution)  # warm-up, fills the cache
                overheads, totals, servers, cached = [], [], [], 0
                for _ in range(runs):
                    result = client.decompose_image(path, case.layers, case.resolution)
                    overheads.append(_overhead(result))
                    totals.append(result.timings["total_s"])
                    servers.append(result.timings["total_s"] - overheads[-1])
                    cached += bool(result.cached)
                spread = summarize(overheads)
                row[label] = {"overhead_s": spread["mean"], "overhead_sd": spread["std"],
                              "total_s": summarize(totals)["mean"], "server_s": summarize(servers)["mean"],
                              "cached": cached, "first_overhead_s": _overhead(first),
                              "first_cached": bool(first.cached)}
            row["request_bytes"] = vertex.last_request_info.get("request_bytes")
            rows.append(row)
            print(_format_row(row), file=sys.stderr, flush=True)
    finally:
        local.close()
        vertex.close()
    return rows


def _format_row(r: dict) -> str:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="", help="a running server (default: start the tiny-model server)")
    parser.add_argument("--cases", default="small,medium,large", help="bench/cases.py set or list")
    parser.add_argument("--runs", type=int, default=3, help="measured calls per client and case")
    parser.add_argument("--content", choices=["white", "noise"], default="white",
                        help="test image content: white (article) or noise (realistic request sizes)")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra argument for `python -m server` when started here (repeatable)")
    args = parser.parse_args(argv)
    from loadlab.cases import parse_cases

    cases = parse_cases(args.cases)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="overhead-") as image_dir, _server(args.url, args.server_arg) as url:
        print(HEADER, file=sys.stderr)
        rows = measure(url, cases, args.runs, image_dir, args.content)
    print(HEADER)
    for row in rows:
        print(_format_row(row))
    print(f"\n{args.content} images; {args.runs} runs per client and case after one warm-up; overhead = client total − server "
          f"queue_s − inference_s; {time.perf_counter() - t0:.0f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
