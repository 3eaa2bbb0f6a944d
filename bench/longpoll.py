"""`python -m bench.longpoll`: how fast /healthz and a new upload answer while N clients long-poll
`GET /api/status/{id}?wait=60` at once and the model is busy (goal: p99 within 100 ms at N = 200)."""

from __future__ import annotations

import argparse
import asyncio
import io
import time

import httpx
from PIL import Image

from loadlab.stats import summarize

GOAL_P99_S = 0.100


def _png(seed: int, px: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (px, px), (seed % 256, (seed // 256) % 256, 7)).save(buf, "PNG")
    return buf.getvalue()


async def _measure(url: str, clients: int, seconds: float, interval_s: float, busy_layers: int,
                   busy_resolution: int) -> dict:
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=90) as http:
        r = await http.post("/api/upload", files={"file": ("busy.png", _png(0), "image/png")})
        r.raise_for_status()
        file_id = r.json()["file_id"]
        # One long job keeps the model (and the CPU) busy; one queued job per client to long-poll on.
        busy = (await http.post("/api/decompose", json={"file_id": file_id, "num_layers": busy_layers,
                                                        "resolution": busy_resolution})).json()["job_id"]
        job_ids = []
        for i in range(clients):
            r = await http.post("/api/decompose", json={"file_id": file_id, "num_layers": 1 + i % 10,
                                                        "resolution": 640})
            r.raise_for_status()
            job_ids.append(r.json()["job_id"])

        in_flight = 0
        stop = asyncio.Event()

        async def poller(job_id: str) -> None:
            nonlocal in_flight
            while not stop.is_set():
                in_flight += 1
                try:
                    await http.get(f"/api/status/{job_id}", params={"wait": 60})
                finally:
                    in_flight -= 1

        tasks = [asyncio.create_task(poller(j)) for j in job_ids]
        deadline = time.monotonic() + 30
        while in_flight < clients and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # let every poll reach the server and park there

        health_s, upload_s, statuses, min_in_flight = [], [], set(), in_flight
        end = time.monotonic() + seconds
        i = 1
        # Probes on their own connection pool: a new client arriving, not one of the pollers.
        async with httpx.AsyncClient(base_url=url, timeout=30) as probe:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                r = await probe.get("/healthz")
                health_s.append(time.perf_counter() - t0)
                statuses.add(r.status_code)
                t0 = time.perf_counter()
                r = await probe.post("/api/upload", files={"file": (f"p{i}.png", _png(i), "image/png")})
                upload_s.append(time.perf_counter() - t0)
                statuses.add(r.status_code)
                min_in_flight = min(min_in_flight, in_flight)
                i += 1
                await asyncio.sleep(interval_s)
        busy_status = (await http.get(f"/api/status/{busy}")).json()["status"]
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"clients": clients, "seconds": seconds, "pollers_in_flight_min": min_in_flight,
            "model_busy_job_status": busy_status, "statuses": sorted(statuses),
            "healthz": summarize(health_s), "upload": summarize(upload_s)}


def run(clients: int = 200, seconds: float = 20.0, interval_s: float = 0.05, url: str | None = None,
        busy_layers: int = 10, busy_resolution: int = 1024) -> dict:
    """Measure against `url`, or against a fresh `python -m server` (tiny model, cache off)."""
    if url:
        return asyncio.run(_measure(url, clients, seconds, interval_s, busy_layers, busy_resolution))
    from server.process import ServerProcess

    with ServerProcess(cache_ttl=0, queue_limit=clients + 8, shutdown_grace_s=1) as server:
        return asyncio.run(_measure(server.url, clients, seconds, interval_s, busy_layers, busy_resolution))


def report(result: dict) -> str:
    lines = [f"{result['clients']} clients long-polling status?wait=60 (at least {result['pollers_in_flight_min']} "
             f"in flight throughout), model busy ({result['model_busy_job_status']}), {result['seconds']:g} s:"]
    for name in ("healthz", "upload"):
        s = result[name]
        verdict = "met" if s["p99"] is not None and s["p99"] <= GOAL_P99_S else "NOT met"
        lines.append(f"  {name:8s} n={s['count']:4d}  p50 {s['p50'] * 1000:7.1f} ms  p95 {s['p95'] * 1000:7.1f} ms  "
                     f"p99 {s['p99'] * 1000:7.1f} ms  max {s['max'] * 1000:7.1f} ms   goal p99 <= "
                     f"{GOAL_P99_S * 1000:.0f} ms: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.longpoll", description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--interval", type=float, default=0.05, help="pause between probes, s")
    p.add_argument("--url", default=None, help="a running server (default: start one, tiny model)")
    args = p.parse_args(argv)
    print(report(run(args.clients, args.seconds, args.interval, args.url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
