"""Locust load test of the decomposition service: closed-loop and burst stages (the source article's
benchmark 3, done properly) and open-loop arrivals (Poisson, gamma, constant rate, trace replay).

    locust -f locustfiles/decompose.py --host http://127.0.0.1:8000                # web UI on 127.0.0.1:8089
    locust -f locustfiles/decompose.py --host URL --headless --stages 1,5,10,20 \\
           --jobs-per-user 1 --cases medium --csv reports/locust/run --html reports/locust/run.html
    locust -f locustfiles/decompose.py --host URL --headless --arrival poisson --rates 0.2,0.5 \\
           --stage-seconds 120 --seed 7 --max-in-flight 20
    locust -f locustfiles/decompose.py --host URL --headless --arrival trace --trace day.csv --time-scale 60

What it does:

- One job is one Locust entry of type `job` named by case and stage (`small [u=5]`, `small [r=0.5/s]`),
  so every stage has its own row in the web UI and the CSV/HTML/JSON outputs. Failed and rejected
  jobs (429 after the client's retries) are Locust failures with the reason; open-loop arrivals over
  `--max-in-flight` are entries of type `dropped`. All jobs go through `clients/` (one client per
  job in flight; no HTTP or Vertex code here).
- `--arrival closed` (default): `LocalDecomposeUser` / `VertexDecomposeUser` / `FallbackDecomposeUser`
  (the one of `--target`) run the stages of `locustfiles/stages.py` (1, 5, 10, 20 users), each held
  `--stage-seconds` (closed loop: `wait_time = constant(0)`, N jobs always in flight) or until each
  user ran `--jobs-per-user` jobs (1 = the article's "all at once" burst; bounded by
  `--max-stage-seconds`).
- `--arrival poisson|gamma|constant|trace`: open loop. The shape precomputes the arrival sequence
  (`locustfiles/arrivals.py`: one stage per `--rates` entry, or per `--stage-seconds` window of the
  trace; `--seed`) and hands it to one `ArrivalDispatcher` user per load-generator process. The
  dispatcher sleeps until each arrival is due and spawns a greenlet for its job, so arrivals never
  wait for responses. Each record carries `scheduled`; latency counts from it, and the dispatch
  lateness (submitted - scheduled) is in every stage summary. The run ends when every arrival has
  a record (or `--stop-timeout` after the last stage).
- At test stop the master (or the single process) writes every job's exact times and the per-stage
  summaries to `--report-out` (reports/measured/*.json, `loadlab/schema.py`; built by
  `locustfiles/report.py`). Locust's own percentiles round times above 10 s to whole seconds; the
  report does not.
- Stopping lets running jobs finish: without `--stop-timeout` it is set to 300 s (a job killed
  mid-call would be orphaned on the server). Give more when N x S is longer.
- The web UI and a master listen on 127.0.0.1 unless `--web-host` / `--master-bind-host` say otherwise.
- Options are checked at start (`locustfiles/options.py`): a bad value is one line `locust: error: ...`,
  exit code 2. The web UI (`locustfiles/webui.py`) answers only its own origin, takes only the fields
  its form shows, each checked (paths under reports/), never `--client-factory`; `--web-login` needs
  `$LOADLAB_WEB_PASSWORD`.

This file holds what Locust must find in the locustfile: the users (`locustfiles/users.py`) and the
one shape (`locustfiles/shape.py`) imported at module level, and the event listeners (the options,
the checks at start, the messages between processes, the report at stop).

Distributed (`--processes N`, or `--master` + `--worker`): the shape runs on the master. Closed loop:
it tells the workers the current stage with a `loadlab_stage` message. Open loop: it sends worker w
(of n, by worker id) the arrivals i with i mod n = w in a `loadlab_arrivals` message, with the
master's epoch origin, so together the workers send exactly the sequence one process would (their
clocks are assumed in sync, as on one machine). Workers send each finished job to the master as a
`loadlab_job` message, so the master's report holds every worker's jobs.

Why a dispatcher user and not open-loop users that each wait for "their" arrival: a user runs one
job at a time, so N users cap the jobs in flight at N and an arrival that finds them all busy waits —
the coordinated omission an open loop must not have. One dispatcher per process spawning a greenlet
per arrival keeps arrivals independent of responses, its sleep is Locust's own `wait_time` (a Stop
ends it at once; jobs in flight then get `--stop-timeout` to finish), the jobs still fire
`events.request` (stats, web UI, CSV/HTML, worker reports), and the user count stays non-zero while
jobs run, which is what makes a master wait for its workers to finish.
"""

