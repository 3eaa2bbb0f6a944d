"""A model replica's start-up in parts, from its own Serve log (`<session_dir>/logs/serve/replica_<app>_
<deployment>_<id>.log`): the line `server.rayserve.app.ModelReplica` writes when its constructor ends,
with the times it stamped. With the controller's start and RUNNING times they split a start-up into
worker (a worker process for the actor, Python and Ray booted, the class unpickled), imports (torch
and the model code), load (the pipeline's own load), set-up, and health (constructor done -> the
controller saw the replica RUNNING)."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

from server.rayserve.options import STARTUP_LOG_PREFIX

PHASE_LABELS = {"worker_s": "worker process (Python, Ray, the class)", "imports_s": "imports (torch, the model code)",
                "load_s": "model load", "setup_s": "set-up after the load",
                "health_s": "constructor done -> RUNNING (health check)"}
PHASES = tuple(PHASE_LABELS)


def phase_values(intervals) -> dict[str, list[float]]:
    """Each part's values (PHASES) over the replicas whose start-up was split; empty lists when none was."""
    parts = [i.startup_phases for i in intervals if i.startup_phases]
    return {name: [p[name] for p in parts] for name in PHASES}


def startup_stamps(session_dir: str | None, app: str, deployment: str) -> dict[str, dict]:
    """Each replica's start-up stamps by replica id (empty without a session dir or such lines)."""
    if not session_dir:
        return {}
    stamps = {}
    prefix = os.path.join(session_dir, "logs", "serve", f"replica_{app}_{deployment}_")
    for path in glob.glob(glob.escape(prefix) + "*.log"):
        replica_id = path[len(prefix):-len(".log")]
        for line in Path(path).read_text(errors="replace").splitlines():
            _, marker, rest = line.partition(STARTUP_LOG_PREFIX)
            if marker:
                try:
                    stamps[replica_id] = json.loads(rest)
                except ValueError:   # a line cut short by a crash: no parts for that replica
                    pass
                break
    return stamps


def startup_phases(stamps: dict, start: float, running_at: float | None) -> dict[str, float] | None:
    """The parts of one start-up (PHASES, s) from its stamps and the controller's start and RUNNING
    times; None without stamps or a RUNNING time. They add up to running_at - start."""
    try:
        init_at, imported_at, load_s, ready_at = (float(stamps[k]) for k in ("init_at", "imported_at", "load_s",
                                                                             "ready_at"))
    except (KeyError, TypeError, ValueError):
        return None
    if running_at is None:
        return None
    return {"worker_s": init_at - start, "imports_s": imported_at - init_at, "load_s": load_s,
            "setup_s": ready_at - imported_at - load_s, "health_s": running_at - ready_at}
