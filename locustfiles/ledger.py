"""What one Locust process knows about a run: the stage its closed-loop users are in
(`StageBoard`), the open-loop arrivals it must dispatch (`ArrivalInbox`) and, on the process that
writes the report (the master or the single local process), every job record per stage and the
open-loop plan (`JobLedger`), and the names of the messages between processes that fill them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from loadlab.schema import JobRecord
from locustfiles.arrivals import Arrival, OpenLoopPlan

# master -> workers: the stage now running (StageBoard), a worker's share of the arrivals
# (ArrivalInbox); worker -> master: one finished job for the master's JobLedger
STAGE_MSG, ARRIVALS_MSG, JOB_MSG = "loadlab_stage", "loadlab_arrivals", "loadlab_job"


class StageBoard:
    """The stage the users of this process are in: set by the shape (local runner) or by the
    master's `loadlab_stage` message (worker). `seq` increases with every stage started."""

    def __init__(self) -> None:
        self.seq = -1
        self.name: str | None = None
        self.jobs_per_user: int | None = None

    def set(self, data: dict[str, Any]) -> None:
        self.seq, self.name, self.jobs_per_user = data["seq"], data["name"], data.get("jobs_per_user")


class ArrivalInbox:
    """This process's share of an open-loop arrival sequence, in time order, with the epoch time
    of t_s = 0 (`origin`, the master's clock) and this process's part of `--max-in-flight`.
    `in_flight` counts the jobs this process has running."""

    def __init__(self) -> None:
        self.origin = 0.0
        self.pending: deque[Arrival] = deque()
        self.max_in_flight: int | None = None
        self.in_flight = 0

    def load(self, data: dict[str, Any]) -> None:
        """Take a `loadlab_arrivals` message: {"origin", "arrivals": [[index, t_s, case, stage], ...],
        "max_in_flight"}; replaces what a previous run left."""
        self.origin = float(data["origin"])
        self.pending = deque(sorted((Arrival.from_wire(a) for a in data["arrivals"]), key=lambda a: a.t_s))
        self.max_in_flight = data.get("max_in_flight")

    def scheduled(self, arrival: Arrival) -> float:
        return self.origin + arrival.t_s

    def next_due(self) -> float | None:
        """Epoch time the next arrival is due, None when none is left."""
        return self.scheduled(self.pending[0]) if self.pending else None

    def pop_due(self, now: float) -> list[Arrival]:
        """The arrivals due by `now`, removed from the inbox."""
        due = []
        while self.pending and self.scheduled(self.pending[0]) <= now:
            due.append(self.pending.popleft())
        return due


@dataclass
class OpenLoopRun:
    """An open-loop run as the master planned it: the plan, the epoch time of t_s = 0 and every arrival."""

    plan: OpenLoopPlan
    origin: float
    arrivals: list[Arrival]


class JobLedger:
    """Every job record of the run, per stage, on the process that writes the report (the master or
    the single local process). The shape reads `ended(stage)` to end a burst stage and `recorded()`
    to know when every open-loop arrival has its record."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[JobRecord]] = {}
        self.started_at: dict[str, float] = {}
        self.open_loop: OpenLoopRun | None = None
        self.stopping_at: float | None = None   # when the stop was asked for (jobs in flight then finish)

    def reset(self) -> None:
        self.jobs.clear()
        self.started_at.clear()
        self.open_loop = None
        self.stopping_at = None

    def add(self, stage: str, record: dict[str, Any]) -> None:
        self.jobs.setdefault(stage, []).append(JobRecord(**record))

    def ended(self, stage: str) -> int:
        return len(self.jobs.get(stage, ()))

    def recorded(self) -> int:
        return sum(len(jobs) for jobs in self.jobs.values())


BOARD = StageBoard()
INBOX = ArrivalInbox()
LEDGER = JobLedger()
