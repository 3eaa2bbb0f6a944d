"""python -m bench autoscale: the Ray Serve deployment (`python -m server.rayserve`) scaled from zero and back
under a scripted arrival trace — idle -> a ramp of three steps -> a burst -> idle until it is back at zero —
sent by Locust through the Vertex contract (the real aiplatform SDK), with the replica recorder running.
The measured report holds every job (cold starts marked from the timeline), one stage per phase, and the
`ReplicaRun`: the sampled timeline, each replica's up interval, the scale decisions and the replica-seconds
(the bill) over the run's window. `--calibrate` is the separate calibration run `simulator validate
--calibration` takes: warm service times and replica cold starts (replica start -> RUNNING).

    python -m bench autoscale --scenario short                     # a calibration run, then the scenario
    python -m bench autoscale --calibrate --out reports/measured/C.json
    python -m bench autoscale --calibration C.json --out R.json    # the scenario, sized from C
    python -m simulator validate --measured R.json --calibration C.json

The scenario is sized from the calibrated warm service time S of the first case: ramp steps at 0.3, 0.6
and 1.2 x one replica's rate 1/S (evenly spaced arrivals), then `burst` arrivals at once. Both runs use
the same Ray cluster, one after the other, each in its own window and with its own jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import pinning
from bench.concurrency import LOCUSTFILE, run_locust
from bench.replicas import ReplicaRecorder, ReplicaTimeline, Sample, mark_cold_starts
from clients.factory import make_client
from clients.record import run_job
from loadlab.cases import parse_cases, test_image
from loadlab.schema import (
    COMPLETED,
    Case,
    JobRecord,
    LoadConfig,
    ReplicaInterval,
    ReplicaRun,
    ReplicaSample,
    Report,
    RunConfig,
    ScaleEvent,
    ServerConfig,
    Stage,
    environment,
)
from loadlab.stats import format_s, mean
from loadlab.trace import write_trace

# Ramp steps as shares of one replica's rate 1/S: well under, near, and over what one replica serves.
RAMP_SHARES = (0.3, 0.6, 1.2)


@dataclass(frozen=True)
class ScenarioShape:
    idle_s: float     # at zero replicas before the first arrival
    step_s: float     # length of each ramp step
    burst: int        # arrivals at once after the ramp
    gap_s: float      # end of the ramp -> the burst
    cold_starts: int  # calibration: cycles from zero replicas (each one measured replica start)
    warm_runs: int    # calibration: warm requests per case and cycle


SCENARIOS = {
    "demo": ScenarioShape(idle_s=30.0, step_s=20.0, burst=8, gap_s=5.0, cold_starts=2, warm_runs=5),
    "short": ScenarioShape(idle_s=10.0, step_s=8.0, burst=6, gap_s=3.0, cold_starts=1, warm_runs=3),
}


# --- the scenario ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Phase:
    """A phase of the scenario with its arrivals (seconds from the run's origin)."""

    name: str
    start_s: float
    end_s: float
    times: tuple[float, ...]
    held: bool = True      # a rate held for [start_s, end_s); False: arrivals at once (the burst)

    @property
    def rate_per_s(self) -> float | None:
        return len(self.times) / (self.end_s - self.start_s) if self.held else None


@dataclass
class Scenario:
    shape: ScenarioShape
    service_s: float
    cases: list[str]
    phases: list[Phase]

    def rows(self) -> list[tuple[float, str, str]]:
        """(t_s, case, phase) of every arrival in time order; cases round robin by arrival index."""
        times = sorted((t, p.name) for p in self.phases for t in p.times)
        return [(t, self.cases[i % len(self.cases)], phase) for i, (t, phase) in enumerate(times)]

    @property
    def last_arrival_s(self) -> float:
        return max(t for p in self.phases for t in p.times)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": asdict(self.shape), "service_s": self.service_s, "cases": self.cases,
                "ramp_shares_of_one_replica": list(RAMP_SHARES),
                "phases": [{"name": p.name, "start_s": p.start_s, "end_s": p.end_s, "arrivals": len(p.times),
                            "rate_per_s": p.rate_per_s} for p in self.phases]}


