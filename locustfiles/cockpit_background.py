"""The cockpit's simulations, off Locust's greenlets: the prediction and the bill run in a helper
process (`python -m simulator.predict_stage --serve`, one JSON request and answer a line; the bill is
`python -m simulator run` in a child of the helper). One helper per task, niced, started when the web
UI starts and again after a stop, never while a run goes on: forking the load generator's process
blocks its hub for tens of milliseconds (100-160 ms measured on this 2-core machine under load), which
an arrival then waits for. One request per helper at a time, bounded in time (the helper is killed
past it), killed at test stop and at exit. Reading the helper's answer yields to the other greenlets
(gevent has patched the pipes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

ROOT = Path(__file__).resolve().parent.parent
MAX_OUTPUT = 4 << 20
# `simulator run` refuses more than this many requests per month (simulator/limits.py); the bill
# simulates at most BILL_REQUESTS of them (fewer days, scaled to 30 by the simulator)
SIM_MONTHLY_MAX = 10_000_000
BILL_REQUESTS = 20_000
BILL_DEPLOYMENTS = "local,vertex,hybrid,ray"
BILL_REPLICATIONS = 3


def _nice() -> None:
    os.nice(10)   # the load generator's dispatch comes first


class ChildTask:
    """One helper process and its one request at a time, `timeout_s` at most; its last result kept."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.name, self.timeout_s = name, timeout_s
        self.proc: subprocess.Popen | None = None
        self.pending = False
        self.result: Any = None
        self.status = "not run"
        self.key: Any = None          # what the last result was computed for
        self.finished_at: float | None = None
        self.seconds: float | None = None   # wall time of the last request
        self.seq = 0                        # the request in progress (an older one's answer is dropped)

    @property
    def busy(self) -> bool:
        return self.pending

    def spawn(self) -> None:
        """Start the helper (call it when no run goes on: it forks this process)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "simulator.predict_stage", "--serve"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, cwd=ROOT, preexec_fn=_nice,
                                         env={**os.environ, "PYTHONPATH": str(ROOT)})

    def start(self, key: Any, request: dict[str, Any], parse: Callable[[Any], Any]) -> bool:
        if self.pending:
            return False
        self.spawn()   # a no-op unless the helper died (killed past its time): then the one fork mid-run
        self.key, self.pending, self.status = key, True, "running"
        self.seq += 1
        gevent.spawn(self._ask, self.proc, self.seq, json.dumps(request), parse)
        return True

    def _ask(self, proc: subprocess.Popen, seq: int, line: str, parse: Callable[[Any], Any]) -> None:
        t0 = time.monotonic()
        try:
            with gevent.Timeout(self.timeout_s):
                proc.stdin.write(line + "\n")
                proc.stdin.flush()
                answer = proc.stdout.readline(MAX_OUTPUT)
        except gevent.Timeout:
            if seq == self.seq:
                self.pending = False
                self._kill(f"stopped after {self.timeout_s:g} s")
            return
        except (OSError, ValueError, AttributeError):   # killed at stop: pipes closed under us
            answer = ""
        if seq != self.seq or not answer:
            return   # killed at stop (kill() has said so); a newer request owns the state now
        self.pending = False
        self.seconds = time.monotonic() - t0
        try:
            reply = json.loads(answer)
            if not reply.get("ok"):
                self.status = f"failed: {str(reply.get('error'))[:300]}"
                return
            self.result = parse(reply["result"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.status = f"failed: unreadable answer ({exc.__class__.__name__})"
            return
        self.status, self.finished_at = "done", time.time()

    def _kill(self, status: str) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.status = status

    def kill(self) -> None:
        """At test stop: the request in progress ends (computed again for the final figures)."""
        if self.pending:
            self.seq += 1
            self._kill("stopped at test stop")
            self.key, self.pending = None, False

    def close(self) -> None:
        self._kill(self.status)


def start_prediction(task: ChildTask, key: Any, request: dict[str, Any]) -> bool:
    return task.start(key, request, lambda result: result)


def bill_plan(rate_per_s: float) -> tuple[int, float] | str:
    """(requests per month, days to simulate) of a month at `rate_per_s`, or why there is no bill."""
    monthly = round(rate_per_s * 30 * 86400)
    if monthly > SIM_MONTHLY_MAX:
        return (f"{rate_per_s:.3g}/s is {monthly:,} requests/month, over the simulator's bound "
                f"({SIM_MONTHLY_MAX:,}/month): no bill")
    days = min(30.0, BILL_REQUESTS / (rate_per_s * 86400))
    return monthly, days


def start_bill(task: ChildTask, rate_per_s: float, slo_e2e_s: float | None) -> bool:
    plan = bill_plan(rate_per_s)
    if isinstance(plan, str):
        task.status, task.result, task.key = plan, None, rate_per_s
        return False
    monthly, days = plan
    # a flat month at this rate: every hour and day weighs the same
    args = ["--monthly", str(monthly), "--days", f"{days:.6g}", "--hour-weights", ",".join(["1"] * 24),
            "--day-weights", ",".join(["1"] * 7), "--replications", str(BILL_REPLICATIONS),
            "--deployments", BILL_DEPLOYMENTS, "--no-progress", "--seed", "1"]
    if slo_e2e_s:
        args += ["--slo-e2e", f"{slo_e2e_s:g}"]
    request = {"kind": "bill", "args": args, "timeout_s": 0.9 * task.timeout_s}
    return task.start(rate_per_s, request, lambda result: parse_bill(result, rate_per_s, days))


def parse_bill(result: dict[str, Any], rate_per_s: float, days: float) -> dict[str, Any]:
    """The helper's answer (`simulator run`'s per-deployment results) -> the cockpit's bill."""
    rows = []
    for r in result["results"]:
        reps = r.get("replications") or {}
        one = {"mean": r["monthly_cost"], "ci95": None, "n": 1}
        rows.append({"deployment": r["deployment"], "monthly_cost": reps.get("monthly_cost", one),
                     "p95_s": reps.get("p95_s", {"mean": r["latency_s"]["p95"], "ci95": None, "n": 1}),
                     "cost_per_request": r.get("cost_per_request"),
                     "served_share": r["served"] / r["arrivals"] if r.get("arrivals") else None,
                     "service_times": (r.get("profile") or {}).get("profile")})
    return {"rate_per_s": rate_per_s, "days": days, "deployments": rows,
            "case_mix": result["simulation"].get("case_mix"), "label": "simulated"}
