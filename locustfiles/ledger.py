"""What one Locust process knows about a run: the stage its users are in (`StageBoard`) and, on the
process that writes the report (the master or the single local process), every job record per
stage (`JobLedger`)."""

from __future__ import annotations

from typing import Any

from loadlab.schema import JobRecord


class StageBoard:
    """The stage the users of this process are in: set by the shape (local runner) or by the
    master's `loadlab_stage` message (worker). `seq` increases with every stage started."""

    def __init__(self) -> None:
        self.seq = -1
        self.name: str | None = None
        self.jobs_per_user: int | None = None

    def set(self, data: dict[str, Any]) -> None:
        self.seq, self.name, self.jobs_per_user = data["seq"], data["name"], data.get("jobs_per_user")


class JobLedger:
    """Every job record of the run, per stage, on the process that writes the report (the master or
    the single local process). The shape reads `ended(stage)` to end a burst stage."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[JobRecord]] = {}
        self.started_at: dict[str, float] = {}

    def reset(self) -> None:
        self.jobs.clear()
        self.started_at.clear()

    def add(self, stage: str, record: dict[str, Any]) -> None:
        self.jobs.setdefault(stage, []).append(JobRecord(**record))

    def ended(self, stage: str) -> int:
        return len(self.jobs.get(stage, ()))


BOARD = StageBoard()
LEDGER = JobLedger()
