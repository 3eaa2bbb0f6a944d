"""python -m simulator.predict_stage: the simulator's prediction for the stages of a run in progress,
for the Locust web UI's cockpit (`locustfiles/cockpit.py`), which runs it as a separate process so that
no simulation runs on the load generator's greenlets.

Reads one JSON object on stdin:

    {"calibration": ["reports/measured/cal.json"], "replications": 20, "seed": 1, "workers": 1, "max_batch": 1,
     "stages": [{"name": "r=0.5/s", "open_loop": true, "elapsed_s": 42.0, "done": false,
                 "concurrency": null, "duration_s": 60, "jobs_per_user": null, "arrival_rate_per_s": 0.5,
                 "slo_e2e_s": 30, "jobs": [{"case": "light", "status": "completed", "t_s": 0.8}, ...]}]}

`t_s` is a job's scheduled (else submitted) time from the stage's start. Each stage is replayed as
`simulator/validate.py` replays a measured one, with the calibration's service times (never the run's
own): an open-loop stage with its exact arrivals, a closed-loop or burst stage with its users, case mix
and the time it has run. A stage still running is simulated only up to `elapsed_s`, so jobs the
measurement has not seen end yet are not ended in the simulation either.

Writes one JSON object on stdout: {"profile": {...}, "replications": R, "stages": {name: {metric:
{"mean", "lo", "hi", "n"}}}} for the metrics mean, p95, p99, slo_attainment and throughput_per_s:
the mean over R replications and the 2.5-97.5 % range of the replications' figures (where one run like
the measured one should fall). Bad input: one line on stderr, exit code 2.

`--serve`: the same, and the bill (`simulator run` in a child of this process), one JSON request and
answer per line, for as long as the cockpit runs (see `serve`).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadlab.schema import JobRecord, Report, Stage
from loadlab.stats import mean, percentile
from simulator.profiles import from_reports
from simulator.scenarios import Scenario, scenario
from simulator.validate import replay_closed_stage, replay_open_stage

METRICS = ("mean", "p95", "p99", "slo_attainment", "throughput_per_s")
MAX_STAGES, MAX_JOBS, MAX_REPLICATIONS, MAX_INPUT = 100, 50_000, 50, 32 << 20
SAFE_ARG = re.compile(r"--[a-z0-9-]+|[0-9.,e+-]+|[a-z0-9,-]+")


def measured_stage(spec: dict[str, Any]) -> Stage:
    """The stage as the replay functions read it: its jobs' cases, outcomes and times from its start."""
    jobs = [JobRecord(case=str(j["case"]), status=j["status"], submitted=float(j["t_s"]),
                      scheduled=float(j["t_s"]) if spec.get("open_loop") else None) for j in spec["jobs"]]
    return Stage(name=str(spec["name"]), concurrency=spec.get("concurrency"), duration_s=spec.get("duration_s"),
                 jobs_per_user=spec.get("jobs_per_user"), arrival_rate_per_s=spec.get("arrival_rate_per_s"),
                 slo_e2e_s=spec.get("slo_e2e_s"), started_at=0.0, jobs=jobs)


def predict(request: dict[str, Any]) -> dict[str, Any]:
    reports = [Report.load(p) for p in request["calibration"]]
    profile = from_reports(reports)
    replications = max(1, min(MAX_REPLICATIONS, int(request.get("replications", 20))))
    replay = scenario("local", Scenario(local_profile=profile, gpus=int(request.get("workers") or 1),
                                        max_batch=int(request.get("max_batch") or 1)))
    rng = random.Random(int(request.get("seed", 1)))
    out: dict[str, Any] = {}
    for spec in request["stages"]:
        mstage = measured_stage(spec)
        if not mstage.jobs:
            continue
        sims = _replay(mstage, spec, replay, profile, rng, replications)
        out[mstage.name] = {m: _spread([getattr(s.summary, m) for s in sims]) for m in METRICS}
    return {"profile": profile.describe(), "replications": replications, "stages": out}


