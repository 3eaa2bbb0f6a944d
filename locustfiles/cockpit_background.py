"""The cockpit's simulations, each in a child process so that nothing heavy runs on Locust's greenlets:
the prediction (`python -m simulator.predict_stage`, JSON on stdin and stdout) and the bill
(`python -m simulator run`, its JSON report). One child per task at a time, niced, bounded in time,
killed at test stop and at exit. Under Locust, gevent has patched `subprocess`, so waiting for a child
yields to the other greenlets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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
    """One kind of child process: at most one running, `timeout_s` at most; its last result kept."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.name, self.timeout_s = name, timeout_s
        self.proc: subprocess.Popen | None = None
        self.result: Any = None
        self.status = "not run"
        self.key: Any = None          # what the last result was computed for
        self.finished_at: float | None = None
        self.seconds: float | None = None   # wall time of the last child

    @property
    def busy(self) -> bool:
        return self.proc is not None

    def start(self, key: Any, cmd: list[str], stdin: str, parse: Callable[[str], Any]) -> bool:
        if self.busy:
            return False
        self.key = key
        self.status = "running"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT, preexec_fn=_nice,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        gevent.spawn(self._wait, self.proc, stdin, parse)
        return True

    def _wait(self, proc: subprocess.Popen, stdin: str, parse: Callable[[str], Any]) -> None:
        t0 = time.monotonic()
        try:
            out, err = proc.communicate(stdin, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self.status = f"stopped after {self.timeout_s:g} s"
            return
        except (OSError, ValueError) as exc:   # killed at stop (pipes closed under us)
            self.status = f"stopped ({exc.__class__.__name__})"
            return
        finally:
            if self.proc is proc:
                self.proc = None
        self.seconds = time.monotonic() - t0
        if proc.returncode != 0:
            lines = (err or "").strip().splitlines()
            self.status = f"failed: {lines[-1][:300] if lines else f'exit {proc.returncode}'}"
            return
        try:
            self.result = parse(out[:MAX_OUTPUT])
        except (ValueError, KeyError, TypeError) as exc:
            self.status = f"failed: unreadable output ({exc})"
            return
        self.status, self.finished_at = "done", time.time()

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            self.status, self.key = "stopped at test stop", None   # None: computed again for the final figures


def start_prediction(task: ChildTask, key: Any, request: dict[str, Any]) -> bool:
    return task.start(key, [sys.executable, "-m", "simulator.predict_stage"], json.dumps(request), json.loads)


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
    out = Path(tempfile.mkdtemp(prefix="loadlab-cockpit-")) / "bill.json"
    # a flat month at this rate: every hour and day weighs the same
    cmd = [sys.executable, "-m", "simulator", "run", "--monthly", str(monthly), "--days", f"{days:.6g}",
           "--hour-weights", ",".join(["1"] * 24), "--day-weights", ",".join(["1"] * 7),
           "--replications", str(BILL_REPLICATIONS), "--deployments", BILL_DEPLOYMENTS, "--no-progress",
           "--seed", "1", "--out", str(out)]
    if slo_e2e_s:
        cmd += ["--slo-e2e", f"{slo_e2e_s:g}"]
    return task.start(rate_per_s, cmd, "", lambda _stdout: parse_bill(out, rate_per_s, days))


def parse_bill(path: Path, rate_per_s: float, days: float) -> dict[str, Any]:
    """The simulated report of `simulator run` -> the cockpit's bill (its temporary file removed)."""
    try:
        report = json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    rows = []
    for r in report["extra"]["results"]:
        reps = r.get("replications") or {}
        one = {"mean": r["monthly_cost"], "ci95": None, "n": 1}
        rows.append({"deployment": r["deployment"], "monthly_cost": reps.get("monthly_cost", one),
                     "p95_s": reps.get("p95_s", {"mean": r["latency_s"]["p95"], "ci95": None, "n": 1}),
                     "cost_per_request": r.get("cost_per_request"),
                     "served_share": r["served"] / r["arrivals"] if r.get("arrivals") else None,
                     "service_times": (r.get("profile") or {}).get("profile")})
    return {"rate_per_s": rate_per_s, "days": days, "deployments": rows,
            "case_mix": report["config"]["simulation"].get("case_mix"), "label": "simulated"}
