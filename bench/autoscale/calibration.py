"""The calibration run `simulator validate --calibration` takes: cycles from zero replicas, each one
request at zero (a measured replica start) then warm requests one at a time, back to zero between
cycles; its report holds the warm service times and the replica cold starts. `warm_service_s` reads the
S that sizes the scenario back from such a report."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.autoscale.recording import Recording, recording
from bench.autoscale.replica_run import recorded
from bench.autoscale.target import RayTarget, model_of, server_config
from bench.replicas.types import ReplicaTimeline
from clients.factory import make_client
from clients.record import run_job
from loadlab.cases import test_image
from loadlab.schema import COMPLETED, Case, JobRecord, LoadConfig, Report, RunConfig, Stage, environment
from loadlab.stats import format_s, mean

COLDSTART_DEFINITION = ("replica_start_s: controller started the replica actor -> replica RUNNING "
                        "(controller log, ms); first_request_*: a request sent at zero replicas; "
                        "zero_to_decision_s: that request sent -> the controller's scale-up decision")


def warm_service_s(report: Report, case: str | None = None) -> float:
    """Mean server-measured service time of the warm completed jobs (of `case`) of a calibration report."""
    values = [j.service_s for s in report.stages if (s.concurrency or 1) == 1 for j in s.jobs   # alone, not under load
              if j.status == COMPLETED and not j.cold_start and j.service_s is not None and (case is None or j.case == case)]
    if not values:
        raise ValueError(f"calibration {report.name}: no warm completed job with a service time"
                         + (f" for case {case}" if case else ""))
    return mean(values)


def calibrate(args: argparse.Namespace, target: RayTarget, cases: list[Case], cycles: int, runs: int) -> Report:
    """Cycles from zero replicas: one request at zero (the replica start, measured by the recorder), then
    `runs` warm requests per case one at a time, then back to zero. Stages `<case> [cold]` and `<case> [u=1]`
    (concurrency 1: single requests), `replicas` and `coldstart` from the timeline."""
    if target.min_replicas != 0:
        print(f"  min_replicas {target.min_replicas}: no cycle from zero, warm runs only", flush=True)
        cycles = 1
    images = Path(tempfile.mkdtemp(prefix="loadlab-autoscale-"))
    paths = {c.name: str(test_image(c, images / c.name)) for c in cases}
    cold = {c.name: Stage(name=f"{c.name} [cold]", concurrency=1) for c in cases}
    warm = {c.name: Stage(name=f"{c.name} [u=1]", concurrency=1, jobs_per_user=runs * cycles) for c in cases}
    with recording(target) as rec:
        with contextlib.closing(make_client("vertex", target.url)) as client:
            for cycle in range(cycles):
                # every request at zero, the first too, meets a deployment at rest for a while (QUIET_S)
                if rec.quiet(time.time()) is None:
                    raise RuntimeError(f"not back at {rec.min_replicas} replicas within {rec.timeout_s:.0f} s")
                # at a minimum above zero there is no cold request: the first one counts as warm
                first = (cold if rec.min_replicas == 0 else warm)[cases[0].name]
                _cycle(client, cases, paths, first, warm, runs, f"{cycle + 1}/{cycles}", rec)
        end = rec.back_at_rest(time.time())
    stages = [s for c in cases for s in (cold[c.name], warm[c.name]) if s.jobs]
    timeline, run = rec.stop([j for s in stages for j in s.jobs], rec.at_rest_from, end)
    report = Report(
        role="calibration", kind="measured", name="autoscale-calibration-rayserve", target="rayserve", cases=cases,
        stages=stages, environment=environment(), model=model_of(target, args), replicas=run,
        config=RunConfig(driver="bench autoscale --calibrate", cases=args.cases,
                         server=server_config(target, args),
                         load=LoadConfig(mode="single", runs=runs * cycles, warmup=0, cpus=target.load_cpus)),
        coldstart=_coldstart(timeline, [j for s in cold.values() for j in s.jobs], back=end is not None))
    report.extra.update(client="vertex", cycles=cycles, warm_runs_per_case=runs, pinning=target.pinning,
                        replicas_recorded=recorded(timeline), rayserve=target.info)
    return report


def _cycle(client: Any, cases: list[Case], paths: dict[str, str], first: Stage, warm: dict[str, Stage], runs: int,
           label: str, rec: Recording) -> None:
    """One cycle: a request of the first case at the minimum replicas (into `first`), then `runs` warm
    requests per case (into `warm`)."""
    case = cases[0]
    job = run_job(client, case, paths[case.name], served_by="vertex")
    first.jobs.append(job)
    print(f"  cycle {label}: request at {rec.min_replicas} replicas {job.status} "
          f"e2e {format_s(job.e2e_s).strip()} s (queue {format_s(job.queue_s).strip()} s)", flush=True)
    for case in cases:
        for _ in range(runs):
            warm[case.name].jobs.append(run_job(client, case, paths[case.name], served_by="vertex"))
    print(f"    {runs} warm run(s) per case: service "
          + ", ".join(f"{c.name} {format_s(mean(j.service_s for j in warm[c.name].jobs if j.service_s)).strip()} s"
                      for c in cases), flush=True)


def _coldstart(timeline: ReplicaTimeline, cold_jobs: list[JobRecord], back: bool) -> dict[str, Any]:
    """The report's `coldstart`: each replica's start -> RUNNING, the requests sent at zero replicas and
    how long after each the controller decided to scale up."""
    starts = [r.startup_s for r in timeline.replicas if r.startup_s is not None]
    decisions = []
    for job in cold_jobs:
        up = next((e for e in timeline.scale_events if e.direction == "up" and e.t >= job.submitted - 0.5), None)
        if up is not None:
            decisions.append(up.t - (job.scheduled or job.submitted))
    return {"replica_start_s": starts,
            "replica_start_mean_s": mean(starts),
            "first_request_e2e_s": [j.e2e_s for j in cold_jobs],
            "first_request_queue_s": [j.queue_s for j in cold_jobs],
            "zero_to_decision_s": decisions,
            "back_at_rest": back,
            "definition": COLDSTART_DEFINITION}
