"""A run with the replica recorder on: it starts from the deployment at rest (its minimum replicas,
nothing starting or stopping), can wait until it is back at rest within a bound derived from the
autoscaling settings, and ends with the timeline, the jobs' cold starts marked and the report's
`ReplicaRun`. Shared by the calibration and the scenario run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.autoscale.target import RayTarget
from bench.replicas.recorder import ReplicaRecorder
from bench.replicas.timeline import mark_cold_starts
from bench.replicas.types import ReplicaTimeline, Sample
from loadlab.schema import JobRecord, ReplicaRun

# A request at zero in real use meets a cluster that has been at rest a while: the deployment goes to zero
# only after downscale_to_zero_delay_s idle, the stopped replica's process exits a second or so after the
# controller drops it from its details, and a cluster just started is still settling. A calibration's
# request sent as soon as the details showed zero replicas met the exiting process; with 10 s at rest the
# first cycle's replica, 10 s after the cluster's start, still started in 4.8-6.1 s against 4.3-4.6 s for
# the later cycles and 4.2-4.5 s for the demo scenario's first request at zero, after its 30 s idle (three
# runs, 2026-12-04). So a calibration's request at zero waits as long at rest as that one.
QUIET_S = 30.0


def at_rest(sample: Sample, min_replicas: int) -> bool:
    """The deployment is at its minimum with nothing starting or stopping."""
    return (sample.target == min_replicas and sample.running == min_replicas
            and sample.starting == 0 and sample.stopping == 0)


def wait_at_rest(recorder: ReplicaRecorder, min_replicas: int, after: float, timeout_s: float,
                 quiet_s: float = 0.0) -> float | None:
    """The time of the first sample after `after` with the deployment at rest (at zero replicas when
    min_replicas is 0) through the last `quiet_s` seconds, or None after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        t = quiet_from(recorder.samples(), min_replicas, after, quiet_s)
        if t is not None:
            return t
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def quiet_from(samples: list[Sample], min_replicas: int, after: float, quiet_s: float) -> float | None:
    """The first sample time >= `after` by which the deployment has been at rest in every sample of the
    last `quiet_s` seconds (None: not yet)."""
    rest_from = None
    for sample in samples:
        if not at_rest(sample, min_replicas):
            rest_from = None
            continue
        rest_from = sample.t if rest_from is None else rest_from
        if sample.t >= after and sample.t - rest_from >= quiet_s:
            return sample.t
    return None


def rest_timeout_s(settings: dict[str, Any]) -> float:
    """A bound on the way back to the minimum: the look-back window, every downscale step with its delay
    and a graceful stop, and a minute of margin."""
    steps = max(1, int(settings.get("max_replicas") or 1))
    return (60.0 + float(settings.get("look_back_period_s") or 30.0)
            + steps * (float(settings.get("downscale_delay_s") or 0.0)
                       + float(settings.get("graceful_shutdown_timeout_s") or 20.0))
            + float(settings.get("downscale_to_zero_delay_s") or 0.0))


@dataclass
class Recording:
    recorder: ReplicaRecorder
    min_replicas: int
    timeout_s: float
    at_rest_from: float = 0.0    # the first sample at rest, where the recording could start

    def back_at_rest(self, after: float) -> float | None:
        """The first time after `after` the deployment is at rest, or None after the bound."""
        return wait_at_rest(self.recorder, self.min_replicas, after, self.timeout_s)

    def quiet(self, after: float, quiet_s: float = QUIET_S) -> float | None:
        """Wait until the deployment has been at rest for `quiet_s` (see QUIET_S); the time, or None after
        the bound."""
        return wait_at_rest(self.recorder, self.min_replicas, after, self.timeout_s + quiet_s, quiet_s)

    def stop(self, jobs: list[JobRecord], start: float, end: float | None) -> tuple[ReplicaTimeline, ReplicaRun]:
        """The timeline over [start, end] (end None: not back at rest, so now), the jobs' cold starts marked
        from it, and the report's ReplicaRun."""
        timeline = self.recorder.stop(start=start, end=end if end is not None else time.time())
        mark_cold_starts(jobs, timeline)
        return timeline, timeline.to_run()


@contextlib.contextmanager
def recording(target: RayTarget) -> Iterator[Recording]:
    """The recorder on `target`, entered once the deployment is at rest; on an error the recorder is
    stopped and its files removed (on success the caller's `stop()` does it)."""
    timeout = rest_timeout_s(target.settings)
    recorder = ReplicaRecorder.from_url(target.url).start()
    try:
        rec = Recording(recorder, target.min_replicas, timeout)
        start = rec.back_at_rest(0.0)
        if start is None:
            raise RuntimeError(f"the deployment was not at rest ({rec.min_replicas} replicas) within {timeout:.0f} s")
        rec.at_rest_from = start
        yield rec
    except BaseException:
        recorder.__exit__(None, None, None)
        raise
