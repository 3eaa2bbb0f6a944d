"""Locust load test of the decomposition service: the source article's benchmark 3, done properly.

    locust -f locustfiles/decompose.py --host http://127.0.0.1:8000                # web UI
    locust -f locustfiles/decompose.py --host URL --headless --stages 1,5,10,20 \\
           --jobs-per-user 1 --cases medium --csv reports/locust/run --html reports/locust/run.html

What it does:

- `LocalDecomposeUser` and `VertexDecomposeUser` call `decompose_image(image_path, num_layers,
  resolution)` through `clients/` (one client per user; no HTTP or Vertex code here). One job is one
  Locust entry of type `job`, timed from submit to result and named by case and stage
  (`small [u=5]`), so every stage has its own row in the web UI and the CSV/HTML/JSON outputs.
  Failed jobs and rejected ones (429 after the client's retries) are Locust failures with the reason.
- `StageShape` runs the stages of `locustfiles/stages.py` (1, 5, 10, 20 users by default), each held
  `--stage-seconds` (closed loop: `wait_time = constant(0)`, N jobs always in flight) or until each
  user ran `--jobs-per-user` jobs (1 = the article's "all at once" burst). It stops by itself.
  Only the user class of `--target` is spawned.
- At test stop the master (or the single process) writes every job's exact times and the per-stage
  summaries to `--report-out` (reports/measured/*.json, `loadlab/schema.py`; built by `locustfiles/report.py`). Locust's
  own percentiles round times above 10 s to whole seconds; the report does not.
- Stopping lets running jobs finish: without `--stop-timeout` it is set to 300 s (a job killed
  mid-call would be orphaned on the server). Give more when N x S is longer.

Distributed (`--processes N`, or `--master` + `--worker`): the shape runs on the master, which tells
the workers the current stage with a `loadlab_stage` message; workers send each finished job to the
master as a `loadlab_job` message, so the master's report holds every worker's jobs.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from itertools import count
from urllib.parse import urlsplit

import gevent
from locust import LoadTestShape, User, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from loadlab.cases import parse_cases
from loadlab.schema import COMPLETED
from locustfiles.jobs import ClientPool, run_one
from locustfiles.ledger import BOARD, LEDGER
from locustfiles.report import build_report, default_report_path, plan_from_options, summary_lines
from locustfiles.stages import DEFAULT_MAX_STAGE_S, DEFAULT_STAGES, StagePlan

log = logging.getLogger("loadlab")

STAGE_MSG, JOB_MSG = "loadlab_stage", "loadlab_job"
REQUEST_TYPE = "job"
SPAWN_RATE = 100.0            # users per second when a stage starts: a burst starts all at once
IDLE_POLL_S = 0.2             # how often a user that has run its burst jobs looks for the next stage
LOOPBACK = "127.0.0.1"
DEFAULT_STOP_TIMEOUT_S = 300  # when --stop-timeout is not given: let running (and queued) jobs finish


# --- options -------------------------------------------------------------------------------------

@events.init_command_line_parser.add_listener
def _add_options(parser, **_kw):
    # Locust listens on every interface by default; the load generator is a remote-control panel,
    # so it listens on loopback unless --web-host / --master-bind-host say otherwise.
    parser.set_defaults(web_host=LOOPBACK, master_bind_host=LOOPBACK)
    parser.add_argument("--stages", default=",".join(map(str, DEFAULT_STAGES)),
                       help="comma list of concurrent users per stage (default 1,5,10,20)")
    parser.add_argument("--stage-seconds", type=float, default=60.0,
                       help="how long each closed-loop stage is held (ignored with --jobs-per-user)")
    parser.add_argument("--jobs-per-user", type=int, default=0,
                       help="hold each stage until every user ran N jobs; 1 = all at once (article); 0 = closed loop")
    parser.add_argument("--max-stage-seconds", type=float, default=DEFAULT_MAX_STAGE_S,
                       help=f"upper bound on a --jobs-per-user stage (default {DEFAULT_MAX_STAGE_S:g} s; 0 = none)")
    parser.add_argument("--cases", default="light",
                       help="case set or list: article | light | small | small,medium,large (bench/cases.py)")
    parser.add_argument("--target", default="local", choices=["local", "vertex", "fallback"],
                       help="client the users drive: the local job API or the Vertex AI adapter")
    parser.add_argument("--report-out", default="", help="measured report path (default reports/measured/locust-<target>-<mode>-<time>.json)")
    parser.add_argument("--report-name", default="", help="report name (default derived from target and mode)")
    parser.add_argument("--client-factory", default="", include_in_web_ui=False,
                       help="module:function(target, url) building the client (default: clients/; "
                            "tests use locustfiles.fakeclient:make_client)")


# --- state of this process ------------------------------------------------------------------------

_ID_RE = re.compile(r"(?<=/)[0-9a-fA-F-]{8,}(?=/|$)")  # job and file ids in a path
_CASE_COUNTER = count()


@events.init.add_listener
def _on_init(environment, runner=None, **_kw):
    if environment.parsed_options is not None:
        plan_from_options(environment.parsed_options)  # fail at start on a bad --stages
        parse_cases(environment.parsed_options.cases)
    if not environment.stop_timeout:
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT_S
    if runner is None:
        return
    if not isinstance(runner, MasterRunner):
        runner.register_message(STAGE_MSG, lambda environment, msg, **kw: BOARD.set(msg.data))
    if not isinstance(runner, WorkerRunner):
        runner.register_message(JOB_MSG, lambda environment, msg, **kw: LEDGER.add(msg.data["stage"], msg.data["job"]))


# --- users ---------------------------------------------------------------------------------------

class DecomposeUser(User):
    """One user = one client = at most one job in flight. Each task call runs one job of the next
    case (round robin over `--cases`) and reports it as a `job` entry named `<case> [<stage>]`.
    In a burst stage a user that has run its `jobs_per_user` jobs idles until the next stage."""

    abstract = True
    wait_time = constant(0)
    target = "local"

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.cases = parse_cases(options.cases)
        self.next_case = next(_CASE_COUNTER)
        self.jobs_in_stage: dict[int, int] = {}
        self.clients = ClientPool(self.target, self.host, options.client_factory, on_build=self._watch_http)

    def _watch_http(self, client) -> None:
        session = getattr(client, "session", None)
        if session is not None and hasattr(session, "hooks"):  # a requests.Session: show its raw calls
            session.hooks.setdefault("response", []).append(self._raw_http)

    def _raw_http(self, response, *args, **kwargs):
        """Report each raw HTTP call of the client as its own Locust entry (`GET /api/status/{id}`),
        besides the job entry; 429 answers get their own row. Only 5xx counts as a failure here:
        the job entry is what fails or succeeds."""
        request = response.request
        name = f"{request.method} {_ID_RE.sub('{id}', urlsplit(request.url).path)}"
        if response.status_code == 429:
            name += " (429)"
        error = RawHTTPError(f"HTTP {response.status_code}") if response.status_code >= 500 else None
        self.environment.events.request.fire(
            request_type="http", name=name, response_time=response.elapsed.total_seconds() * 1000.0,
            response_length=int(response.headers.get("content-length") or 0), exception=error, context={})

    def on_stop(self) -> None:
        self.clients.close()

    @task
    def decompose(self) -> None:
        seq, stage, per_user = BOARD.seq, BOARD.name, BOARD.jobs_per_user
        if stage is None or (per_user and self.jobs_in_stage.get(seq, 0) >= per_user):
            gevent.sleep(IDLE_POLL_S)
            return
        self.jobs_in_stage[seq] = self.jobs_in_stage.get(seq, 0) + 1
        case = self.cases[self.next_case % len(self.cases)]
        self.next_case += 1
        self.run_job(case, stage)

    def run_job(self, case, stage: str) -> None:
        record = run_one(self.clients, case, served_by=self.target)
        record.extra["generator"] = f"{socket.gethostname()}:{os.getpid()}"  # which load-generator process
        error = None
        if record.status != COMPLETED:
            error = JobError(f"{record.status}: {record.error}")
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE, name=f"{case.name} [{stage}]", response_time=record.e2e_s * 1000.0,
            response_length=record.extra.get("layers", 0), exception=error,
            context={"stage": stage, "case": case.name, "job_id": record.extra.get("job_id")})
        self.environment.runner.send_message(JOB_MSG, {"stage": stage, "job": record.model_dump()})


class RawHTTPError(Exception):
    """A 5xx answer to one of the client's raw HTTP calls."""


