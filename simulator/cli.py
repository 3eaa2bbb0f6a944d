"""The command line of `python -m simulator`: what each way of serving costs per month and what latency users see.

Commands (the first is the default):
  run       (default) simulate a month at --monthly requests for local / vertex / hybrid
  sweep     several volumes x settings, cheapest setting meeting a p95 SLO, cost-vs-volume PNG
  validate  replay the stages of a measured report, error % per stage
  trace     an arrival trace (t_s,case CSV) drawn from the workload model, for Locust and `run --trace`;
            `trace import LOG` turns a request log into one, `trace fit LOG` fits the workload model to a log
  article   the source article's scenario replayed from its own figures
  bench     speed of the simulator against a bare SimPy M/M/1 loop
  recommend the answer at one volume: decided setting, $/month and p95 with intervals, its bill, validation error
  search    settings searched (Optuna) for the cheapest configuration meeting the SLO

Every flag of a command, with units and defaults: python -m simulator COMMAND --help
(e.g. python -m simulator run --help). Prices: simulator/pricing.py.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from pathlib import Path

from loadlab.ray_autoscaling import Flags
from loadlab.trace import MAX_ROWS
from simulator.autoscaling.ray_serve import ray_defaults
from simulator.limits import (
    MAX_DAYS,
    MAX_REPLICAS,
    MAX_REPLICATIONS,
    MAX_REQUESTS,
    MAX_SEED,
    MAX_VOLUMES,
    SCALE_TO_ZERO_PERIOD_S,
)
from simulator.pricing import PRICE_TABLE

DAY_S = 86400.0

COMMANDS = {"run": "simulator.month:cmd_run", "sweep": "simulator.sweep:cmd_sweep",
            "validate": "simulator.validate_command:cmd_validate", "trace": "simulator.trace_from_workload:cmd_trace",
            "article": "simulator.article_replay:cmd_article", "bench": "simulator.speed:cmd_bench",
            "trace import": "simulator.traffic.commands:cmd_import", "trace fit": "simulator.traffic.fit_command:cmd_fit",
            "sweep --trace": "simulator.traffic.sweep_trace:cmd_sweep_trace",
            "recommend": "simulator.recommend:cmd_recommend", "search": "simulator.search:cmd_search"}


class Bounded:
    """An argparse type: a number of `kind` within lo..hi (above lo when `lo_open`); NaN and infinities
    never are. `Parser` states the range in the flag's help, so it is written once."""

    def __init__(self, kind: type, lo: float, hi: float, lo_open: bool = False):
        self.kind, self.lo, self.hi, self.lo_open = kind, lo, hi, lo_open

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not self._within(value):
            what = "an integer" if self.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} in {self}")
        return value

    def _within(self, value: float) -> bool:
        return (self.lo < value if self.lo_open else self.lo <= value) and value <= self.hi

    def __str__(self) -> str:
        return f"{'>' if self.lo_open else ''}{_num(self.lo)}..{_num(self.hi)}"