def build_scenario(shape: ScenarioShape, service_s: float, cases: list[str]) -> Scenario:
    """idle -> ramp (RAMP_SHARES x 1/S, each held `step_s`, evenly spaced) -> `burst` at once. The idle tail
    is not in the trace: the run waits after the last arrival until the deployment is back at zero."""
    if not service_s > 0:
        raise ValueError(f"the scenario needs a warm service time > 0 s, got {service_s!r}")
    if not cases:
        raise ValueError("the scenario needs at least one case")
    phases = []
    for i, share in enumerate(RAMP_SHARES):
        start = shape.idle_s + i * shape.step_s
        n = max(1, round(share * shape.step_s / service_s))
        phases.append(Phase(f"ramp {share:g}/S", start, start + shape.step_s,
                            tuple(start + k * shape.step_s / n for k in range(n))))
    burst_at = shape.idle_s + len(RAMP_SHARES) * shape.step_s + shape.gap_s
    phases.append(Phase(f"burst {shape.burst}", burst_at, burst_at, (burst_at,) * shape.burst, held=False))
    return Scenario(shape, service_s, list(cases), phases)


def write_scenario(scenario: Scenario, path: Path) -> Path:
    """The scenario as an arrival trace (`t_s,case`, loadlab/trace.py)."""
    return write_trace(path, ((t, case) for t, case, _ in scenario.rows()))


def phase_stages(jobs: list[JobRecord], scenario: Scenario, origin: float, slo_e2e_s: float | None) -> list[Stage]:
    """The jobs of a trace replay regrouped into one stage per phase (Locust cuts a trace into equal
    windows; a phase is what the scenario varies). A job is placed by its arrival index, the row of the
    trace (Locust's `extra["arrival"]`), else by its scheduled time."""
    rows = scenario.rows()
    by_phase: dict[str, list[JobRecord]] = {p.name: [] for p in scenario.phases}
    for job in jobs:
        index = job.extra.get("arrival")
        if isinstance(index, int) and 0 <= index < len(rows):
            phase = rows[index][2]
        else:
            t = job.origin - origin
            phase = next((p.name for p in reversed(scenario.phases) if t >= p.start_s - 1e-6), scenario.phases[0].name)
        by_phase[phase].append(job)
    return [Stage(name=p.name, arrival_rate_per_s=p.rate_per_s, started_at=origin + p.start_s,
                  duration_s=(p.end_s - p.start_s) if p.held else None, slo_e2e_s=slo_e2e_s,
                  jobs=sorted(by_phase[p.name], key=lambda j: j.origin))
            for p in scenario.phases]


# --- the replica timeline as the report holds it ----------------------------------------------------

def replica_run(timeline: dict[str, Any]) -> ReplicaRun:
    """The report's `ReplicaRun` from a recorded timeline (`ReplicaTimeline.to_dict()`): the samples inside
    the window, every replica up at some time of the window (start / ready = RUNNING / end = stopped, as
    recorded), the scale decisions and the replica-seconds clipped to the window."""
    start, end = float(timeline["start"]), float(timeline["end"])
    samples = [ReplicaSample(t=s["t"], target=s["target"], starting=s["starting"], running=s["running"],
                             stopping=s["stopping"]) for s in timeline["samples"] if start <= s["t"] <= end]
    intervals = [ReplicaInterval(replica=r["replica_id"], start=r["start"], ready=r["running_at"], end=r["end"])
                 for r in timeline["replicas"] if r["start"] <= end and (r["end"] is None or r["end"] >= start)]
    events = [ScaleEvent(t=e["t"], from_replicas=e["from_replicas"], to_replicas=e["to_replicas"])
              for e in timeline["scale_events"] if start <= e["t"] <= end]
    return ReplicaRun(window=(start, end), timeline=samples, intervals=intervals, events=events,
                      replica_seconds=float(timeline["replica_seconds"]))


def running_at(run: ReplicaRun, t: float) -> int:
    """Replicas able to serve at t (ready <= t < end)."""
    return sum(1 for i in run.intervals if i.ready is not None and i.ready <= t and (i.end is None or t < i.end))


