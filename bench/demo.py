"""`python -m bench demo` (`make demo`): the main job end to end on the tiny offline model, each step the
command a user would type, in a subprocess; a step whose command is not available yet prints
"skipped: <why>" and the demo goes on. `--short` is the CI mode."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.concurrency import LOCUSTFILE
from loadlab.schema import Report

# Open loop at these shares of the single server's capacity (issue 13: rho ~ 0.5 and ~ 0.85).
LOADS = (0.5, 0.85)
# The demo's end-to-end SLO, as a multiple of the calibrated single-job time: the SLO is a user's choice;
# tying it to S makes it mean the same on a slow CPU and on a GPU (at rho 0.85 the FIFO mean is ~3.8 S).
SLO_MULTIPLE = 4.0
# The Ray Serve scenario's autoscaling settings (issue 14's example; `bench autoscale`'s defaults, written out
# so the demo's command shows them).
RAY_AUTOSCALING = {"min_replicas": 0, "max_replicas": 2, "target_ongoing_requests": 1, "upscale_delay_s": 2,
                   "downscale_delay_s": 10, "downscale_to_zero_delay_s": 15, "metrics_interval_s": 0.5}
RAY_SHORT_SKIP = ("--short: the autoscaling scenario (Ray start-up and minutes of scaling) runs in the full demo; "
                  "CI covers the deployment in tests/test_rayserve.py")


class Skip(Exception):
    """A step that cannot run here: its command is not available yet, or an input it needs is missing."""


@dataclass
class Step:
    title: str
    command: Callable[[str | None], list[str]]   # the phase's URL -> argv after `python`; may raise Skip
    phase: str = ""                              # "" (no server, or one of its own) or "server" (the job server)


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


# --- is a command there yet? ------------------------------------------------------------------------------

@functools.cache
def help_text(*args: str) -> str:
    """`python ARGS --help` (stdout), '' when the command fails."""
    try:
        proc = subprocess.run([sys.executable, *args, "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def require_options(args: tuple[str, ...], *options: str) -> None:
    """Skip unless `python ARGS --help` shows its own usage line and every option."""
    text = help_text(*args)
    command = "python " + " ".join(args)
    # `python -m simulator <unknown>` falls back to `run`'s help: the usage line names the real command
    if not text or f"usage: {command}" not in " ".join(text.split()):
        raise Skip(f"`{command}` is not available")
    missing = [o for o in options if o not in text]
    if missing:
        raise Skip(f"`{command}` has no {', '.join(missing)}")


def require_locust_options(*options: str) -> None:
    """Skip unless the locustfile defines these options. Locust's --help does not list a locustfile's own
    options (they are added after it is loaded), so the file itself is read."""
    source = LOCUSTFILE.read_text()
    missing = [o for o in options if f'"{o}"' not in source]
    if missing:
        raise Skip(f"{LOCUSTFILE.name} has no {', '.join(missing)} option")


def require_module(name: str) -> None:
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise Skip(f"{name} is not installed or not built yet")


def require_file(path: Path, made_by: str) -> None:
    if not path.is_file():
        raise Skip(f"{path} is missing ({made_by} did not write it)")


# --- inputs derived from the calibration run ------------------------------------------------------------

def calibrated_service_s(single_report: Path) -> tuple[float, float, int]:
    """(model time S, end-to-end mean, model workers) from a `bench single` report: the separate
    calibration run the open-loop rates, the SLO and the simulator's service times come from."""
    require_file(single_report, "bench single")
    report = Report.load(single_report)
    jobs = [s for s in report.stages if s.summary["count"]]
    if not jobs:
        raise Skip(f"{single_report} has no completed job")
    summary = jobs[0].summary
    service = summary["service_s"].get("mean") or summary["mean"]
    workers = (report.config.server.workers if report.config.server else None) or 1
    return service, summary["mean"], workers


def open_loop_rates(single_report: Path, loads: tuple[float, ...] = LOADS) -> tuple[list[float], float]:
    """Arrival rates (per s) at the given shares of the server's capacity, workers / S, and the SLO."""
    service_s, e2e_s, workers = calibrated_service_s(single_report)
    capacity = workers / service_s
    return [round(load * capacity, 4) for load in loads], round(SLO_MULTIPLE * e2e_s, 2)


# --- the plan ---------------------------------------------------------------------------------------------