def _num(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"


def writable_path(text: str) -> Path:
    """An argparse type: a file the command can write (checked before a long run, not after it)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory")
    folder = next(p for p in path.absolute().parents if p.exists())   # the missing ones are made on saving
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: {folder} is not a directory")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: permission denied")
    return path


# `--ray-upscale-delay-s` ...: the Ray Serve model's settings, one flag per field (min/max: --ray-min-max);
# the older spellings stay as aliases.
RAY_FLAGS = Flags(
    ray_defaults(), prefix="ray-",
    only=("target_ongoing_requests", "max_ongoing_requests", "upscale_delay_s", "downscale_delay_s",
          "downscale_to_zero_delay_s", "look_back_period_s", "metrics_interval_s", "graceful_shutdown_timeout_s"),
    aliases={"target_ongoing_requests": "--ray-target-ongoing", "max_ongoing_requests": "--ray-max-ongoing",
             "upscale_delay_s": "--ray-upscale-delay", "downscale_delay_s": "--ray-downscale-delay",
             "downscale_to_zero_delay_s": "--ray-downscale-to-zero-delay", "look_back_period_s": "--ray-look-back",
             "metrics_interval_s": "--ray-metrics-interval", "graceful_shutdown_timeout_s": "--ray-graceful-timeout"},
    # below a second of look-back the time-weighted records (a fifth of it) would swamp a month's events
    types={"target_ongoing_requests": Bounded(float, 0, 1000, lo_open=True), "max_ongoing_requests": Bounded(int, 1, 1000),
           "upscale_delay_s": Bounded(float, 0, DAY_S), "downscale_delay_s": Bounded(float, 0, DAY_S),
           "downscale_to_zero_delay_s": Bounded(float, 0, DAY_S), "look_back_period_s": Bounded(float, 1, 3600),
           "metrics_interval_s": Bounded(float, 0.5, 3600), "graceful_shutdown_timeout_s": Bounded(float, 0, DAY_S)},
    helps={"graceful_shutdown_timeout_s": "Ray Serve graceful_shutdown_timeout_s: a stopping replica's jobs are "
                                          "killed after it (default 300, above a Large job on a T4; Ray's own is 20)"})


class Parser(argparse.ArgumentParser):
    """Errors as one line (no usage block), exit 2; a `Bounded` flag's range appended to its help."""

    def add_argument(self, *args, **kwargs):
        if isinstance(kwargs.get("type"), Bounded) and kwargs.get("help"):
            kwargs["help"] += f"; range {kwargs['type']}"
        return super().add_argument(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=Bounded(int, 0, MAX_SEED), default=1,
                   help="random seed; same seed, same output (default 1)")
    p.add_argument("--profile", default=None,
                   help="service times: seed-3090 | seed-t4 | PATH of a measured report (default: seed-3090 "
                        "for the local GPU, seed-t4 for Vertex)")
    p.add_argument("--fit", choices=("empirical", "normal"), default="empirical",
                   help="with a report profile: resample measured values (default) or a fitted normal")
    p.add_argument("--prices", default=None, help="JSON file {key: value} overriding the price table")
    p.add_argument("--price", action="append", default=[], metavar="KEY=VALUE",
                   help="override one price (repeatable): " + ", ".join(
                       f"{key} ({p.unit}, default {p.value:g})" for key, p in PRICE_TABLE.items()))
    p.add_argument("--out", type=writable_path, default=None, help="JSON output path (default under reports/simulated/)")


def add_workload(p: argparse.ArgumentParser) -> None:
    add_arrivals(p)
    p.add_argument("--cache-hit-ratio", type=Bounded(float, 0, 1), default=0.0,
                   help="share of requests repeating earlier content (default 0; article: 0.2)")
    p.add_argument("--cache-ttl", type=Bounded(float, 0, MAX_DAYS * DAY_S), default=86400.0,
                   help="cache TTL in s (default 86400, article)")


def add_arrivals(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case-mix", default="small=0.3,medium=0.5,large=0.2",
                   help="case weights (default small=0.3,medium=0.5,large=0.2)")
    p.add_argument("--hour-weights", default=None, help="24 comma-separated traffic weights by hour of day "
                   "(default: 1.0 in 9-18h, less evening, 0.05 at night)")
    p.add_argument("--day-weights", default=None, help="7 weights Monday..Sunday (default 1,1,1,1,1,0.3,0.3)")
    p.add_argument("--bursts-per-day", type=Bounded(float, 0, 1000), default=0.0, help="bursts per day (default 0)")
    p.add_argument("--burst-size", type=Bounded(int, 0, 100_000), default=0,
                   help="requests per burst, all at once (default 0)")
    p.add_argument("--days", type=Bounded(float, 0, MAX_DAYS, lo_open=True), default=30.0,
                   help="simulated days (default 30; cost scaled to 30 days). Requests in a run (monthly x days "
                        f"/ 30, plus bursts): at most {MAX_REQUESTS:,}")


def add_deployment(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deployments", default="local,vertex,hybrid",
                   help="which to run, comma-separated scenario names (default local,vertex,hybrid; any name of "
                        "simulator/scenarios.py, e.g. vertex-zero-spot, local-2gpu)")
    p.add_argument("--gpus", type=Bounded(int, 1, 256), default=1, help="local GPUs (default 1)")
    p.add_argument("--queue-limit", type=Bounded(int, 0, MAX_REQUESTS), default=None,
                   help="local queue bound, jobs waiting; over it -> rejected (default none)")
    p.add_argument("--max-batch", type=Bounded(int, 1, 64), default=1, help="local micro-batch size (default 1)")
    p.add_argument("--batch-marginal", type=Bounded(float, 0, 10), default=1.0,
                   help="extra time of each further job in a batch, fraction of one job (default 1.0: no gain)")
    p.add_argument("--business-min-max", default="1,3",
                   help=f"Vertex min,max replicas 9-18h (default 1,3, article); 0 <= MIN <= MAX <= {MAX_REPLICAS}")
    p.add_argument("--night-min-max", default="0,1",
                   help=f"Vertex min,max replicas 18-9h (default 0,1, article); 0 <= MIN <= MAX <= {MAX_REPLICAS}")
    p.add_argument("--target-utilisation", type=Bounded(float, 0, 1, lo_open=True), default=0.6,
                   help="autoscaler target (default 0.6)")
    p.add_argument("--window", type=Bounded(float, 1, DAY_S), default=60.0, help="autoscaler look-back window, s (default 60)")
    p.add_argument("--scale-down-delay", type=Bounded(float, 0, DAY_S), default=300.0,
                   help="scale-down stabilisation, s (default 300)")
    p.add_argument("--idle-scaledown-period", type=Bounded(float, *SCALE_TO_ZERO_PERIOD_S), default=3600.0,
                   help="scale-to-zero: idle time before the last replica stops, s (default 3600)")
    p.add_argument("--min-scaleup-period", type=Bounded(float, *SCALE_TO_ZERO_PERIOD_S), default=3600.0,
                   help="scale-to-zero: least up time after scaling from zero, s (default 3600)")
    p.add_argument("--spot", action="store_true", help="spot replicas (price x (1 - spot_discount))")
    p.add_argument("--preemptions-per-hour", type=Bounded(float, 0, 60), default=0.0,
                   help="spot preemption rate per replica-hour (default 0)")
    p.add_argument("--stockout-probability", type=Bounded(float, 0, 1), default=0.0,
                   help="chance a spot replica cannot be obtained (default 0)")
    p.add_argument("--endpoint", choices=("dedicated", "shared"), default="dedicated",
                   help="Vertex endpoint: dedicated (3600 s, 10 MB) or shared public (60 s, 1.5 MB)")
    p.add_argument("--ray-min-max", default="0,3",
                   help=f"Ray Serve min,max replicas (default 0,3); 0 <= MIN <= MAX <= {MAX_REPLICAS}")
    RAY_FLAGS.add_to(p)
    p.add_argument("--ray-node-idle-timeout", type=Bounded(float, 0, DAY_S), default=300.0,
                   help="Ray cluster autoscaler: a GPU node is removed this many s after its last replica stopped "
                        "(billed until then; default 300, idle_timeout_minutes 5 of ray/autoscaler/gcp/defaults.yaml)")
    p.add_argument("--fallback-after", type=Bounded(float, 0, DAY_S), default=120.0,
                   help="hybrid: move a request to the local GPU when not started on Vertex after this many s (default 120)")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="python -m simulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command")
    # one function a command, in the order of COMMANDS and of the help; each adds its flags and groups
    for add in (add_run_command, add_sweep_command, add_validate_command, add_trace_command, add_article_command,
                add_bench_command, add_recommend_command, add_search_command):
        add(sub)
    return top


