"""`FallbackClient`: the article's announced next step (Vertex → ... → local GPU), with a circuit breaker
per target so that a dead primary costs one failed call per cool-down, not one per request.

Each call tries the clients in order. A target failure (`TargetUnavailableError`, `TargetTimeoutError`,
`RejectedError`) moves on to the next client and counts against that client's breaker; anything else
(a 4xx `ClientError`, a `JobFailedError`: the request or the job is at fault, not the target) is raised
at once. The result records `served_by` and, in `attempts`, every client tried or skipped and why.

Breaker: closed → open after `failure_threshold` consecutive target failures; open → skipped until
`cooldown_s` has passed, then half-open: one trial call; success closes it, failure re-opens it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from clients.base import (
    DecomposeClient,
    DecomposeResult,
    RejectedError,
    TargetTimeoutError,
    TargetUnavailableError,
)

FALLBACK_ON = (TargetUnavailableError, TargetTimeoutError, RejectedError)
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker of one target. `clock` is injectable for tests."""

    def __init__(self, failure_threshold: int = 3, cooldown_s: float = 30.0, clock=time.monotonic):
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.state = CLOSED
        self.opened_at = 0.0
        self._trial_in_flight = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May a call go to this target now? (Takes the half-open trial slot when it does.)"""
        with self._lock:
            if self.state == CLOSED:
                return True
            if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown_s:
                self.state = HALF_OPEN
                self._trial_in_flight = False
            if self.state == HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.failures, self.state, self._trial_in_flight = 0, CLOSED, False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
                self.state, self.opened_at, self._trial_in_flight = OPEN, self.clock(), False


class FallbackClient:
    """Try `clients` in order, with one `CircuitBreaker(failure_threshold, cooldown_s)` per client."""

    name = "fallback"

    def __init__(self, clients: Sequence[DecomposeClient], *, failure_threshold: int = 3,
                 cooldown_s: float = 30.0, fallback_on: tuple[type[BaseException], ...] = FALLBACK_ON,
                 clock=time.monotonic, name: str | None = None):
        if not clients:
            raise ValueError("FallbackClient needs at least one client")
        self.clients = list(clients)
        self.breakers = [CircuitBreaker(failure_threshold, cooldown_s, clock) for _ in self.clients]
        self.fallback_on = fallback_on
        if name:
            self.name = name

    def breaker(self, client_name: str) -> CircuitBreaker:
        for client, breaker in zip(self.clients, self.breakers, strict=True):
            if client.name == client_name:
                return breaker
        raise KeyError(client_name)

    def decompose_image(self, image_path: str, num_layers: int, resolution: int) -> DecomposeResult:
        t0 = time.perf_counter()
        attempts: list[dict] = []
        last_error: BaseException | None = None
        for client, breaker in zip(self.clients, self.breakers, strict=True):
            if not breaker.allow():
                attempts.append({"client": client.name, "ok": False, "skipped": "circuit open",
                                 "breaker": breaker.state})
                continue
            t_try = time.perf_counter()
            try:
                result = client.decompose_image(image_path, num_layers, resolution)
            except self.fallback_on as err:
                breaker.record_failure()
                attempts.append({"client": client.name, "ok": False, "error": f"{type(err).__name__}: {err}",
                                 "elapsed_s": time.perf_counter() - t_try, "breaker": breaker.state})
                last_error = err
                continue
            except BaseException:
                breaker.record_success()  # the target answered; the request itself was at fault
                raise
            breaker.record_success()
            attempts.append({"client": client.name, "ok": True, "elapsed_s": time.perf_counter() - t_try,
                             "retries": result.retries})
            result.attempts = attempts
            result.served_by = client.name
            if result.timings.get("total_s") is not None:
                result.timings = {**result.timings, "total_s": time.perf_counter() - t0}
            return result
        tried = ", ".join(f"{a['client']}: {a.get('error') or a.get('skipped')}" for a in attempts)
        if last_error is None:
            raise TargetUnavailableError(f"{self.name}: every target's circuit is open ({tried})")
        err_type = type(last_error) if isinstance(last_error, FALLBACK_ON) else TargetUnavailableError
        error = err_type(f"{self.name}: all targets failed ({tried})", status=getattr(last_error, "status", None))
        error.attempts = attempts  # type: ignore[attr-defined]
        raise error from last_error

    def close(self) -> None:
        for client in self.clients:
            client.close()
