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
import os
import re
import socket
import sys
import time
from itertools import count
from urllib.parse import urlsplit

import gevent
from gevent.pool import Group
from locust import LoadTestShape, User, constant, events, task
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from clients.factory import check_target
from loadlab.cases import ALL_CASES, parse_cases
from loadlab.schema import COMPLETED, DROPPED, JobRecord
from locustfiles import webui
from locustfiles.arrivals import Arrival, cap_share, split
from locustfiles.jobs import ClientPool, failed_record, image_for, run_one
from locustfiles.ledger import BOARD, INBOX, LEDGER, OpenLoopRun
from locustfiles.options import BY_DEST, OptionError, add_options, check_options
from locustfiles.report import (
    build_report,
    default_report_path,
    open_plan_from_options,
    plan_from_options,
    summary_lines,
)

log = logging.getLogger("loadlab")

STAGE_MSG, JOB_MSG, ARRIVALS_MSG = "loadlab_stage", "loadlab_job", "loadlab_arrivals"
REQUEST_TYPE, DROPPED_TYPE = "job", "dropped"
SPAWN_RATE = 100.0            # users per second when a stage starts: a burst starts all at once
IDLE_POLL_S = 0.2             # how often an idle user (burst done, no arrival left) looks again
LEAD_S = 1.0                  # open loop: t_s = 0 is this far after planning, so that every dispatcher
                              # is spawned and holds its arrivals before the first is due
LOOPBACK = "127.0.0.1"
DEFAULT_STOP_TIMEOUT_S = 300  # when --stop-timeout is not given: let running (and queued) jobs finish


# --- options -------------------------------------------------------------------------------------

@events.init_command_line_parser.add_listener
def _add_options(parser, **_kw):
    # Locust listens on every interface by default; the load generator is a remote-control panel,
    # so it listens on loopback unless --web-host / --master-bind-host say otherwise.
    parser.set_defaults(web_host=LOOPBACK, master_bind_host=LOOPBACK)
    add_options(parser)


# --- state of this process ------------------------------------------------------------------------

_ID_RE = re.compile(r"(?<=/)[0-9a-fA-F-]{8,}(?=/|$)")  # job and file ids in a path
_CASE_COUNTER = count()
_CLIENT_FACTORY = ""   # --client-factory of this process's command line, set at init


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


def _check_at_start(options, runner, web_ui) -> None:
    """Bad options stop the process here, before any request, with one line and exit code 2 (an
    exception would be Locust's "Uncaught exception in event handler" and a traceback)."""
    global _CLIENT_FACTORY
    try:
        # Code imported by name: taken once, from this process's own command line; parsed_options is
        # not read for it again (a worker's are the master's, replaced at each run).
        _CLIENT_FACTORY = BY_DEST["client_factory"].check(options.client_factory)
        if not isinstance(runner, WorkerRunner):   # a worker runs the master's options
            workers = options.expect_workers if isinstance(runner, MasterRunner) else 1
            check_options(options, processes=workers)
        if web_ui is not None:
            webui.install(web_ui, options, from_cli=dict(vars(options)))
    except OptionError as err:
        sys.stderr.write(f"locust: error: {err}\n")
        sys.exit(2)


# --- users ---------------------------------------------------------------------------------------

class JobUser(User):
    """What every user of this file shares: clients of `target` built on first need (raw HTTP calls
    of a requests-based client shown as their own entries) and the recording of a finished job —
    a Locust `job` entry, and a `loadlab_job` message to the process that writes the report."""

    abstract = True
    target = "local"

    def on_start(self) -> None:
        try:
            check_target(self.target)
        except ValueError as err:
            # make_client refuses it as well, so each job fails with the reason and no stage waits
            # for a user that died in on_start
            log.error("[loadlab] %s: every job of this user fails", err)
        self.clients = ClientPool(self.target, self.host, _CLIENT_FACTORY, on_build=self._watch_http)

    def on_stop(self) -> None:
        self.clients.close()

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

    def record(self, record: JobRecord, stage: str) -> None:
        record.extra["generator"] = f"{socket.gethostname()}:{os.getpid()}"  # which load-generator process
        error = None
        if record.status != COMPLETED:
            error = (DroppedError if record.status == DROPPED else JobError)(f"{record.status}: {record.error}")
        self.environment.events.request.fire(
            request_type=DROPPED_TYPE if record.status == DROPPED else REQUEST_TYPE,
            name=f"{record.case} [{stage}]", response_time=(record.e2e_s or 0.0) * 1000.0,
            response_length=record.extra.get("layers", 0), exception=error,
            context={"stage": stage, "case": record.case, "job_id": record.extra.get("job_id")})
        self.environment.runner.send_message(JOB_MSG, {"stage": stage, "job": record.model_dump()})