def add_run_command(sub) -> None:
    """`run`: a month (or a trace) through the deployments."""
    run = sub.add_parser("run", help="simulate a month (default command)")
    run.add_argument("--monthly", type=Bounded(int, 0, MAX_REQUESTS), default=10000,
                     help="requests per month (default 10000; at the bound a deployment that keeps up simulates for "
                          "~2 minutes)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (shown from 20,000 requests/month)")
    run.add_argument("--replications", type=Bounded(int, 1, MAX_REPLICATIONS), default=1, metavar="N",
                     help="independent months (seeds --seed .. --seed+N-1): adds the mean and 95 %% interval of "
                          "each deployment's cost and p95 (default 1: the table of --seed alone)")
    run.add_argument("--slo-e2e", type=Bounded(float, 0, DAY_S, lo_open=True), default=None, metavar="S",
                     help="end-to-end SLO in s: adds SLO attainment (share of requests answered within S) and "
                          "goodput (such requests per hour) to the table and the report's stages")
    run.add_argument("--trace", default=None, metavar="CSV",
                     help="replay the arrivals of a trace (t_s,case; e.g. from `simulator trace` or production "
                          "logs; t=0 is Monday 00:00) instead of drawing --monthly from the workload model")
    add_trace_flags(run)
    add_workload(run)
    add_deployment(run)
    add_common(run)


def add_trace_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--drain-s", type=Bounded(float, 0, 30 * DAY_S), default=3600.0,
                   help="with --trace: simulated time after the last arrival, s (default 3600)")
    p.add_argument("--repeat-to-month", action="store_true",
                   help="with --trace: bill the traffic repeated to 30 days (default: the bill of the trace's own "
                        "span, arrivals + --drain-s)")


