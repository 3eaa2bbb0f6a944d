"""`python -m bench uploadflood`: how fast /healthz answers while N clients upload a large image at once
(goal: p99 within 100 ms during 30 concurrent 15 MB uploads), against the same server idle.

Each round probes /healthz while nothing else happens (idle), then while the uploads run (flood). The
pooled samples give p50/p99; the rounds are the independent replications of the 95 % interval."""

from __future__ import annotations

import argparse
import asyncio
import io
import struct
import threading
import time
import zlib

import httpx
import numpy as np
from PIL import Image

from loadlab.stats import mean_ci95, summarize

GOAL_P99_S = 0.100
MB = 1024 * 1024
PNG_SIGNATURE_AND_IHDR = 8 + 25  # the 8-byte signature, then IHDR: length, type, 13 bytes, CRC


def noise_png(target_bytes: int, seed: int = 0) -> bytes:
    """An RGB PNG of random pixels of about `target_bytes`: noise does not compress, so the file is
    about 3 bytes a pixel and the server decodes every one of them."""
    side = max(1, int((target_bytes / 3) ** 0.5))
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def variant(png: bytes, i: int) -> bytes:
    """The same image with a tEXt chunk naming `i`: other bytes (so another content id, stored anew),
    the same decoding work."""
    data = b"flood\0" + str(i).encode()
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return png[:PNG_SIGNATURE_AND_IHDR] + chunk + png[PNG_SIGNATURE_AND_IHDR:]


class HealthProbe:
    """GET /healthz every `interval_s` from a thread of its own with its own connection: the upload
    clients' event loop busy sending cannot delay (and so inflate) a probe."""

    def __init__(self, url: str, interval_s: float):
        self.url, self.interval_s = url, interval_s
        self.samples: list[float] = []
        self.statuses: set[int] = set()
        self._stop = threading.Event()
        self._probing = threading.Event()  # the first answer is in: the phase starts only then
        self._thread = threading.Thread(target=self._run, name="healthz-probe", daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                r = http.get("/healthz")
                self.samples.append(time.perf_counter() - t0)
                self.statuses.add(r.status_code)
                self._probing.set()
                self._stop.wait(self.interval_s)

    def __enter__(self) -> HealthProbe:
        # Building the client takes tens of ms on a loaded machine: a short flood could end before the
        # first probe, and its phase would hold no sample.
        self._thread.start()
        self._probing.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def _flood(url: str, bodies: list[bytes]) -> tuple[list[float], list[int]]:
    """Every body uploaded at once, each on its own connection: (seconds per upload, statuses)."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as http:
        async def one(i: int, body: bytes) -> tuple[float, int]:
            t0 = time.perf_counter()
            r = await http.post("/api/upload", files={"file": (f"flood{i}.png", body, "image/png")})
            return time.perf_counter() - t0, r.status_code

        done = await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return [s for s, _ in done], [code for _, code in done]


def _round(url: str, png: bytes, uploads: int, index: int, interval_s: float, idle_s: float) -> dict:
    bodies = [variant(png, index * uploads + i) for i in range(uploads)]
    with HealthProbe(url, interval_s) as idle:
        time.sleep(idle_s)
    with HealthProbe(url, interval_s) as flood:
        upload_s, statuses = asyncio.run(_flood(url, bodies))
    return {"idle": idle.samples, "flood": flood.samples, "upload": upload_s,
            "statuses": set(statuses) | idle.statuses | flood.statuses}


def _phase(rounds: list[dict], name: str) -> dict:
    """The pooled summary of one phase, and the mean of the rounds' p99 with its 95 % half-width."""
    summary = summarize([s for r in rounds for s in r[name]])
    summary["p99_mean"], summary["p99_ci95"] = mean_ci95([summarize(r[name])["p99"] for r in rounds])
    return summary


def measure(url: str, uploads: int = 30, mb: float = 15.0, rounds: int = 3, interval_s: float = 0.02,
            idle_s: float = 3.0) -> dict:
    png = noise_png(int(mb * MB))
    width, height = Image.open(io.BytesIO(png)).size
    done = [_round(url, png, uploads, i, interval_s, idle_s) for i in range(rounds)]
    return {"uploads": uploads, "upload_bytes": len(png), "width": width, "height": height, "rounds": rounds,
            "statuses": sorted(set().union(*(r["statuses"] for r in done))),
            "idle": _phase(done, "idle"), "flood": _phase(done, "flood"), "upload": _phase(done, "upload")}


def run(uploads: int = 30, mb: float = 15.0, rounds: int = 3, interval_s: float = 0.02, idle_s: float = 3.0,
        url: str | None = None, max_upload_mb: float = 20.0) -> dict:
    """Measure against `url`, or against a fresh `python -m server` (tiny model) taking `max_upload_mb`."""
    if url:
        return measure(url, uploads, mb, rounds, interval_s, idle_s)
    from server.process import ServerProcess

    with ServerProcess(max_upload_mb=max_upload_mb, cache_ttl=0, shutdown_grace_s=1) as server:
        return measure(server.url, uploads, mb, rounds, interval_s, idle_s)


def _ms(value: float | None) -> str:
    return f"{value * 1000:7.1f}" if value is not None else f"{'-':>7}"


def report(result: dict) -> str:
    lines = [f"{result['uploads']} concurrent uploads of {result['upload_bytes'] / MB:.1f} MB "
             f"({result['width']}x{result['height']} PNG), {result['rounds']} round(s), statuses "
             f"{result['statuses']}:"]
    for name in ("idle", "flood", "upload"):
        s = result[name]
        what = "upload  " if name == "upload" else f"healthz {name:5s}"
        line = (f"  {what} n={s['count']:5d}  p50 {_ms(s['p50'])} ms  p99 {_ms(s['p99'])} ms  "
                f"max {_ms(s['max'])} ms  p99 over rounds {_ms(s['p99_mean']).strip()} ms")
        if s["p99_ci95"] is not None:
            line += f" ± {_ms(s['p99_ci95']).strip()} ms (95 %)"
        if name == "flood":
            met = s["p99"] is not None and s["p99"] <= GOAL_P99_S
            line += f"   goal p99 <= {GOAL_P99_S * 1000:.0f} ms: {'met' if met else 'NOT met'}"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench uploadflood", description=__doc__.split("\n")[0])
    p.add_argument("--uploads", type=int, default=30, help="concurrent uploads per round")
    p.add_argument("--mb", type=float, default=15.0, help="size of each upload, MB")
    p.add_argument("--rounds", type=int, default=3, help="idle + flood rounds (the replications of the interval)")
    p.add_argument("--interval", type=float, default=0.02, help="pause between /healthz probes, s")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of idle probing per round")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="--max-upload-mb of the server we start")
    p.add_argument("--url", default=None, help="a running server (default: start one, tiny model)")
    args = p.parse_args(argv)
    if args.mb > args.max_upload_mb:
        p.error(f"--mb {args.mb:g} is over the server's --max-upload-mb {args.max_upload_mb:g}")
    print(report(run(args.uploads, args.mb, args.rounds, args.interval, args.idle, args.url, args.max_upload_mb)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