def first_requests_at_zero(jobs: list[JobRecord], run: ReplicaRun) -> list[JobRecord]:
    """The first request of each period with no replica running: what a user arriving at an idle,
    scaled-to-zero deployment waits (the same definition as the simulator's validation)."""
    firsts, previous = [], None
    for job in sorted(jobs, key=lambda j: j.origin):
        t = job.origin
        if running_at(run, t) == 0 and (previous is None or running_at(run, previous) > 0 or any(
                i.ready is not None and previous < i.ready <= t for i in run.intervals)):
            firsts.append(job)
        previous = t
    return firsts


def run_figures(jobs: list[JobRecord], run: ReplicaRun) -> dict[str, Any]:
    firsts = [j for j in first_requests_at_zero(jobs, run) if j.status == COMPLETED]
    return {"replica_seconds": run.replica_seconds,
            "scale_ups": sum(e.direction == "up" for e in run.events),
            "scale_downs": sum(e.direction == "down" for e in run.events),
            "max_replicas": max((s.starting + s.running + s.stopping for s in run.timeline), default=0),
            "cold_starts": sum(j.cold_start for j in jobs),
            "first_request_at_zero_e2e_s": [j.e2e_s for j in firsts]}


# --- settings, server, waiting ----------------------------------------------------------------------