def add_sweep_command(sub) -> None:
    """`sweep`: volumes x settings, the cheapest setting meeting the p95 SLO."""
    sw = sub.add_parser("sweep", help="cheapest setting meeting the SLO per volume")
    sw.add_argument("--volumes", default="100,1000,5000,10000,50000,100000",
                    help=f"monthly volumes (default 100,...,100000); at most {MAX_VOLUMES}, each 1..{MAX_REQUESTS:,}")
    sw.add_argument("--slo-p95", type=Bounded(float, 0, DAY_S, lo_open=True), default=300.0,
                    help="p95 latency SLO in s (default 300)")
    sw.add_argument("--processes", type=Bounded(int, 1, 64), default=2, help="parallel processes (default 2)")
    sw.add_argument("--replications", type=Bounded(int, 1, MAX_REPLICATIONS), default=None, metavar="N",
                    help="exactly N months per setting and volume (seeds --seed ..; N=1: the old single-month "
                         "sweep). Default: decided: a week's screening of every setting, then months with the same "
                         "seeds for the contenders until the best separates from the runner-up or --cap")
    sw.add_argument("--cap", type=Bounded(int, 2, MAX_REPLICATIONS), default=8,
                    help="decided sweep: at most this many months per contender (default 8)")
    sw.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                    help="run the simulated months as Ray tasks on this existing Ray cluster (default: local processes)")
    sw.add_argument("--png", type=writable_path, default=Path("reports/simulated/sweep.png"), help="cost-vs-volume plot")
    sw.add_argument("--trace", default=None, metavar="CSV",
                    help="every setting on the arrivals of this trace (e.g. from `trace import`) instead of --volumes")
    add_trace_flags(sw)
    add_workload(sw)
    add_common(sw)


def add_validate_command(sub) -> None:
    """`validate`: a measured report replayed, error per stage."""
    va = sub.add_parser("validate", help="replay a measured report's stages, error %% per stage",
                        description="Replay a measured run in the simulator and compare, per stage and (autoscaling "
                                    "runs: a report with replicas and config.server.autoscaling) for the whole "
                                    "run through the ray-serve policy.")
    va.add_argument("--measured", required=True, help="measured report (loadlab/schema.py JSON)")
    va.add_argument("--calibration", action="append", default=[], metavar="REPORT",
                    help="measured report(s) of a separate run (e.g. bench single, bench coldstart) giving the service "
                         "times, client overhead and replica start-up (repeatable); without it they come from the "
                         "measured run's N=1 stage, which is then not scored")
    va.add_argument("--slo-e2e", type=Bounded(float, 0, DAY_S, lo_open=True), default=None, metavar="S",
                    help="end-to-end SLO in s for every stage (default: each stage's own slo_e2e_s): adds SLO "
                         "attainment rows")
    va.add_argument("--max-error", type=Bounded(float, 0, 1000), default=None,
                    help="exit 1 when any scored stage's mean/p95/throughput error (autoscaling runs: also the "
                         "replica-seconds) exceeds PCT %%")
    va.add_argument("--service-from", choices=("n1", "all"), default="n1",
                    help="service times from the N=1 stage(s) of each report (default; all stages when there is none) "
                         "or from all stages")
    va.add_argument("--replications", type=Bounded(int, 1, MAX_REPLICATIONS), default=5,
                    help="simulated replications per stage, averaged (default 5)")
    va.add_argument("--service", choices=("both", "measured", "calibrated"), default="both",
                    help="measured: the mechanics replay (each job's measured service time and overhead, each "
                         "replica's measured start-up); calibrated: the prediction (service times from "
                         "--calibration); both (default): both layers, printed one after the other")
    add_common(va)


