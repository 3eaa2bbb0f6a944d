"""The Locust users of `locustfiles/decompose.py`: `JobUser` (what they share: the clients of a
target and the recording of a finished job as a Locust entry plus a `loadlab_job` message), the
closed-loop `DecomposeUser` of each `--target`, the open-loop `ArrivalDispatcher`, and the
exceptions a failed job shows as in Locust. They are imported into the locustfile, where Locust
looks for them."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from itertools import count
from urllib.parse import urlsplit

import gevent
from gevent.pool import Group
from locust import User, constant, task

from clients.factory import check_target
from loadlab.cases import ALL_CASES, parse_cases
from loadlab.schema import COMPLETED, DROPPED, JobRecord
from locustfiles.arrivals import Arrival
from locustfiles.jobs import ClientPool, failed_record, image_for, run_one
from locustfiles.ledger import BOARD, INBOX, JOB_MSG

log = logging.getLogger("loadlab")

REQUEST_TYPE, DROPPED_TYPE = "job", "dropped"
IDLE_POLL_S = 0.2             # how often an idle user (burst done, no arrival left) looks again

_ID_RE = re.compile(r"(?<=/)[0-9a-fA-F-]{8,}(?=/|$)")  # job and file ids in a path
_CASE_COUNTER = count()


class JobUser(User):
    """What every user of the locustfile shares: clients of `target` built on first need (raw HTTP calls
    of a requests-based client shown as their own entries) and the recording of a finished job —
    a Locust `job` entry, and a `loadlab_job` message to the process that writes the report."""

    abstract = True
    target = "local"
    # --client-factory of this process's own command line, set once at init (`use_client_factory`)
    client_factory = ""

    def on_start(self) -> None:
        try:
            check_target(self.target)
        except ValueError as err:
            # make_client refuses it as well, so each job fails with the reason and no stage waits
            # for a user that died in on_start
            log.error("[loadlab] %s: every job of this user fails", err)
        self.clients = ClientPool(self.target, self.host, self.client_factory, on_build=self._watch_http)

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


def use_client_factory(name: str) -> None:
    """Every user of this process builds its clients with `name` (checked by the caller)."""
    JobUser.client_factory = name


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