def autoscaling_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The deployment's autoscaling as Ray Serve names it (what `simulator validate` replays), plus the
    deployment options the replay needs (max_ongoing_requests, graceful_shutdown_timeout_s)."""
    return {"min_replicas": args.min_replicas, "max_replicas": args.max_replicas,
            "target_ongoing_requests": args.target_ongoing_requests, "upscale_delay_s": args.upscale_delay_s,
            "downscale_delay_s": args.downscale_delay_s, "downscale_to_zero_delay_s": args.downscale_to_zero_delay_s,
            "look_back_period_s": args.look_back_period_s, "max_ongoing_requests": args.max_ongoing_requests,
            "metrics_interval_s": args.metrics_interval_s,
            "graceful_shutdown_timeout_s": args.graceful_shutdown_timeout_s}


def settings_from_ready(ready: dict[str, Any]) -> dict[str, Any]:
    """What a running deployment says of its autoscaling in /readyz (--url)."""
    settings = dict(ready.get("autoscaling") or {})
    if ready.get("max_ongoing_requests") is not None:
        settings["max_ongoing_requests"] = ready["max_ongoing_requests"]
    return settings


def readyz(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url.rstrip("/") + "/readyz", timeout=30) as r:
        return json.loads(r.read())


def cpu_plan(plan: pinning.CpuPlan | None, max_replicas: int, no_pin: bool = False) -> tuple[pinning.CpuPlan | None, str]:
    """`plan` (pinning.plan(): Ray on some CPUs, the load generator on the others) when the server's share
    holds one CPU per replica, else None and why: on 2 cores, pinning would put both replicas on one core
    and a scale-up would add no capacity."""
    if no_pin:
        return None, "--no-pin"
    if plan is None:
        return None, "fewer than 2 usable CPUs (or no sched_setaffinity)"
    if len(plan.server) < max_replicas:
        return None, (f"not pinned: {len(plan.server) + len(plan.load)} CPUs leave {len(plan.server)} for "
                      f"{max_replicas} replicas of 1 CPU each")
    return plan, f"Ray on CPUs {sorted(plan.server)}, load generator on {sorted(plan.load)}"


@dataclass
class RayTarget:
    url: str
    ready: dict[str, Any]
    settings: dict[str, Any]
    process: Any = None                 # RayServeProcess when this command started it
    server_cpus: list[int] | None = None
    load_cpus: list[int] | None = None
    pinning: str = ""
    info: dict[str, Any] = field(default_factory=dict)   # what the report records of the cluster


@contextlib.contextmanager
def ray_target(args: argparse.Namespace) -> Iterator[RayTarget]:
    """`--url` as it is (its settings from /readyz), else a `python -m server.rayserve` with its own Ray
    temp dir on 127.0.0.1, stopped (every Ray process checked gone) on exit."""
    if args.url:
        url = args.url.rstrip("/")
        ready = readyz(url)
        yield RayTarget(url, ready, settings_from_ready(ready), pinning="--url: not pinned")
        return
    from server.rayserve.process import RayServeProcess, descendants

    settings = autoscaling_settings(args)
    plan, why = cpu_plan(pinning.plan(not args.no_pin), args.max_replicas, args.no_pin)
    options = {k: v for k, v in settings.items() if k != "graceful_shutdown_timeout_s"}
    rs = RayServeProcess(model=args.model, num_cpus=max(2, args.max_replicas),
                         graceful_shutdown_timeout_s=args.graceful_shutdown_timeout_s, **options)
    print(f"starting python -m server.rayserve ({', '.join(f'{k}={v}' for k, v in settings.items())}) ...", flush=True)
    target = None
    try:
        rs.start()
        target = RayTarget(rs.url, readyz(rs.url), settings, process=rs, pinning=why)
        target.info = {"ray_temp_dir": str(rs.ray_temp_dir), "spawn_to_ready_s": rs.time_to_ready_s,
                       "ray_init_s": rs.ready_info.get("ray_init_s"), "init_to_ready_s": rs.ready_info.get("ready_s")}
        print(f"  ready at {rs.url} in {rs.time_to_ready_s:.1f} s; pinning: {why}", flush=True)
        if plan is None:
            yield target
        else:
            # raylet is pinned too, so the replica workers it starts later inherit the server's CPUs
            pids = descendants(rs.proc.pid) | {rs.proc.pid}
            target.server_cpus = sorted({c for pid in pids for c in pinning.pin(pid, plan.server)})
            with pinning.load_generator(plan) as load_cpus:
                target.load_cpus = load_cpus
                yield target
    finally:
        tree = set(rs.tree)
        leftovers = rs.stop()
        if target is not None:
            target.info.update(leftover_pids=leftovers, pids=sorted(tree | rs.tree))
        print(f"rayserve stopped{'' if not leftovers else f'; killed leftovers {leftovers}'}", flush=True)


def at_rest(sample: Sample, min_replicas: int) -> bool:
    """The deployment is at its minimum with nothing starting or stopping."""
    return (sample.target == min_replicas and sample.running == min_replicas
            and sample.starting == 0 and sample.stopping == 0)


def wait_at_rest(recorder: ReplicaRecorder, min_replicas: int, after: float, timeout_s: float) -> float | None:
    """The time of the first sample after `after` with the deployment at rest (at zero replicas when
    min_replicas is 0), or None after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        for sample in recorder.samples():
            if sample.t >= after and at_rest(sample, min_replicas):
                return sample.t
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def rest_timeout_s(settings: dict[str, Any]) -> float:
    """A bound on the way back to the minimum: the look-back window, every downscale step with its delay
    and a graceful stop, and a minute of margin."""
    steps = max(1, int(settings.get("max_replicas") or 1))
    return (60.0 + float(settings.get("look_back_period_s") or 30.0)
            + steps * (float(settings.get("downscale_delay_s") or 0.0)
                       + float(settings.get("graceful_shutdown_timeout_s") or 20.0))
            + float(settings.get("downscale_to_zero_delay_s") or 0.0))


# --- calibration -----------------------------------------------------------------------------------

def warm_service_s(report: Report, case: str | None = None) -> float:
    """Mean server-measured service time of the warm completed jobs (of `case`) of a calibration report."""
    values = [j.service_s for s in report.stages for j in s.jobs
              if j.status == COMPLETED and not j.cold_start and j.service_s is not None and (case is None or j.case == case)]
    if not values:
        raise ValueError(f"calibration {report.name}: no warm completed job with a service time"
                         + (f" for case {case}" if case else ""))
    return mean(values)