def add_trace_command(sub) -> None:
    """`trace`: an arrival CSV from the workload model."""
    tr = sub.add_parser("trace", help="an arrival trace (t_s,case CSV) drawn from the workload model")
    tr.add_argument("--monthly", type=Bounded(int, 0, MAX_REQUESTS), default=10000,
                    help=f"requests per month (default 10000); the trace (monthly x days / 30, plus bursts) holds "
                         f"at most {MAX_ROWS:,} rows")
    tr.add_argument("--time-scale", type=Bounded(float, 0.001, 1_000_000), default=1.0,
                    help="divide every arrival time by K (default 1: real time; 720 turns a day into 2 minutes)")
    tr.add_argument("--out", type=writable_path, default=None, help="the trace CSV to write (required)")
    tr.add_argument("--seed", type=Bounded(int, 0, MAX_SEED), default=1,
                    help="random seed; same seed, same arrivals as `run` (default 1)")
    add_arrivals(tr)
    from simulator.traffic.flags import add_fit_parser, add_import_parser

    tr_sub = tr.add_subparsers(dest="trace_command", metavar="{import,fit}")
    add_import_parser(tr_sub, Bounded, writable_path)
    add_fit_parser(tr_sub, Bounded)


def add_article_command(sub) -> None:
    """`article`: the source article's scenario."""
    ar = sub.add_parser("article", help="the article's scenario replayed from its own figures")
    add_common(ar)


def add_bench_command(sub) -> None:
    """`bench`: the simulator's speed against a bare SimPy loop."""
    be = sub.add_parser("bench", help="simulator speed vs a bare SimPy M/M/1 loop (prints, asserts nothing)")
    be.add_argument("--requests", type=Bounded(int, 1, MAX_REQUESTS), default=1_000_000,
                    help="requests in the month (default 1,000,000)")
    be.add_argument("--seed", type=Bounded(int, 0, MAX_SEED), default=1, help="random seed (default 1)")


MONTHLY = Bounded(int, 1, MAX_REQUESTS)
DEFAULT_MONTHLY = 10000


def add_traffic(p: argparse.ArgumentParser, processes_help: str = "parallel processes (default 2)") -> None:
    """What `recommend` and `search` share: the traffic (--monthly or --trace), the SLO, where they run."""
    from simulator.traffic.flags import add_monthly_or_trace

    add_monthly_or_trace(p, MONTHLY, DEFAULT_MONTHLY)
    add_trace_flags(p)
    p.add_argument("--slo-p95", type=Bounded(float, 0, DAY_S, lo_open=True), default=120.0,
                   help="p95 latency SLO in s (default 120)")
    p.add_argument("--processes", type=Bounded(int, 1, 64), default=2, help=processes_help)
    p.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="run the simulated months as Ray tasks on this existing Ray cluster (default: local processes)")


def add_recommend_command(sub) -> None:
    """`recommend`: the decided answer at one volume (simulator/recommend.py)."""
    re = sub.add_parser("recommend", help="the decided setting at one volume, with intervals, bill, validation error")
    add_traffic(re)
    re.add_argument("--cap", type=Bounded(int, 2, MAX_REPLICATIONS), default=8,
                    help="at most this many months per contender (default 8)")
    re.add_argument("--validations", type=Path, default=Path("reports/simulated"),
                    help="folder of the validation reports (validate-*.json; default reports/simulated)")
    add_workload(re)
    add_common(re)


def add_search_command(sub) -> None:
    """`search`: Optuna over each kind's settings (simulator/search.py)."""
    se = sub.add_parser("search", help="the cheapest configuration meeting the SLO, searched with Optuna")
    add_traffic(se, "parallel processes (with --ray-address: trials in flight; default 2)")
    se.add_argument("--kinds", default="vertex,ray,local", help="kinds to search (default vertex,ray,local)")
    se.add_argument("--trials", type=Bounded(int, 1, 2000), default=60, help="Optuna trials in all (default 60)")
    se.add_argument("--budget-s", type=Bounded(float, 1, DAY_S), default=240.0,
                    help="stop starting trials after this many s of wall time (default 240)")
    add_workload(se)
    add_common(se)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    top = parser()
    args = top.parse_args(argv)
    command = f"trace {args.trace_command}" if getattr(args, "trace_command", None) else args.command
    command = "sweep --trace" if command == "sweep" and args.trace else command
    if command == "trace" and args.out is None:
        top.error("trace: --out is required (or: trace import LOG --out FILE, trace fit LOG)")
    module, _, function = COMMANDS[command].partition(":")
    try:
        # each command's module is imported only when run (the parser stays quick to load)
        return getattr(importlib.import_module(module), function)(args)
    except (ValueError, OSError) as err:   # a mistake in the command line or an input file: one line, exit 2
        print(f"python -m simulator {command}: error: {one_line(err)}", file=sys.stderr)
        return 2


def one_line(err: Exception) -> str:
    """The error's message on one line (a report's validation error spans several)."""
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror}"
    return " ".join(str(err).split())
