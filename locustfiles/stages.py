"""The stage plan behind the Locust shape for closed-loop and burst stages, and the names of every
kind of stage (`u=5`, `r=0.5/s`, `t=0-60s`); kept free of any locust import so it can be tested (and
read by `bench`) without gevent's monkey-patching. Open-loop stages are planned in `arrivals.py`.

A plan is a list of stages of N concurrent users, run one after the other, each held either

- for `stage_seconds` (closed loop: every user submits its next job as soon as the last ends, so N
  jobs stay in flight), or
- for `jobs_per_user` jobs per user (a burst: `jobs_per_user=1` is the source article's "N requests
  at once"). A burst stage ends when all N x jobs_per_user jobs have ended (completed, failed or
  rejected), so the next stage starts on an idle server and no stage's queue leaks into the next.

`StagePlan.step(elapsed_s, jobs_ended)` is the whole contract: given the seconds since the current
stage began and how many of its jobs have ended, it says which stage runs now, or that the test is
over. The Locust shape only adds the clock and the job ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_STAGES = (1, 5, 10, 20)
# A burst stage ends when all its jobs ended, or after this long: a job that never ends (a hung
# server) must not hold the test forever. 0 / None = no bound.
DEFAULT_MAX_STAGE_S = 600.0
CLOSED, BURST = "closed", "burst"


def stage_name(users: int) -> str:
    """The tag every job entry of a stage carries: `u=5`."""
    return f"u={users}"


def rate_stage_name(rate_per_s: float) -> str:
    """The tag of an open-loop stage: `r=0.5/s`."""
    return f"r={rate_per_s:g}/s"


def window_stage_name(start_s: float, end_s: float) -> str:
    """The tag of a trace-replay window: `t=0-60s` (seconds of the scaled trace)."""
    return f"t={start_s:g}-{end_s:g}s"


def parse_stages(spec: str | list[int] | tuple[int, ...]) -> list[int]:
    """'1,5,10,20' -> [1, 5, 10, 20]; every stage at least one user."""
    if isinstance(spec, list | tuple):
        values = [int(v) for v in spec]
    else:
        try:
            values = [int(v) for v in str(spec).replace(" ", "").split(",") if v]
        except ValueError:
            raise ValueError(f"--stages must be a comma list of user counts such as 1,5,10,20, not {spec!r}") from None
    if not values or any(v < 1 for v in values):
        raise ValueError(f"--stages needs one or more user counts >= 1, got {spec!r}")
    return values


@dataclass(frozen=True)
class PlannedStage:
    """One stage: `users` concurrent users, held `duration_s` seconds (closed loop) or until each
    user has run `jobs_per_user` jobs (burst)."""

    users: int
    duration_s: float | None = None
    jobs_per_user: int | None = None

    @property
    def name(self) -> str:
        return stage_name(self.users)

    @property
    def mode(self) -> str:
        return BURST if self.jobs_per_user else CLOSED

    @property
    def jobs_expected(self) -> int | None:
        return self.users * self.jobs_per_user if self.jobs_per_user else None


@dataclass
class StagePlan:
    """The stages in order. With `jobs_per_user` set every stage is a burst of that many jobs per
    user; otherwise every stage is held for `stage_seconds`. `max_stage_seconds` bounds a burst
    stage (a hung server must not hang the test); None or 0 means no bound."""

    users: list[int] = field(default_factory=lambda: list(DEFAULT_STAGES))
    stage_seconds: float = 60.0
    jobs_per_user: int | None = None
    max_stage_seconds: float | None = DEFAULT_MAX_STAGE_S

    def __post_init__(self) -> None:
        self.users = parse_stages(self.users)
        if self.jobs_per_user is not None and self.jobs_per_user < 1:
            raise ValueError("--jobs-per-user must be >= 1 (or omitted for closed-loop stages)")
        if self.jobs_per_user is None and not self.stage_seconds > 0:
            raise ValueError("--stage-seconds must be > 0 for closed-loop stages")

    @property
    def mode(self) -> str:
        return BURST if self.jobs_per_user else CLOSED

    @property
    def stages(self) -> list[PlannedStage]:
        if self.jobs_per_user:
            return [PlannedStage(u, jobs_per_user=self.jobs_per_user) for u in self.users]
        return [PlannedStage(u, duration_s=self.stage_seconds) for u in self.users]

    def step(self, index: int, elapsed_s: float, jobs_ended: int) -> int | None:
        """The stage index to run now, given that stage `index` began `elapsed_s` seconds ago and
        `jobs_ended` of its jobs have ended; None when the last stage is over (the test stops)."""
        stages = self.stages
        if index >= len(stages):
            return None
        stage = stages[index]
        if stage.mode == CLOSED:
            done = elapsed_s >= stage.duration_s
        else:
            done = jobs_ended >= stage.jobs_expected or (
                bool(self.max_stage_seconds) and elapsed_s >= self.max_stage_seconds)
        if not done:
            return index
        return index + 1 if index + 1 < len(stages) else None

    def describe(self) -> str:
        how = (f"{self.jobs_per_user} job(s) per user, all at once" if self.jobs_per_user
               else f"{self.stage_seconds:g} s each, closed loop")
        return f"stages {', '.join(stage_name(u) for u in self.users)}: {how}"