from __future__ import annotations

import logging
import sys
import time

from locust import events
from locust.runners import MasterRunner, WorkerRunner

from locustfiles import cockpit, webui
from locustfiles.ledger import ARRIVALS_MSG, BOARD, INBOX, JOB_MSG, LEDGER, STAGE_MSG
from locustfiles.options import BY_DEST, OptionError, add_options, check_options
from locustfiles.report import build_report, default_report_path, summary_lines
from locustfiles.shape import StageShape
from locustfiles.users import use_client_factory

# Locust takes the users and the shape from this module's names, imported ones included, and lists
# the users (--list, the web UI) in the order they are bound here: not sorted, as they were defined.
# isort: off
from locustfiles.users import LocalDecomposeUser, VertexDecomposeUser, FallbackDecomposeUser, ArrivalDispatcher
# isort: on

__all__ = ["LocalDecomposeUser", "VertexDecomposeUser", "FallbackDecomposeUser", "ArrivalDispatcher", "StageShape"]

log = logging.getLogger("loadlab")

LOOPBACK = "127.0.0.1"
DEFAULT_STOP_TIMEOUT_S = 300  # when --stop-timeout is not given: let running (and queued) jobs finish


# --- options -------------------------------------------------------------------------------------

@events.init_command_line_parser.add_listener
def _add_options(parser, **_kw):
    # Locust listens on every interface by default; the load generator is a remote-control panel,
    # so it listens on loopback unless --web-host / --master-bind-host say otherwise.
    parser.set_defaults(web_host=LOOPBACK, master_bind_host=LOOPBACK)
    add_options(parser)


# --- start of a process ---------------------------------------------------------------------------

@events.init.add_listener
def _on_init(environment, runner=None, web_ui=None, **_kw):
    if environment.parsed_options is not None:
        _check_at_start(environment.parsed_options, runner, web_ui)
    if not environment.stop_timeout:
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT_S
    if runner is None:
        return
    if not isinstance(runner, MasterRunner):
        runner.register_message(STAGE_MSG, lambda environment, msg, **kw: BOARD.set(msg.data))
        runner.register_message(ARRIVALS_MSG, lambda environment, msg, **kw: INBOX.load(msg.data))
    if not isinstance(runner, WorkerRunner):
        runner.register_message(JOB_MSG, lambda environment, msg, **kw: LEDGER.add(msg.data["stage"], msg.data["job"]))


_COCKPIT: list[cockpit.Cockpit] = []   # the web UI's cockpit tab (none when headless)


def _check_at_start(options, runner, web_ui) -> None:
    """Bad options stop the process here, before any request, with one line and exit code 2 (an
    exception would be Locust's "Uncaught exception in event handler" and a traceback)."""
    try:
        # Code imported by name: taken once, from this process's own command line; parsed_options is
        # not read for it again (a worker's are the master's, replaced at each run).
        use_client_factory(BY_DEST["client_factory"].check(options.client_factory))
        if not isinstance(runner, WorkerRunner):   # a worker runs the master's options
            workers = options.expect_workers if isinstance(runner, MasterRunner) else 1
            check_options(options, processes=workers)
        if web_ui is not None:
            webui.install(web_ui, options, from_cli=dict(vars(options)))
            _COCKPIT.append(cockpit.install(web_ui.environment))
    except OptionError as err:
        sys.stderr.write(f"locust: error: {err}\n")
        sys.exit(2)


# --- report --------------------------------------------------------------------------------------

@events.test_stopping.add_listener
def _on_test_stopping(environment, **_kw):
    # a stage ends when the stop is asked for, not when the jobs then in flight have finished
    if not isinstance(environment.runner, WorkerRunner) and LEDGER.stopping_at is None:
        LEDGER.stopping_at = time.time()


@events.quitting.add_listener
def _on_quitting(environment, **_kw):
    for c in _COCKPIT:
        c.close()


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw):
    for c in _COCKPIT:
        c.stop()   # its simulations are killed at stop (the figures of the run stay on the tab)
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    if isinstance(environment.shape_class, StageShape):
        environment.shape_class.stages = None  # the next run (web UI) starts a new plan and ledger
    if not LEDGER.started_at:
        return
    options = environment.parsed_options
    report = build_report(options, LEDGER, stopped_at=LEDGER.stopping_at or time.time())
    path = report.save(options.report_out or default_report_path(options))
    for line in summary_lines(report):
        log.info("[loadlab] %s", line)
    log.info("[loadlab] measured report written to %s", path)