def calibrate(args: argparse.Namespace, target: RayTarget, cases: list[Case], cycles: int, runs: int) -> Report:
    """Cycles from zero replicas: one request at zero (the replica start, measured by the recorder), then
    `runs` warm requests per case one at a time, then back to zero. Stages `<case> [cold]` and `<case> [u=1]`
    (concurrency 1: single requests), `replicas` and `coldstart` from the timeline."""
    settings, min_replicas = target.settings, int(target.settings.get("min_replicas") or 0)
    if min_replicas != 0:
        print(f"  min_replicas {min_replicas}: no cycle from zero, warm runs only", flush=True)
        cycles = 1
    images = Path(tempfile.mkdtemp(prefix="loadlab-autoscale-"))
    paths = {c.name: str(test_image(c, images / c.name)) for c in cases}
    cold = {c.name: Stage(name=f"{c.name} [cold]", concurrency=1) for c in cases}
    warm = {c.name: Stage(name=f"{c.name} [u=1]", concurrency=1, jobs_per_user=runs * cycles) for c in cases}
    timeout = rest_timeout_s(settings)
    recorder = ReplicaRecorder.from_url(target.url).start()
    try:
        start = wait_at_rest(recorder, min_replicas, 0.0, timeout)
        if start is None:
            raise RuntimeError(f"the deployment was not at rest ({min_replicas} replicas) within {timeout:.0f} s")
        with contextlib.closing(make_client("vertex", target.url)) as client:
            for cycle in range(cycles):
                if cycle and wait_at_rest(recorder, min_replicas, time.time(), timeout) is None:
                    raise RuntimeError(f"not back at {min_replicas} replicas within {timeout:.0f} s")
                first = cases[0]
                rec = run_job(client, first, paths[first.name], served_by="vertex")
                (cold if min_replicas == 0 else warm)[first.name].jobs.append(rec)
                print(f"  cycle {cycle + 1}/{cycles}: request at {min_replicas} replicas {rec.status} "
                      f"e2e {format_s(rec.e2e_s).strip()} s (queue {format_s(rec.queue_s).strip()} s)", flush=True)
                for case in cases:
                    for _ in range(runs):
                        warm[case.name].jobs.append(run_job(client, case, paths[case.name], served_by="vertex"))
                print(f"    {runs} warm run(s) per case: service "
                      + ", ".join(f"{c.name} {format_s(mean(j.service_s for j in warm[c.name].jobs if j.service_s)).strip()} s"
                                  for c in cases), flush=True)
        end = wait_at_rest(recorder, min_replicas, time.time(), timeout)
    except BaseException:
        recorder.__exit__(None, None, None)
        raise
    back = end is not None
    timeline = recorder.stop(start=start, end=end if back else time.time())
    stages = [s for c in cases for s in (cold[c.name], warm[c.name]) if s.jobs]
    jobs = [j for s in stages for j in s.jobs]
    mark_cold_starts(jobs, timeline)
    run = replica_run(timeline.to_dict())
    starts = [r.startup_s for r in timeline.replicas if r.startup_s is not None]
    cold_jobs = [j for s in cold.values() for j in s.jobs]
    decisions = []
    for job in cold_jobs:
        up = next((e for e in timeline.scale_events if e.direction == "up" and e.t >= job.submitted - 0.5), None)
        if up is not None:
            decisions.append(up.t - (job.scheduled or job.submitted))
    report = Report(
        role="single", kind="measured", name="autoscale-calibration-rayserve", target="rayserve", cases=cases,
        stages=stages, environment=environment(), model=_model(target, args), replicas=run,
        config=RunConfig(driver="bench autoscale --calibrate", cases=args.cases,
                         server=_server_config(target, args),
                         load=LoadConfig(mode="single", runs=runs * cycles, warmup=0, cpus=target.load_cpus)),
        coldstart={"replica_start_s": starts,
                   "replica_start_mean_s": mean(starts),
                   "first_request_e2e_s": [j.e2e_s for j in cold_jobs],
                   "first_request_queue_s": [j.queue_s for j in cold_jobs],
                   "zero_to_decision_s": decisions,
                   "back_at_rest": back,
                   "definition": "replica_start_s: controller started the replica actor -> replica RUNNING "
                                 "(controller log, ms); first_request_*: a request sent at zero replicas; "
                                 "zero_to_decision_s: that request sent -> the controller's scale-up decision"})
    report.extra.update(client="vertex", cycles=cycles, warm_runs_per_case=runs, pinning=target.pinning,
                        replicas_recorded=_recorded(timeline), rayserve=target.info)
    return report


