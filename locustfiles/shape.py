"""The load shape of `locustfiles/decompose.py`: `StageShape`, the one `LoadTestShape` Locust runs,
and the two plans it drives — `ClosedLoopStages` (users per stage, announced to the workers) and
`OpenLoopArrivals` (the arrival sequence, shared out to the load-generator processes)."""

from __future__ import annotations

import logging
import time

from locust import LoadTestShape
from locust.runners import STATE_MISSING, MasterRunner

from locustfiles.arrivals import cap_share, split
from locustfiles.ledger import ARRIVALS_MSG, INBOX, LEDGER, STAGE_MSG, OpenLoopRun
from locustfiles.report import open_plan_from_options, plan_from_options
from locustfiles.users import USER_CLASSES, ArrivalDispatcher

log = logging.getLogger("loadlab")

SPAWN_RATE = 100.0            # users per second when a stage starts: a burst starts all at once
LEAD_S = 1.0                  # open loop: t_s = 0 is this far after planning, so that every dispatcher
                              # is spawned and holds its arrivals before the first is due


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