class DecomposeUser(JobUser):
    """Closed loop and bursts: one user = one client = at most one job in flight. Each task call
    runs one job of the next case (round robin over `--cases`), named `<case> [<stage>]`. In a burst
    stage a user that has run its `jobs_per_user` jobs idles until the next stage."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.cases = parse_cases(self.environment.parsed_options.cases)
        self.next_case = next(_CASE_COUNTER)
        self.jobs_in_stage: dict[int, int] = {}

    @task
    def decompose(self) -> None:
        seq, stage, per_user = BOARD.seq, BOARD.name, BOARD.jobs_per_user
        if stage is None or (per_user and self.jobs_in_stage.get(seq, 0) >= per_user):
            gevent.sleep(IDLE_POLL_S)
            return
        self.jobs_in_stage[seq] = self.jobs_in_stage.get(seq, 0) + 1
        case = self.cases[self.next_case % len(self.cases)]
        self.next_case += 1
        self.record(run_one(self.clients, case, served_by=self.target), stage)


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


class ArrivalDispatcher(JobUser):
    """Open loop: dispatches this process's arrivals (`INBOX`) at their scheduled times, one greenlet
    per job, against `--target`. Its wait between tasks is the time to the next arrival; an arrival
    that finds this process's share of `--max-in-flight` jobs running is recorded as dropped."""

    def on_start(self) -> None:
        self.target = self.environment.parsed_options.target
        super().on_start()
        self.jobs = Group()
        # the first arrival must not pay for writing a test image or building a client: that
        # would be dispatch lateness of the load generator's own making. If either fails, each job
        # fails with the reason instead (run_one).
        try:
            for name in sorted({a.case for a in INBOX.pending}):
                image_for(ALL_CASES[name])
            self.clients.release(self.clients.acquire())
        except Exception as err:
            log.warning("[loadlab] dispatcher warm-up failed (%s: %s); each job will report it", type(err).__name__, err)

    def wait_time(self) -> float:
        due = INBOX.next_due()
        return IDLE_POLL_S if due is None else max(0.0, due - time.time())

    @task
    def dispatch(self) -> None:
        for arrival in INBOX.pop_due(time.time()):
            if INBOX.max_in_flight is not None and INBOX.in_flight >= INBOX.max_in_flight:
                now = time.time()
                self.record(JobRecord(case=arrival.case, status=DROPPED, scheduled=INBOX.scheduled(arrival),
                                      submitted=now, error=f"{INBOX.in_flight} jobs in flight (cap {INBOX.max_in_flight})",
                                      extra={"arrival": arrival.index}), arrival.stage)
                continue
            INBOX.in_flight += 1
            self.jobs.spawn(self._job, arrival)

    def _job(self, arrival: Arrival) -> None:
        scheduled = INBOX.scheduled(arrival)
        try:
            record = run_one(self.clients, ALL_CASES[arrival.case], served_by=self.target, scheduled=scheduled)
        except Exception as err:   # a case unknown to this worker: still a record
            record = failed_record(arrival.case, err, time.time(), self.target, scheduled)
        finally:
            INBOX.in_flight -= 1
        record.extra["arrival"] = arrival.index
        self.record(record, arrival.stage)

    def on_stop(self) -> None:
        # Stopped (end of run, or Stop in the web UI) while waiting for the next arrival: no new
        # arrival is sent, the jobs in flight get --stop-timeout to finish.
        if not self.jobs.join(timeout=self.environment.stop_timeout or None):
            log.warning("[loadlab] %d job(s) still in flight after %s s; stopping them", len(self.jobs),
                        self.environment.stop_timeout)
            self.jobs.kill(block=True)
        super().on_stop()


class RawHTTPError(Exception):
    """A 5xx answer to one of the client's raw HTTP calls."""


class JobError(Exception):
    """A failed or rejected job as Locust shows it: `rejected: RejectedError: ...`."""


class DroppedError(Exception):
    """An open-loop arrival over `--max-in-flight`: `dropped: 20 jobs in flight (cap 20)`."""


# --- shape ---------------------------------------------------------------------------------------

class ClosedLoopStages:
    """Closed-loop and burst stages: `(users, spawn_rate, [user class of --target])` per stage;
    each new stage is announced to all users (and workers) before spawning for it. A burst stage
    ends when the job ledger holds all of its jobs (or at `--max-stage-seconds`)."""

    def __init__(self, runner, options) -> None:
        self.runner, self.options = runner, options
        self.plan = plan_from_options(options)
        self.index = 0
        self.stage_started = 0.0
        log.info("[loadlab] %s, target %s, cases %s", self.plan.describe(), options.target, options.cases)
        self._announce(0)

    def tick(self):
        stage = self.plan.stages[self.index]
        nxt = self.plan.step(self.index, time.monotonic() - self.stage_started, LEDGER.ended(stage.name))
        if nxt is None:
            log.info("[loadlab] stage %s done (%d jobs); all stages done", stage.name, LEDGER.ended(stage.name))
            return None
        if nxt != self.index:
            log.info("[loadlab] stage %s done (%d jobs)", stage.name, LEDGER.ended(stage.name))
            self._announce(nxt)
            stage = self.plan.stages[nxt]
        return stage.users, SPAWN_RATE, [USER_CLASSES[self.options.target]]

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