def _recorded(timeline: ReplicaTimeline) -> dict[str, Any]:
    """What the recorder saw beyond the ReplicaRun: pids, stop requests, where each decision time came
    from and the load behind it."""
    return {"interval_s": timeline.interval_s, "log_path": timeline.log_path, "samples": len(timeline.samples),
            "replicas": [{"replica_id": r.replica_id, "pid": r.pid, "startup_s": r.startup_s,
                          "stopping_at": r.stopping_at} for r in timeline.replicas],
            "scale_events": [{"t": e.t, "direction": e.direction, "source": e.source,
                              "ongoing_requests": e.ongoing_requests} for e in timeline.scale_events]}


def _model(target: RayTarget, args: argparse.Namespace) -> dict[str, Any]:
    return {"source": target.ready.get("model") or args.model, "device": target.ready.get("device")}


def _server_config(target: RayTarget, args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(url=target.url, model_source=target.ready.get("model") or args.model,
                        cpus=target.server_cpus, autoscaling=dict(target.settings))


# --- the scenario run ------------------------------------------------------------------------------

def locust_command(args: argparse.Namespace, url: str, trace: Path, scenario: Scenario, report_out: Path,
                   prefix: Path) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
           "--target", "vertex", "--cases", ",".join(scenario.cases), "--arrival", "trace", "--trace", str(trace),
           "--time-scale", "1", "--stage-seconds", f"{scenario.shape.step_s:g}",
           "--stop-timeout", str(int(args.stop_timeout)), "--report-out", str(report_out),
           "--report-name", report_out.stem, "--csv", str(prefix), "--html", f"{prefix}.html", "--loglevel", "INFO"]
    if args.slo_e2e:
        cmd += ["--slo-e2e", f"{args.slo_e2e:g}"]
    return cmd


def run_scenario(args: argparse.Namespace, target: RayTarget, scenario: Scenario, out: Path,
                 calibration: str | None) -> Report:
    """Locust replays the scenario's trace with the recorder on; then the wait until the deployment is
    back at rest; the measured report with phases, replicas and cold starts."""
    settings, min_replicas = target.settings, int(target.settings.get("min_replicas") or 0)
    trace = write_scenario(scenario, args.trace_out or out.with_suffix(".trace.csv"))
    args.locust_dir.mkdir(parents=True, exist_ok=True)
    prefix = args.locust_dir / out.stem
    timeout = rest_timeout_s(settings)
    recorder = ReplicaRecorder.from_url(target.url).start()
    try:
        if wait_at_rest(recorder, min_replicas, 0.0, timeout) is None:
            raise RuntimeError(f"the deployment was not at rest ({min_replicas} replicas) within {timeout:.0f} s")
        cmd = locust_command(args, target.url, trace, scenario, out, prefix)
        print(f"scenario {args.scenario}: {len(scenario.rows())} arrivals over {scenario.last_arrival_s:.0f} s "
              f"(S = {scenario.service_s:.3f} s) -> {trace}\n$ {' '.join(cmd)}", flush=True)
        if out.exists():
            out.unlink()
        rc = run_locust(cmd, Path(f"{prefix}.log"))
        if not out.exists():
            raise RuntimeError(f"Locust exited with {rc} and wrote no report; its log: {prefix}.log")
        locust_done = time.time()
        print(f"Locust done (exit {rc}); waiting until back at {min_replicas} replicas (at most {timeout:.0f} s)",
              flush=True)
        rest = wait_at_rest(recorder, min_replicas, locust_done, timeout)
        report = Report.load(out)
        # the window: the trace's t_s = 0 (Locust's origin, where its first window starts) -> back at rest
        origin = min(s.started_at for s in report.stages if s.started_at is not None)
    except BaseException:
        recorder.__exit__(None, None, None)
        raise
    timeline = recorder.stop(start=origin, end=rest if rest is not None else time.time())
    jobs = [j for s in report.stages for j in s.jobs]
    mark_cold_starts(jobs, timeline)
    slo = args.slo_e2e or None
    report.stages = phase_stages(jobs, scenario, origin, slo)
    report.name, report.target = out.stem, "rayserve"
    report.model = _model(target, args)
    report.config.driver = "bench autoscale"
    report.config.server = _server_config(target, args)   # config.load (and its cpus) as Locust wrote it
    report.config.outputs = {"csv": f"{prefix}_stats.csv", "html": f"{prefix}.html", "log": f"{prefix}.log",
                             "trace": str(trace)}
    report.replicas = replica_run(timeline.to_dict())
    report.extra.update(client="vertex", scenario=scenario.to_dict(), calibration=calibration,
                        stages_from="scenario phases (Locust's trace windows regrouped by arrival)",
                        back_at_rest=rest is not None, rest_wait_s=(rest - locust_done) if rest else None,
                        locust_exit_code=rc, pinning=target.pinning, replicas_recorded=_recorded(timeline),
                        figures=run_figures(jobs, report.replicas), rayserve=target.info)
    return report


