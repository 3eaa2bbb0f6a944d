"""python -m locustfiles.lateness: the open-loop dispatcher's own lateness (submitted - scheduled) at
a given arrival rate against a fast endpoint, measured through a real headless Locust run.

    python -m locustfiles.lateness                      # 20 arrivals/s Poisson for 60 s, stand-in client
    python -m locustfiles.lateness --http --seconds 120 # each job also a real HTTP GET to a local endpoint

The endpoint is the stand-in client of `tests/fakeclient.py` with no service time (with
`--http` it also GETs a tiny `python -m http.server` on 127.0.0.1), so what is measured is the load
generator: gevent's timer, the dispatcher, the spawned greenlet, the client's own work. Prints the
lateness percentiles of the report Locust wrote and the target (goal: p99 <= 20 ms at 20/s).
Run it on a quiet machine: other processes on the same cores show up as lateness.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadlab.arrival_modes import RATE_MODES
from loadlab.schema import Report
from loadlab.stats import summarize

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "locustfiles" / "decompose.py"
TARGET_P99_S = 0.020


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout_s: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the local endpoint did not listen on {port}")


def measure(rate: float, seconds: float, arrival: str = "poisson", seed: int = 1, http: bool = False,
            processes: int = 0, workdir: Path | None = None) -> Report:
    """Run Locust open loop at `rate` for `seconds` against the stand-in client; the measured report."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="loadlab-lateness-"))
    env = {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0", "LOADLAB_FAKE_HTTP": "1" if http else "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    endpoint = None
    host = "http://fake"
    if http:
        port = free_port()
        endpoint = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                                     "--directory", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(port)
        host = f"http://127.0.0.1:{port}/"
    out = workdir / "report.json"
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
           "--client-factory", "tests.fakeclient:make_client", "--arrival", arrival, "--rates", f"{rate:g}",
           "--stage-seconds", f"{seconds:g}", "--seed", str(seed), "--report-out", str(out),
           "--report-name", "lateness", "--loglevel", "WARNING"]
    if processes:
        cmd += ["--processes", str(processes)]
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=seconds + 120)
    finally:
        if endpoint is not None:
            endpoint.terminate()
            endpoint.wait(timeout=30)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"locust exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return Report.load(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m locustfiles.lateness", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="arrivals per second (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run (default 60)")
    parser.add_argument("--arrival", default="poisson", choices=RATE_MODES)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--http", action="store_true", help="each job also GETs a local http.server")
    parser.add_argument("--processes", type=int, default=0, help="Locust --processes (0 = one process)")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report = measure(args.rate, args.seconds, args.arrival, args.seed, args.http, args.processes)
    jobs = [j for s in report.stages for j in s.jobs]
    late = summarize(j.lateness_s for j in jobs if j.lateness_s is not None)
    statuses = {st: sum(j.status == st for j in jobs) for st in sorted({j.status for j in jobs})}
    endpoint = "stand-in client + HTTP GET to a local http.server" if args.http else "stand-in client, 0 s service"
    print(f"dispatch lateness (submitted - scheduled), {args.arrival} {args.rate:g}/s for {args.seconds:g} s, "
          f"{endpoint}, {args.processes or 1} load-generator process(es)")
    print(f"  arrivals {len(jobs)} {statuses}; load average before the run {load:.2f} on {os.cpu_count()} CPUs"
          if load is not None else f"  arrivals {len(jobs)} {statuses}")
    print("  " + "  ".join(f"{k} {late[k] * 1000:.2f} ms" for k in ("mean", "p50", "p95", "p99", "p99.9", "max")))
    met = late["p99"] is not None and late["p99"] <= TARGET_P99_S
    print(f"  target p99 <= {TARGET_P99_S * 1000:g} ms: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