class OpenLoopArrivals:
    """Open loop: plans the whole arrival sequence once, hands each load-generator process its
    share (arrival i to process i mod n), then runs one `ArrivalDispatcher` per process until the
    last stage is over and every arrival has a record (or `--stop-timeout` later)."""

    def __init__(self, runner, options) -> None:
        self.runner = runner
        self.plan = open_plan_from_options(options)
        arrivals = self.plan.arrivals()
        workers = self._workers()
        self.dispatchers = len(workers)
        self.origin = time.time() + LEAD_S
        LEDGER.open_loop = OpenLoopRun(plan=self.plan, origin=self.origin, arrivals=arrivals)
        for stage in self.plan.stages:
            LEDGER.started_at[stage.name] = self.origin + stage.start_s
            LEDGER.jobs.setdefault(stage.name, [])
        for w, (worker, share) in enumerate(zip(workers, split(arrivals, len(workers)), strict=True)):
            data = {"origin": self.origin, "arrivals": [a.to_wire() for a in share],
                    "max_in_flight": cap_share(options.max_in_flight, len(workers), w)}
            if worker is None:
                INBOX.load(data)
            else:
                runner.send_message(ARRIVALS_MSG, data, client_id=worker)
        self.total = len(arrivals)
        self.current = -1
        log.info("[loadlab] %s arrivals, %d stages of %g s (%s), %d arrivals over %d process(es), target %s",
                 self.plan.arrival, len(self.plan.stages), self.plan.stage_seconds,
                 ", ".join(s.name for s in self.plan.stages), self.total, len(workers), options.target)

    def _workers(self) -> list[str | None]:
        if not isinstance(self.runner, MasterRunner):
            return [None]
        workers = sorted(c.id for c in self.runner.clients.values() if c.state != STATE_MISSING)
        if not workers:
            raise RuntimeError("open loop on a master needs connected workers")
        return workers

    def tick(self):
        elapsed = time.time() - self.origin
        stages = self.plan.stages
        now_index = next((i for i, s in enumerate(stages) if elapsed < s.end_s), len(stages)) if elapsed >= 0 else -1
        while self.current < now_index:   # log the stages passed since the last tick
            if self.current >= 0:
                done = stages[self.current]
                log.info("[loadlab] stage %s done (%d jobs recorded so far)", done.name, LEDGER.ended(done.name))
            self.current += 1
            if self.current < len(stages):
                stage = stages[self.current]
                arrivals = sum(1 for a in LEDGER.open_loop.arrivals if a.stage == stage.name)
                log.info("[loadlab] stage %s started (%g arrivals/s, %d arrivals, %g s)", stage.name,
                         stage.rate_per_s, arrivals, stage.duration_s)
        if now_index == len(stages):
            if LEDGER.recorded() >= self.total:
                log.info("[loadlab] all %d arrivals recorded; all stages done", self.total)
                return None
            if elapsed >= self.plan.end_s + self.runner.environment.stop_timeout:
                log.warning("[loadlab] %d of %d arrivals without a record %g s after the last stage; all stages done",
                            self.total - LEDGER.recorded(), self.total, self.runner.environment.stop_timeout)
                return None
        return self.dispatchers, SPAWN_RATE, [ArrivalDispatcher]


class StageShape(LoadTestShape):
    """Runs the stages of the command line (or of the web UI's form: the plan is read from the
    options at the first tick of each run) and returns None after the last one, which stops the test."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: ClosedLoopStages | OpenLoopArrivals | None = None

    def tick(self):
        if self.stages is None:
            options = self.runner.environment.parsed_options
            LEDGER.reset()
            try:
                self.stages = (ClosedLoopStages if options.arrival == "closed" else OpenLoopArrivals)(self.runner, options)
            except ValueError as err:   # what only the run shows: e.g. a cap below the workers now connected
                log.error("[loadlab] %s; run not started", err)
                return None
        return self.stages.tick()


# --- report --------------------------------------------------------------------------------------

@events.test_stopping.add_listener
def _on_test_stopping(environment, **_kw):
    # a stage ends when the stop is asked for, not when the jobs then in flight have finished
    if not isinstance(environment.runner, WorkerRunner) and LEDGER.stopping_at is None:
        LEDGER.stopping_at = time.time()


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw):
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