# --- printing -------------------------------------------------------------------------------------

def print_calibration(report: Report) -> None:
    cs = report.coldstart or {}
    print(f"\ncalibration ({report.name}):")
    for stage in report.stages:
        s = stage.summary
        print(f"  {stage.name:<16} {s['completed']}/{s['jobs']}  e2e mean {format_s(s['mean']).strip()} s  "
              f"service mean {format_s(s['service_s']['mean']).strip()} s  queue mean {format_s(s['queue_s']['mean']).strip()} s")
    starts = cs.get("replica_start_s") or []
    print(f"  replica start -> RUNNING: {', '.join(f'{x:.2f}' for x in starts) or '-'} s "
          f"(mean {format_s(cs.get('replica_start_mean_s')).strip()} s); request at zero -> scale-up decision: "
          f"{', '.join(f'{x:.2f}' for x in cs.get('zero_to_decision_s') or []) or '-'} s")


def print_summary(report: Report, calibrated_service_s: float | None) -> None:
    figures = report.extra.get("figures") or run_figures([j for s in report.stages for j in s.jobs], report.replicas)
    print(f"\n{'stage':<12} {'rate/s':>6} {'ok':>7} {'mean':>7} {'p95':>7} {'queue':>7} {'service':>7} {'infl':>5} "
          f"{'cold':>4}")
    for stage in report.stages:
        s = stage.summary
        service = s["service_s"]["mean"]
        infl = pinning.service_inflation(service, calibrated_service_s)
        rate = f"{stage.arrival_rate_per_s:.3f}" if stage.arrival_rate_per_s is not None else "once"
        print(f"{stage.name:<12} {rate:>6} {s['completed']:>3}/{s['jobs']:<3} {format_s(s['mean'])} {format_s(s['p95'])} "
              f"{format_s(s['queue_s']['mean'])} {format_s(service)} {format_s(infl, 5)} "
              f"{sum(j.cold_start for j in stage.jobs):>4}")
    firsts = figures["first_request_at_zero_e2e_s"]
    w0, w1 = report.replicas.window
    print(f"run ({w1 - w0:.0f} s window): replica-seconds {report.replicas.replica_seconds:.1f}, "
          f"scale-ups {figures['scale_ups']}, scale-downs {figures['scale_downs']}, most replicas {figures['max_replicas']}, "
          f"cold starts {figures['cold_starts']}, first request at zero "
          + (f"{mean(firsts):.2f} s (n={len(firsts)})" if firsts else "-")
          + ("" if report.extra.get("back_at_rest") else "; NOT back at rest within the bound"))
    print("infl = the stage's mean service time / the calibration's warm mean (contention from the 2nd replica, "
          "Ray's control plane and the load generator)")