def plan(args: argparse.Namespace, running: dict[str, int] | None = None) -> list[Step]:
    reports, short = args.reports, args.short
    measured, simulated, traces = reports / "measured", reports / "simulated", reports / "traces"
    runs = "2" if short else "5"
    stages = "1,5" if short else "1,5,10,20"
    volumes = "100,10000" if short else "100,1000,5000,10000,50000,100000"
    calibration = measured / "single-local.json"
    image = reports / "images"
    steps: list[Step] = []
    running = {} if running is None else running

    def server_pid() -> list[str]:
        """`--server-pid` of the demo's job server: bench records (and keeps) its pinning."""
        return ["--server-pid", str(running["server"])] if "server" in running else []

    def add(title: str, phase: str = ""):
        def register(command: Callable[[str | None], list[str]]):
            steps.append(Step(title, command, phase))
            return command
        return register

    def full_only(why: str = "--short: CI keeps to the Poisson run") -> None:
        if short:
            raise Skip(why)

    @add("tiny model: build offline, decompose one image")
    def _(url):
        from loadlab.cases import LIGHT_CASES, test_image

        return ["-m", "server.model", "decompose", str(test_image(LIGHT_CASES["light"], image)),
                "--layers", "3", "--resolution", "640", "--out", str(reports / "layers")]

    for target in ("local", "vertex"):
        @add(f"benchmark 1, single request, {target} target (also the calibration run)", "server")
        def _(url, target=target):
            return ["-m", "bench", "single", "--url", url, "--target", target, "--cases", "light", "--runs", runs,
                    "--warmup", "1", "--out", str(measured / f"single-{target}.json"), *server_pid()]

    for target in ("local", "vertex"):
        @add(f"benchmark 3, Locust stages {stages} (bursts), {target} target", "server")
        def _(url, target=target):
            if target == "vertex":
                full_only("--short: the Vertex-adapter bursts run in the full demo only")
            return ["-m", "bench", "concurrency", "--url", url, "--target", target, "--cases", "light",
                    "--stages", stages, "--jobs-per-user", "1", "--single-report", str(measured / f"single-{target}.json"),
                    "--locust-dir", str(reports / "locust" / target), "--out", str(measured / f"concurrency-{target}.json"),
                    *server_pid()]

    # --- open loop (issue 13): wired against the CLIs the open-loop branch adds -------------------------
    stage_s = "15" if short else "120"

    @add(f"open loop: Poisson arrivals at {' and '.join(f'{x:.0%}' for x in LOADS)} of the server's capacity",
         "server")
    def _(url):
        require_locust_options("--arrival", "--rates", "--seed", "--slo-e2e")
        rates, slo = open_loop_rates(calibration)
        prefix = reports / "locust" / "open-poisson-local"
        return ["-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--host", url,
                "--target", "local", "--cases", "light", "--arrival", "poisson",
                "--rates", ",".join(f"{r:g}" for r in rates), "--stage-seconds", stage_s, "--seed", "1",
                "--slo-e2e", f"{slo:g}", "--stop-timeout", "300", "--report-out", str(measured / "open-poisson-local.json"),
                "--csv", str(prefix), "--html", f"{prefix}.html"]

    trace_file = traces / "day-compressed.csv"
    trace_seconds = 180.0        # one simulated day replayed in 3 minutes
    time_scale = 86400 / trace_seconds

    @add("trace: one simulated day from the workload model, compressed to 3 minutes", "server")
    def _(url):
        full_only()
        require_options(("-m", "simulator", "trace"), "--monthly", "--days", "--time-scale", "--out")
        # about 40 % of capacity on average over the day (busy hours run above it): monthly volume =
        # rate x replay length x 30 days
        (rate, *_), _slo = open_loop_rates(calibration, loads=(0.4,))
        monthly = max(30, round(rate * trace_seconds * 30))
        # the calibrated case only: the replay's service times come from the calibration run
        return ["-m", "simulator", "trace", "--monthly", str(monthly), "--days", "1", "--time-scale",
                f"{time_scale:g}", "--case-mix", "light=1", "--seed", "1", "--out", str(trace_file)]

    @add("trace replay: Locust sends the compressed day's arrivals", "server")
    def _(url):
        full_only()
        require_locust_options("--arrival", "--trace", "--time-scale", "--slo-e2e")
        require_file(trace_file, "simulator trace")
        _rates, slo = open_loop_rates(calibration)
        prefix = reports / "locust" / "trace-day-local"
        # the trace is already compressed by `simulator trace`, so Locust replays it 1:1; one stage per
        # 6 simulated hours
        return ["-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--host", url,
                "--target", "local", "--cases", "light", "--arrival", "trace", "--trace", str(trace_file),
                "--time-scale", "1", "--stage-seconds", f"{trace_seconds / 4:g}", "--slo-e2e", f"{slo:g}",
                "--stop-timeout", "300", "--report-out", str(measured / "trace-day-local.json"),
                "--csv", str(prefix), "--html", f"{prefix}.html"]

    @add("benchmark 2, cold start (a fresh server process)")
    def _(url):
        return ["-m", "bench", "coldstart", "--short", "--out", str(measured / "coldstart-local.json")]

    @add("simulator: 10,000 requests/month")
    def _(url):
        return ["-m", "simulator", "--monthly", "10000", "--out", str(simulated / "monthly-10000.json")]

    @add("simulator: sweep of monthly volumes")
    def _(url):
        return ["-m", "simulator", "sweep", "--volumes", volumes, "--out", str(simulated / "sweep.json"),
                "--png", str(simulated / "sweep.png")]

    @add("simulator: the article's scenario from its own figures")
    def _(url):
        return ["-m", "simulator", "article", "--out", str(simulated / "article.json")]

    for target in ("local", "vertex"):
        @add(f"simulator validate: replay the measured {target} bursts")
        def _(url, target=target):
            if target == "vertex":
                full_only("--short: no Vertex-adapter bursts to replay")
            return ["-m", "simulator", "validate", "--measured", str(measured / f"concurrency-{target}.json"),
                    "--out", str(simulated / f"validate-concurrency-{target}.json")]

    for name in ("open-poisson-local", "trace-day-local"):
        @add(f"simulator validate: replay {name} with service times from the calibration run")
        def _(url, name=name):
            if name.startswith("trace"):
                full_only()
            require_options(("-m", "simulator", "validate"), "--calibration")
            require_file(measured / f"{name}.json", "its Locust run")
            return ["-m", "simulator", "validate", "--measured", str(measured / f"{name}.json"),
                    "--calibration", str(calibration), "--out", str(simulated / f"validate-{name}.json")]

    # --- autoscaling (issue 14): a Ray Serve app, scaled from zero and back --------------------------
    ray_calibration = measured / "autoscale-rayserve-calibration.json"
    ray_run = measured / "autoscale-rayserve.json"
    settings = [arg for key, value in RAY_AUTOSCALING.items() for arg in (f"--{key.replace('_', '-')}", f"{value:g}")]

    @add("Ray Serve calibration: warm service times and replica cold starts (its own Ray cluster)")
    def _(url):
        full_only(RAY_SHORT_SKIP)
        require_module("ray")
        require_options(("-m", "bench", "autoscale"), "--calibrate")
        return ["-m", "bench", "autoscale", "--calibrate", "--scenario", "demo", "--cases", "light", *settings,
                "--out", str(ray_calibration)]

    @add("Ray Serve: idle -> ramp -> burst -> idle until scaled to zero, max 2 replicas, replicas recorded")
    def _(url):
        full_only(RAY_SHORT_SKIP)
        require_module("ray")
        require_file(ray_calibration, "the Ray Serve calibration")
        return ["-m", "bench", "autoscale", "--scenario", "demo", "--cases", "light", *settings,
                "--calibration", str(ray_calibration), "--out", str(ray_run),
                "--locust-dir", str(reports / "locust" / "rayserve")]

    @add("simulator validate: the autoscaling run through the ray-serve policy")
    def _(url):
        full_only(RAY_SHORT_SKIP)
        require_file(ray_run, "the Ray Serve scenario")
        require_options(("-m", "simulator", "validate"), "--calibration")
        return ["-m", "simulator", "validate", "--measured", str(ray_run), "--calibration", str(ray_calibration),
                "--out", str(simulated / "validate-autoscale-rayserve.json")]

    @add("HTML report")
    def _(url):
        return ["-m", "bench", "report", "--reports", str(reports)]

    return steps


# --- the servers the phases run against ---------------------------------------------------------------------

@contextlib.contextmanager
def job_server(reports: Path, running: dict[str, int]) -> Iterator[str]:
    """The job server of the measured runs, pinned apart from the load generator (this process and
    every command it starts) where the machine has >= 2 CPUs; its pid goes into `running`."""
    from bench import pinning
    from bench.measure import started_server

    # The content cache is off for measuring: every job uploads the same image, and cache hits would
    # measure the cache, not the model.
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

    total = time.perf_counter() - steps.started
    print(f"\ndemo finished in {total:.0f} s; report: {(args.reports / 'index.html').resolve()}")
    if steps.skipped:
        print(f"skipped steps: {len(steps.skipped)} (see 'skipped:' above)")
    if steps.failed:
        print(f"failed steps: {', '.join(steps.failed)}", file=sys.stderr)
        return 1
    return 0
