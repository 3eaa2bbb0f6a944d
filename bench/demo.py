"""`python -m bench demo` (`make demo`): the main job end to end on the tiny offline model, each step the
command a user would type, in a subprocess. The plan is data: a list of `Step`s, each its argv (literal strings
and computed arguments), its phase (whether it runs against the demo's job server) and the files it reads. A
step whose input is missing or that `--short` (the CI mode) leaves out prints "skipped: <why>"; the demo goes on."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import pinning
from bench.autoscale.target import AUTOSCALING_FLAGS
from bench.concurrency import LOCUSTFILE
from bench.measure import started_server
from loadlab.cases import LIGHT_CASES, test_image
from loadlab.schema import Report

# Open loop at these shares of the single server's capacity (rho ~ 0.5 and ~ 0.85).
LOADS = (0.5, 0.85)
# The demo's end-to-end SLO, as a multiple of the calibrated single-job time: the SLO is a user's choice;
# tying it to S makes it mean the same on a slow CPU and on a GPU (at rho 0.85 the FIFO mean is ~3.8 S).
SLO_MULTIPLE = 4.0
# The Ray Serve scenario's autoscaling settings: `bench autoscale`'s defaults where they differ from Ray's,
# written out so the demo's command shows them.
RAY_AUTOSCALING = AUTOSCALING_FLAGS.base.changed()
RAY_SHORT_SKIP = ("--short: the autoscaling scenario (Ray start-up and minutes of scaling) runs in the full demo; "
                  "CI covers the deployment in tests/test_rayserve.py")
SHORT_SKIP = "--short: CI keeps to the Poisson run"
VERTEX_SHORT_SKIP = "--short: the Vertex-adapter bursts run in the full demo only"
VERTEX_CALIBRATION_SKIP = "--short: the Vertex adapter's calibration runs in the full demo only (no bursts to replay)"
TARGETS = ("local", "vertex")     # the job API and its Vertex adapter, on the same job server
TRACE_SECONDS = 180.0        # one simulated day replayed in 3 minutes
# `bench calibrate`'s sizes: jobs alone, the loaded closed loops (users) and about how many jobs each:
# 5 alone + 1 warm-up + 2 x 6 under load, so ~18 x S plus Locust's start and drain
CALIBRATION = ("--runs", "5", "--loads", "3,5", "--jobs", "6")
CALIBRATION_SHORT = ("--runs", "3", "--loads", "3,5", "--jobs", "3")
# The Ray calibration before the scenario, and a smaller one after it (~3.5 min against ~5.5) that measures the
# machine's speed again: a run 7 % slower than its one calibration fell outside the prediction (2026-12-07).
RAY_CALIBRATION = ("--runs", "5", "--cold-starts", "2", "--loads", "3,5", "--jobs", "5")
RAY_CALIBRATION_AFTER = ("--runs", "5", "--cold-starts", "1", "--loads", "3,5", "--jobs", "3")


class Skip(Exception):
    """A step that cannot run here: an input it needs is missing, or `--short` leaves it out."""


# A computed argument: given the phase's URL (None outside the server phase) when the step runs, the
# strings it stands for (none, one or several).
Computed = Callable[[str | None], list[str]]


@dataclass(frozen=True)
class Step:
    title: str
    argv: tuple[str | Computed, ...]             # after `python`
    phase: str = ""                              # "" (no server, or one of its own) or "server" (the job server)
    inputs: tuple[tuple[Path, str], ...] = ()    # (file, what writes it): a missing one skips the step
    skip: str | None = None                      # why this run leaves the step out

    def command(self, url: str | None) -> list[str]:
        """The argv with its computed arguments filled in; raises Skip when the step cannot run."""
        if self.skip:
            raise Skip(self.skip)
        for path, made_by in self.inputs:
            require_file(path, made_by)
        return [out for arg in self.argv for out in ([arg] if isinstance(arg, str) else arg(url))]


class Steps:
    """Runs the demo's commands in order with progress; remembers failures and skips, and goes on."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.failed: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self.started = time.perf_counter()

    def _head(self, title: str) -> None:
        self.done += 1
        print(f"\n==> [{self.done}/{self.total}] {title}   (t+{time.perf_counter() - self.started:.0f}s)", flush=True)

    def skip(self, title: str, why: str) -> None:
        self._head(title)
        print(f"    skipped: {why}", flush=True)
        self.skipped.append((title, why))

    def run(self, step: Step, url: str | None) -> bool:
        try:
            args = step.command(url)
        except Skip as why:
            self.skip(step.title, str(why))
            return False
        self._head(step.title)
        print(f"    $ python {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, *args])
        print(f"    {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            self.failed.append(step.title)
        return rc == 0


def calibration_of(reports: Path, target: str, when: str = "") -> Path:
    """The `bench calibrate` report of a target (local, vertex, rayserve); `when="after"`: its second
    calibration, after the measured runs."""
    return reports / "measured" / f"calibration-{target}{'-' + when if when else ''}.json"


def require_file(path: Path, made_by: str) -> None:
    if not path.is_file():
        raise Skip(f"{path} is missing ({made_by} did not write it)")


# --- inputs derived from the calibration run ------------------------------------------------------------

def calibrated_service_s(single_report: Path) -> tuple[float, float, int]:
    """(model time S, end-to-end mean, model workers) from a `bench single` report (the separate calibration)."""
    require_file(single_report, "bench single")
    report = Report.load(single_report)
    jobs = [s for s in report.stages if s.summary.count]
    if not jobs:
        raise Skip(f"{single_report} has no completed job")
    summary = jobs[0].summary
    service = summary.service_s.mean or summary.mean
    workers = (report.config.server.workers if report.config.server else None) or 1
    return service, summary.mean, workers


def open_loop_rates(single_report: Path, loads: tuple[float, ...] = LOADS) -> tuple[list[float], float]:
    """Arrival rates (per s) at the given shares of the server's capacity, workers / S, and the SLO."""
    service_s, e2e_s, workers = calibrated_service_s(single_report)
    capacity = workers / service_s
    return [round(load * capacity, 4) for load in loads], round(SLO_MULTIPLE * e2e_s, 2)


# --- computed arguments -----------------------------------------------------------------------------------

def phase_url(url: str | None) -> list[str]:
    """The URL of the server the phase runs against."""
    return [url]


def server_pid(running: dict[str, int]) -> Computed:
    """`--server-pid` of the demo's job server, once it runs: bench records (and keeps) its pinning."""
    return lambda _url: ["--server-pid", str(running["server"])] if "server" in running else []


def rates(calibration: Path) -> Computed:
    """The open-loop rates at LOADS of the calibrated capacity, comma-separated."""
    return lambda _url: [",".join(f"{r:g}" for r in open_loop_rates(calibration)[0])]


def slo(calibration: Path) -> Computed:
    return lambda _url: [f"{open_loop_rates(calibration)[1]:g}"]


def trace_volume(calibration: Path) -> Computed:
    """The monthly volume whose one-day trace, replayed in TRACE_SECONDS, averages ~40 % of capacity."""
    def volume(_url: str | None) -> list[str]:
        (rate, *_), _slo = open_loop_rates(calibration, loads=(0.4,))
        return [str(max(30, round(rate * TRACE_SECONDS * 30)))]
    return volume


def light_image(folder: Path) -> Computed:
    return lambda _url: [str(test_image(LIGHT_CASES["light"], folder))]


def flags(settings: dict[str, float]) -> tuple[str, ...]:
    """`--key-name value` for each setting."""
    return tuple(arg for key, value in settings.items() for arg in (f"--{key.replace('_', '-')}", f"{value:g}"))


def full_only(short: bool, why: str = SHORT_SKIP) -> str | None:
    """The skip reason of a step the full demo runs and `--short` leaves out."""
    return why if short else None


# --- the plan ---------------------------------------------------------------------------------------------

def plan(args: argparse.Namespace, running: dict[str, int] | None = None) -> list[Step]:
    """The demo's steps in order. `running` holds the job server's pid while the server phase runs."""
    reports, short = args.reports, args.short
    running = {} if running is None else running
    return [
        Step("tiny model: build offline, decompose one image",
             ("-m", "server.model", "decompose", light_image(reports / "images"), "--layers", "3", "--resolution",
              "640", "--out", str(reports / "layers"))),
        *server_steps(reports, short, running),
        *open_loop_steps(reports, short),
        *(after_calibration_step(reports, short, running, target) for target in TARGETS),
        Step("benchmark 2, cold start (a fresh server process)",
             ("-m", "bench", "coldstart", "--short", "--out", str(reports / "measured" / "coldstart-local.json"))),
        *simulator_steps(reports, short),
        *ray_steps(reports, short),
        Step("HTML report", ("-m", "bench", "report", "--reports", str(reports))),
    ]


def server_steps(reports: Path, short: bool, running: dict[str, int]) -> list[Step]:
    """Benchmarks 1 and 3 against the demo's job server, each through the job API and the Vertex adapter."""
    measured = reports / "measured"
    runs = "2" if short else "5"
    stages = "1,5" if short else "1,5,10,20"
    steps = [Step(f"benchmark 1, single request, {target} target (sizes the open-loop rates and the SLO)",
                  ("-m", "bench", "single", "--url", phase_url, "--target", target, "--cases", "light", "--runs",
                   runs, "--warmup", "1", "--out", str(measured / f"single-{target}.json"), server_pid(running)),
                  "server")
             for target in TARGETS]
    steps += [Step(f"calibration, {target} target: jobs alone and under load (the simulator's service times)",
                   ("-m", "bench", "calibrate", "--url", phase_url, "--target", target, "--cases", "light",
                    *(CALIBRATION_SHORT if short else CALIBRATION), "--out", str(calibration_of(reports, target)),
                    "--locust-dir", str(reports / "locust" / f"calibration-{target}"), server_pid(running)),
                   "server", skip=full_only(short, VERTEX_CALIBRATION_SKIP) if target == "vertex" else None)
              for target in TARGETS]
    steps += [Step(f"benchmark 3, Locust stages {stages} (bursts), {target} target",
                   ("-m", "bench", "concurrency", "--url", phase_url, "--target", target, "--cases", "light",
                    "--stages", stages, "--jobs-per-user", "1", "--single-report",
                    str(measured / f"single-{target}.json"), "--locust-dir", str(reports / "locust" / target),
                    "--out", str(measured / f"concurrency-{target}.json"), server_pid(running)),
                   "server", skip=full_only(short, VERTEX_SHORT_SKIP) if target == "vertex" else None)
              for target in TARGETS]
    return steps


def open_loop_steps(reports: Path, short: bool) -> list[Step]:
    """Open-loop Poisson arrivals at LOADS of the calibrated capacity, then a simulated day's trace
    compressed to TRACE_SECONDS and replayed, against the demo's job server."""
    calibration = (reports / "measured" / "single-local.json", "bench single")
    trace_file = reports / "traces" / "day-compressed.csv"
    return [
        Step(f"open loop: Poisson arrivals at {' and '.join(f'{x:.0%}' for x in LOADS)} of the server's capacity",
             locust_open_loop(reports, "open-poisson-local", "--arrival", "poisson", "--rates", rates(calibration[0]),
                              "--stage-seconds", "15" if short else "120", "--seed", "1"),
             "server", inputs=(calibration,)),
        Step("trace: one simulated day from the workload model, compressed to 3 minutes",
             ("-m", "simulator", "trace", "--monthly", trace_volume(calibration[0]), "--days", "1", "--time-scale",
              f"{86400 / TRACE_SECONDS:g}", "--case-mix", "light=1", "--seed", "1", "--out", str(trace_file)),
             "server", inputs=(calibration,), skip=full_only(short)),
        # the trace is already compressed by `simulator trace`, so Locust replays it 1:1; one stage per
        # 6 simulated hours
        Step("trace replay: Locust sends the compressed day's arrivals",
             locust_open_loop(reports, "trace-day-local", "--arrival", "trace", "--trace", str(trace_file),
                              "--time-scale", "1", "--stage-seconds", f"{TRACE_SECONDS / 4:g}"),
             "server", inputs=((trace_file, "simulator trace"), calibration), skip=full_only(short)),
    ]


def after_calibration_step(reports: Path, short: bool, running: dict[str, int], target: str) -> Step:
    """A target's calibration again after the measured runs: the prediction's interval holds the drift between
    the two (validate.py `calibration_draw`); one alone missed a run 3 % faster (Vertex bursts, 2026-12-02)."""
    return Step(f"calibration again, {target} target, after the measured runs (the machine's drift over them)",
                ("-m", "bench", "calibrate", "--url", phase_url, "--target", target, "--cases", "light",
                 *(CALIBRATION_SHORT if short else CALIBRATION), "--out", str(calibration_of(reports, target, "after")),
                 "--locust-dir", str(reports / "locust" / f"calibration-{target}-after"), server_pid(running)), "server",
                skip=full_only(short, VERTEX_CALIBRATION_SKIP) if target == "vertex" else None)


def locust_open_loop(reports: Path, name: str, *arrivals: str | Computed) -> tuple[str | Computed, ...]:
    """Locust, headless, sending the light case to the job API at the given arrivals with the demo's SLO;
    its report measured/<name>.json, its CSV and HTML under locust/."""
    prefix = reports / "locust" / name
    return ("-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--host", phase_url,
            "--target", "local", "--cases", "light", *arrivals,
            "--slo-e2e", slo(reports / "measured" / "single-local.json"), "--stop-timeout", "300",
            "--report-out", str(reports / "measured" / f"{name}.json"), "--csv", str(prefix), "--html", f"{prefix}.html")


def simulator_steps(reports: Path, short: bool) -> list[Step]:
    """The simulator's month, sweep and article replay, and its replays of the measured runs."""
    measured, simulated = reports / "measured", reports / "simulated"
    volumes = "100,10000" if short else "100,1000,5000,10000,50000,100000"
    steps = [
        Step("simulator: 10,000 requests/month",
             ("-m", "simulator", "--monthly", "10000", "--out", str(simulated / "monthly-10000.json"))),
        Step("simulator: sweep of monthly volumes",
             ("-m", "simulator", "sweep", "--volumes", volumes, "--out", str(simulated / "sweep.json"),
              "--png", str(simulated / "sweep.png"))),
        Step("simulator: the article's scenario from its own figures",
             ("-m", "simulator", "article", "--out", str(simulated / "article.json"))),
    ]
    steps += [Step(f"simulator validate: replay the measured {target} bursts with the {target} calibration",
                   validate(measured / f"concurrency-{target}.json", simulated / f"validate-concurrency-{target}.json",
                            *bracket(reports, target)),
                   inputs=((measured / f"concurrency-{target}.json", "its Locust run"),
                           (calibration_of(reports, target), "bench calibrate")),
                   skip=full_only(short, "--short: no Vertex-adapter bursts to replay") if target == "vertex" else None)
              for target in TARGETS]
    steps += [Step(f"simulator validate: replay {name} with service times from the calibration run",
                   validate(measured / f"{name}.json", simulated / f"validate-{name}.json",
                            *bracket(reports, "local")),
                   inputs=((measured / f"{name}.json", "its Locust run"), (calibration_of(reports, "local"),
                                                                           "bench calibrate")),
                   skip=full_only(short) if name.startswith("trace") else None)
              for name in ("open-poisson-local", "trace-day-local")]
    return steps


def ray_steps(reports: Path, short: bool) -> list[Step]:
    """The Ray Serve app scaled from zero and back: its calibration, the scenario, the simulator's replay."""
    measured = reports / "measured"
    calibration, run = calibration_of(reports, "rayserve"), measured / "autoscale-rayserve.json"
    autoscale, scenario = ("-m", "bench", "autoscale"), ("--scenario", "demo", "--cases", "light", *flags(RAY_AUTOSCALING))
    skip = full_only(short, RAY_SHORT_SKIP)

    def calibrate(sizes: tuple[str, ...], when: str = "") -> tuple[str, ...]:
        out = calibration_of(reports, "rayserve", when)
        return ("-m", "bench", "calibrate", "--target", "rayserve", "--cases", "light", *sizes, "--out", str(out),
                "--locust-dir", str(reports / "locust" / out.stem), *flags(RAY_AUTOSCALING))

    return [
        Step("Ray Serve calibration: replica start-ups, decision delays, first and warm jobs, jobs under load "
             "(its own Ray cluster)", calibrate(RAY_CALIBRATION), skip=skip),
        Step("Ray Serve: idle -> ramp -> burst -> idle until scaled to zero, max 2 replicas, replicas recorded",
             (*autoscale, *scenario, "--calibration", str(calibration), "--out", str(run),
              "--locust-dir", str(reports / "locust" / "rayserve")),
             inputs=((calibration, "the Ray Serve calibration"),), skip=skip),
        Step("Ray Serve calibration again, smaller, after the scenario (the machine's drift over it)",
             calibrate(RAY_CALIBRATION_AFTER, "after"), inputs=((run, "the Ray Serve scenario"),), skip=skip),
        Step("simulator validate: the autoscaling run through the ray-serve policy",
             validate(run, reports / "simulated" / "validate-autoscale-rayserve.json", *bracket(reports, "rayserve")),
             inputs=((run, "the Ray Serve scenario"),), skip=skip),
    ]


def bracket(reports: Path, target: str) -> tuple[Path | Computed, ...]:
    """A target's calibration, and the one after the runs too when it was written."""
    after = calibration_of(reports, target, "after")
    return calibration_of(reports, target), lambda _url: ["--calibration", str(after)] if after.is_file() else []


def validate(measured: Path, out: Path, *calibrations: Path | Computed) -> tuple[str | Computed, ...]:
    """`simulator validate` of a measured report, with service times from the calibrations given."""
    given = [x for c in calibrations for x in (("--calibration", str(c)) if isinstance(c, Path) else (c,))]
    return ("-m", "simulator", "validate", "--measured", str(measured), *given, "--out", str(out))
# --- the servers the phases run against ---------------------------------------------------------------------

@contextlib.contextmanager
def job_server(reports: Path, running: dict[str, int]) -> Iterator[str]:
    """The job server of the measured runs, pinned apart from the load generator (this process and
    every command it starts) where the machine has >= 2 CPUs; its pid goes into `running`."""
    # The content cache is off: every job uploads the same image, and hits would measure the cache, not the model.
    print("\n==> starting the job server (tiny model, content cache off) for the measured runs", flush=True)
    cpus = pinning.plan()
    with started_server({"data_dir": reports / "server-data", "cache_ttl": 0}, cpus=cpus) as target:
        running["server"] = target.server.pid
        if cpus:  # the bench commands started below pin and record with the same split
            os.environ[pinning.PLAN_ENV] = cpus.export()
        pinned = f"server on CPUs {target.server_cpus}, load generator on {target.load_cpus}" if cpus else "not pinned"
        print(f"    ready at {target.url} ({pinned})", flush=True)
        yield target.url
    running.pop("server", None)
    os.environ.pop(pinning.PLAN_ENV, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench demo", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="output folder (default reports)")
    parser.add_argument("--short", action="store_true",
                        help="CI mode: fewer runs, burst stages 1 and 5, a 30 s open-loop run; no trace day, "
                             "no Vertex-adapter bursts, no Ray Serve scenario")
    args = parser.parse_args(argv)

    running: dict[str, int] = {}
    steps_plan = plan(args, running)
    steps = Steps(total=len(steps_plan))
    for phase, group in itertools.groupby(steps_plan, key=lambda s: s.phase):
        group = list(group)
        if not phase:
            for step in group:
                steps.run(step, None)
            continue
        ran = 0
        try:
            with job_server(args.reports, running) as url:
                for step in group:
                    steps.run(step, url)
                    ran += 1
        except Exception as err:  # a server that did not start fails its phase, not the whole demo
            print(f"\n    FAILED: the {phase} server: {type(err).__name__}: {err}", flush=True)
            steps.failed.append(f"{phase} server")
            for step in group[ran:]:
                steps.skip(step.title, f"the {phase} server failed")

    print(f"\ndemo finished in {time.perf_counter() - steps.started:.0f} s; report: "
          f"{(args.reports / 'index.html').resolve()}")
    if steps.skipped:
        print(f"skipped steps: {len(steps.skipped)} (see 'skipped:' above)")
    if steps.failed:
        print(f"failed steps: {', '.join(steps.failed)}", file=sys.stderr)
        return 1
    return 0
