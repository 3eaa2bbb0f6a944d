"""What the recorder saw beyond the report's `ReplicaRun` (pids, stop requests, where each decision time
came from). The run itself is `ReplicaTimeline.to_run()` and its figures `ReplicaRun.figures(jobs)`
(loadlab/schema.py): computed once, read by bench, the simulator and the report alike."""

from __future__ import annotations

from typing import Any

from bench.replicas.types import ReplicaTimeline


def recorded(timeline: ReplicaTimeline) -> dict[str, Any]:
    """What the recorder saw beyond the ReplicaRun: pids, stop requests, where each decision time came
    from and the load behind it."""
    return {"interval_s": timeline.interval_s, "log_path": timeline.log_path, "samples": len(timeline.samples),
            "replicas": [{"replica_id": r.replica_id, "pid": r.pid, "startup_s": r.startup_s,
                          "stopping_at": r.stopping_at} for r in timeline.replicas],
            "scale_events": [{"t": e.t, "direction": e.direction, "source": e.source,
                              "ongoing_requests": e.ongoing_requests} for e in timeline.scale_events]}
