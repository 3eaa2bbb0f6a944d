"""The scenario run: Locust replays the scenario's trace through the Vertex contract with the replica
recorder on, the run waits until the deployment is back at rest, and Locust's report becomes the
measured autoscaling report (one stage per phase, cold starts marked, the `ReplicaRun`, the figures)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.autoscale.recording import recording
from bench.autoscale.replica_run import recorded
from bench.autoscale.scenario import Scenario, phase_stages, write_scenario
from bench.autoscale.target import RayTarget, model_of, server_config
from bench.concurrency import LOCUSTFILE, run_locust
from bench.replicas.types import ReplicaTimeline
from loadlab.schema import Report

AUTOQUIT_S = 10   # with --web-port: the web UI stays this long after the run (the report is written by then)


def locust_command(args: argparse.Namespace, url: str, trace: Path, scenario: Scenario, report_out: Path,
                   prefix: Path, replica_samples: Path | None = None) -> list[str]:
    """Locust's command line: headless, or with --web-port its web UI on 127.0.0.1 started at once and
    quit AUTOQUIT_S after the run; the recorder's samples file goes to the Cockpit tab's replica chart."""
    port = getattr(args, "web_port", 0)
    ui = (["--autostart", "--autoquit", str(AUTOQUIT_S), "--web-host", "127.0.0.1", "--web-port", str(port)]
          if port else ["--headless"])
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *ui, "--host", url,
           "--target", "vertex", "--cases", ",".join(scenario.cases), "--arrival", "trace", "--trace", str(trace),
           "--time-scale", "1", "--stage-seconds", f"{scenario.shape.step_s:g}",
           "--stop-timeout", str(int(args.stop_timeout)), "--report-out", str(report_out),
           "--report-name", report_out.stem, "--csv", str(prefix), "--html", f"{prefix}.html", "--loglevel", "INFO"]
    if args.slo_e2e:
        cmd += ["--slo-e2e", f"{args.slo_e2e:g}"]
    if replica_samples is not None:
        cmd += ["--replica-samples", str(replica_samples)]
    return cmd


@dataclass
class Replay:
    """What the recorded replay left: Locust's report and exit code, and the way back to rest."""

    report: Report
    origin: float                 # the trace's t_s = 0: where Locust's first window starts
    rc: int
    locust_done: float
    rest: float | None            # the first time back at rest; None: not within the bound
    timeline: ReplicaTimeline
    trace: Path
    prefix: Path


def run_scenario(args: argparse.Namespace, target: RayTarget, scenario: Scenario, out: Path,
                 calibration: str | None) -> Report:
    """Locust replays the scenario's trace with the recorder on; then the wait until the deployment is
    back at rest; the measured report with phases, replicas and cold starts."""
    replay = _replay(args, target, scenario, out)
    report, timeline, prefix = replay.report, replay.timeline, replay.prefix
    jobs = [j for s in report.stages for j in s.jobs]   # cold starts marked when the recording stopped
    report.stages = phase_stages(jobs, scenario, replay.origin, args.slo_e2e or None)
    report.name, report.target = out.stem, "rayserve"
    report.model = model_of(target, args)
    report.config.driver = "bench autoscale"
    report.config.server = server_config(target, args)   # config.load (and its cpus) as Locust wrote it
    report.config.outputs = {"csv": f"{prefix}_stats.csv", "html": f"{prefix}.html", "log": f"{prefix}.log",
                             "trace": str(replay.trace)}
    report.extra.update(client="vertex", scenario=scenario.to_dict(), calibration=calibration,
                        stages_from="scenario phases (Locust's trace windows regrouped by arrival)",
                        back_at_rest=replay.rest is not None,
                        rest_wait_s=(replay.rest - replay.locust_done) if replay.rest else None,
                        locust_exit_code=replay.rc, pinning=target.pinning, replicas_recorded=recorded(timeline),
                        figures=report.replicas.figures(jobs).model_dump(), rayserve=target.info)
    return report


def _replay(args: argparse.Namespace, target: RayTarget, scenario: Scenario, out: Path) -> Replay:
    """Locust's replay of the trace from a deployment at rest, and the wait until it is back at rest; the
    report's replicas are the recorded run over the trace's t_s = 0 -> back at rest."""
    trace = write_scenario(scenario, args.trace_out or out.with_suffix(".trace.csv"))
    args.locust_dir.mkdir(parents=True, exist_ok=True)
    prefix = args.locust_dir / out.stem
    with recording(target) as rec:
        cmd = locust_command(args, target.url, trace, scenario, out, prefix, rec.recorder.samples_path)
        print(f"scenario {args.scenario}: {len(scenario.rows())} arrivals over {scenario.last_arrival_s:.0f} s "
              f"(S = {scenario.service_s:.3f} s) -> {trace}\n$ {' '.join(cmd)}", flush=True)
        if out.exists():
            out.unlink()
        rc = run_locust(cmd, Path(f"{prefix}.log"))
        if not out.exists():
            raise RuntimeError(f"Locust exited with {rc} and wrote no report; its log: {prefix}.log")
        locust_done = time.time()
        print(f"Locust done (exit {rc}); waiting until back at {rec.min_replicas} replicas "
              f"(at most {rec.timeout_s:.0f} s)", flush=True)
        rest = rec.back_at_rest(locust_done)
        report = Report.load(out)
        # the window: the trace's t_s = 0 (Locust's origin, where its first window starts) -> back at rest
        origin = min(s.started_at for s in report.stages if s.started_at is not None)
    timeline, report.replicas = rec.stop([j for s in report.stages for j in s.jobs], origin, rest)
    return Replay(report, origin, rc, locust_done, rest, timeline, trace, prefix)