def _replay(mstage: Stage, spec: dict[str, Any], replay, profile, rng, replications: int) -> list[Stage]:
    elapsed = None if spec.get("done") else float(spec["elapsed_s"])
    if spec.get("open_loop"):
        return [replay_open_stage(mstage, replay.build, profile, rng, until_s=elapsed)[0]
                for _ in range(replications)]
    if elapsed is not None and not mstage.jobs_per_user:
        # a closed loop that has run `elapsed` seconds so far: its users submitted for that long
        mstage = mstage.model_copy(update={"duration_s": min(mstage.duration_s or elapsed, elapsed)})
    return replay_closed_stage(mstage, replay.build, profile, rng, replications)


def _spread(values: list[float | None]) -> dict[str, float | int | None]:
    xs = [v for v in values if v is not None]
    return {"mean": mean(xs), "lo": percentile(xs, 2.5), "hi": percentile(xs, 97.5), "n": len(xs)}


def check(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or not isinstance(request.get("stages"), list):
        raise ValueError("the input must be a JSON object with a list 'stages'")
    calibration = request.get("calibration")
    if not isinstance(calibration, list) or not calibration or not all(isinstance(p, str) for p in calibration):
        raise ValueError("'calibration' must be a non-empty list of measured report paths")
    if len(request["stages"]) > MAX_STAGES:
        raise ValueError(f"at most {MAX_STAGES} stages")
    if sum(len(s.get("jobs", ())) for s in request["stages"]) > MAX_JOBS:
        raise ValueError(f"at most {MAX_JOBS:,} jobs")
    return request


def bill(request: dict[str, Any]) -> dict[str, Any]:
    """`python -m simulator run ARGS` (flags and numbers only) in a child of this process, into a
    temporary file; its report's per-deployment results and simulation settings."""
    args = request.get("args")
    if not isinstance(args, list) or not all(isinstance(a, str) and SAFE_ARG.fullmatch(a) for a in args):
        raise ValueError("'args' must be a list of flags and numbers")
    with tempfile.TemporaryDirectory(prefix="loadlab-bill-") as tmp:
        out = Path(tmp) / "bill.json"
        proc = subprocess.run([sys.executable, "-m", "simulator", "run", *args, "--out", str(out)],
                              capture_output=True, text=True, timeout=float(request.get("timeout_s", 300)))
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            raise ValueError(lines[-1] if lines else f"simulator run exited {proc.returncode}")
        report = json.loads(out.read_text())
    return {"results": report["extra"]["results"], "simulation": report["config"]["simulation"]}


def serve() -> int:
    """--serve: one JSON request a line on stdin ({"kind": "predict"|"bill", ...}), one answer a line on
    stdout ({"ok": true, "result": ...} or {"ok": false, "error": "..."}), until stdin closes. The
    cockpit starts this process once, before a run, so the load generator never forks while it runs."""
    for line in sys.stdin:
        try:
            if len(line) > MAX_INPUT:
                raise ValueError(f"input over {MAX_INPUT} bytes")
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            result = bill(request) if request.get("kind") == "bill" else predict(check(request))
            answer = {"ok": True, "result": result}
        except (ValueError, KeyError, TypeError, OSError, subprocess.TimeoutExpired) as err:
            answer = {"ok": False, "error": str(err).splitlines()[0] if str(err) else type(err).__name__}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


def main() -> int:
    if sys.argv[1:] == ["--serve"]:
        return serve()
    raw = sys.stdin.read(MAX_INPUT + 1)
    try:
        if len(raw) > MAX_INPUT:
            raise ValueError(f"input over {MAX_INPUT} bytes")
        result = predict(check(json.loads(raw)))
    except (ValueError, KeyError, TypeError, OSError) as err:
        sys.stderr.write(f"simulator.predict_stage: error: {err}\n")
        return 2
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