class JobError(Exception):
    """A failed or rejected job as Locust shows it: `rejected: RejectedError: ...`."""


class LocalDecomposeUser(DecomposeUser):
    """Drives the local job API through `clients.local.LocalClient`."""

    target = "local"


class VertexDecomposeUser(DecomposeUser):
    """Drives the Vertex AI adapter (`clients.vertex.VertexAIClient`, the real SDK over REST);
    point `--host` at a Vertex endpoint URL or at our server's Vertex-compatible routes."""

    target = "vertex"


class FallbackDecomposeUser(DecomposeUser):
    """Drives `clients.fallback.FallbackClient` (Vertex first, then local); `--host` is
    "vertex_url,local_url" or one URL for both."""

    target = "fallback"


USER_CLASSES = {"local": LocalDecomposeUser, "vertex": VertexDecomposeUser, "fallback": FallbackDecomposeUser}


# --- shape ---------------------------------------------------------------------------------------

class StageShape(LoadTestShape):
    """Runs the `StagePlan` built from the command line: returns `(users, spawn_rate, [user class
    of --target])` for the current stage, announces every new stage to all users (and workers)
    before spawning for it, and returns None after the last stage, which stops the test. A burst
    stage ends when the job ledger holds all of its jobs. The plan is read from the options at the
    first tick of each run (so a run started from the web UI uses the options entered there)."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: StagePlan | None = None
        self.index = 0
        self.stage_started = 0.0

    def tick(self):
        options = self.runner.environment.parsed_options
        if self.plan is None:
            self.plan = plan_from_options(options)
            LEDGER.reset()
            log.info("[loadlab] %s, target %s, cases %s", self.plan.describe(), options.target, options.cases)
            self._announce(0)
        stage = self.plan.stages[self.index]
        nxt = self.plan.step(self.index, time.monotonic() - self.stage_started, LEDGER.ended(stage.name))
        if nxt is None:
            log.info("[loadlab] stage %s done (%d jobs); all stages done", stage.name, LEDGER.ended(stage.name))
            return None
        if nxt != self.index:
            log.info("[loadlab] stage %s done (%d jobs)", stage.name, LEDGER.ended(stage.name))
            self._announce(nxt)
            stage = self.plan.stages[nxt]
        return stage.users, SPAWN_RATE, [USER_CLASSES[options.target]]

    def _announce(self, index: int) -> None:
        self.index = index
        self.stage_started = time.monotonic()
        stage = self.plan.stages[index]
        LEDGER.started_at[stage.name] = time.time()
        LEDGER.jobs.setdefault(stage.name, [])
        log.info("[loadlab] stage %s started (%d users, %s)", stage.name, stage.users,
                 f"{stage.jobs_per_user} job(s) each" if stage.jobs_per_user else f"{stage.duration_s:g} s")
        self.runner.send_message(STAGE_MSG, {"seq": index, "name": stage.name,
                                             "jobs_per_user": stage.jobs_per_user})


# --- report --------------------------------------------------------------------------------------

@events.test_stop.add_listener
def _on_test_stop(environment, **_kw):
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    if isinstance(environment.shape_class, StageShape):
        environment.shape_class.plan = None  # the next run (web UI) starts a new plan and ledger
    if not LEDGER.started_at:
        return
    options = environment.parsed_options
    report = build_report(options, LEDGER, stopped_at=time.time())
    path = report.save(options.report_out or default_report_path(options))
    for line in summary_lines(report):
        log.info("[loadlab] %s", line)
    log.info("[loadlab] measured report written to %s", path)