# --- command line ----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench autoscale", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="demo",
                   help="demo (~3-4 min: idle 30 s, 3 x 20 s ramp, burst of 8) or short (~1.5 min: idle 10 s, "
                        "3 x 8 s ramp, burst of 6); each then waits until back at zero")
    p.add_argument("--calibrate", action="store_true",
                   help="only the calibration run (warm service times, replica cold starts) -> --out")
    p.add_argument("--calibration", type=Path, default=None,
                   help="a calibration report to size the scenario from (default: run one first, written beside --out)")
    p.add_argument("--cold-starts", type=int, default=0, help="calibration cycles from zero (default: the scenario's)")
    p.add_argument("--warm-runs", type=int, default=0, help="calibration warm requests per case and cycle "
                                                              "(default: the scenario's)")
    p.add_argument("--cases", default="light", help="case set or list (round robin over the arrivals)")
    p.add_argument("--url", default="", help="a running `python -m server.rayserve` instead of starting one")
    p.add_argument("--model", default="tiny", help="model of the deployment we start (tiny | path | hub id)")
    p.add_argument("--min-replicas", type=int, default=0)
    p.add_argument("--max-replicas", type=int, default=2)
    p.add_argument("--target-ongoing-requests", type=float, default=1.0)
    p.add_argument("--max-ongoing-requests", type=int, default=1)
    p.add_argument("--upscale-delay-s", type=float, default=2.0)
    p.add_argument("--downscale-delay-s", type=float, default=10.0)
    p.add_argument("--downscale-to-zero-delay-s", type=float, default=15.0)
    p.add_argument("--look-back-period-s", type=float, default=30.0)
    p.add_argument("--metrics-interval-s", type=float, default=0.5,
                   help="how often handles and replicas push load to the autoscaler (Ray's default 10 s)")
    p.add_argument("--graceful-shutdown-timeout-s", type=float, default=20.0)
    p.add_argument("--slo-e2e", type=float, default=0.0, help="end-to-end SLO in s for every stage (0 = none)")
    p.add_argument("--stop-timeout", type=int, default=300, help="seconds Locust lets running jobs finish")
    p.add_argument("--out", type=Path, default=None,
                   help="report path (default reports/measured/autoscale-rayserve-<scenario>.json, "
                        "or ...-calibration.json with --calibrate)")
    p.add_argument("--trace-out", type=Path, default=None, help="the scenario's trace CSV (default beside --out)")
    p.add_argument("--locust-dir", type=Path, default=Path("reports/locust"), help="Locust's CSV/HTML/log")
    pinning_group = p.add_argument_group("pinning")
    pinning_group.add_argument("--no-pin", action="store_true",
                               help="never pin (pinned only when the server's CPUs hold one per replica)")
    args = p.parse_args(argv)
    if args.calibrate and args.calibration:
        p.error("--calibrate writes a calibration; --calibration reads one")
    if args.min_replicas < 0 or args.max_replicas < max(1, args.min_replicas):
        p.error("need 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shape = SCENARIOS[args.scenario]
    cases = parse_cases(args.cases)
    cycles, runs = args.cold_starts or shape.cold_starts, args.warm_runs or shape.warm_runs
    measured = Path("reports/measured")
    if args.calibrate:
        out = args.out or measured / "autoscale-rayserve-calibration.json"
    else:
        out = args.out or measured / f"autoscale-rayserve-{args.scenario}.json"
    calibration_out = out if args.calibrate else out.with_name(f"{out.stem}-calibration.json")
    report = calibration = None
    with ray_target(args) as target:
        if args.calibration:
            calibration = Report.load(args.calibration)
        else:
            print(f"calibration: {cycles} cycle(s) from zero, {runs} warm run(s) per case", flush=True)
            calibration = calibrate(args, target, cases, cycles, runs)
        if not args.calibrate:
            service_s = warm_service_s(calibration, cases[0].name)
            scenario = build_scenario(shape, service_s, [c.name for c in cases])
            report = run_scenario(args, target, scenario, out,
                                  str(args.calibration or calibration_out))
    # saved once Ray is down: the reports record whether it stopped cleanly
    if not args.calibration:
        calibration.extra["rayserve"] = target.info
        calibration.save(calibration_out)
        print_calibration(calibration)
        print(f"calibration report: {calibration_out}")
    if report is None:
        return 0 if calibration.coldstart.get("back_at_rest") and not target.info.get("leftover_pids") else 1
    report.extra["rayserve"] = target.info
    report.save(out)
    print_summary(report, warm_service_s(calibration))
    print(f"\nmeasured report: {out}\nvalidate: python -m simulator validate --measured {out} "
          f"--calibration {args.calibration or calibration_out}")
    ok = report.extra["back_at_rest"] and report.extra["locust_exit_code"] == 0 and not target.info.get("leftover_pids")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
