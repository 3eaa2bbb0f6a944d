"""`python -m bench.replicas measure`: one measurement of the rayserve set-up on the tiny model, apart
from any load test: Ray init -> ready, the control plane's CPU while idle at zero model replicas (and the
replica sampler's own), and one request at zero replicas (decision time, replica start, first-request
latency). It starts its own `python -m server.rayserve`."""

from __future__ import annotations

import base64
import io
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from PIL import Image

from bench.replicas.recorder import ReplicaRecorder
from server.rayserve.process import RayServeProcess, descendants


def _cpu_ticks(pids: set[int]) -> dict[int, tuple[str, int]]:
    """utime + stime (clock ticks) and a name per live pid, from /proc."""
    out = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[pid] = (os.path.basename(cmd) or stat[stat.index("(") + 1:stat.rindex(")")], int(fields[11]) + int(fields[12]))
    return out


def _cpu_shares(pids: set[int], seconds: float) -> dict[int, tuple[str, float]]:
    """Each pid alive throughout: its name and its CPU over the next `seconds`, as a share of one core."""
    hz = os.sysconf("SC_CLK_TCK")
    before, t0 = _cpu_ticks(pids), time.monotonic()
    time.sleep(seconds)
    after, wall = _cpu_ticks(pids), time.monotonic() - t0
    return {pid: (name, (ticks - before[pid][1]) / hz / wall) for pid, (name, ticks) in after.items() if pid in before}


def measure(idle_s: float = 30.0, layers: int = 2, resolution: int = 640) -> dict[str, Any]:
    """One measurement of the rayserve set-up on the tiny model: Ray init -> ready, the control plane's
    CPU while idle at zero model replicas (and the sampler's own), a request at zero replicas (decision
    time, replica start, first-request latency)."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, "PNG")
    body = json.dumps({"instances": [{"image": base64.b64encode(buf.getvalue()).decode(), "layers": layers,
                                      "resolution": resolution}]}).encode()
    with RayServeProcess(min_replicas=0, max_replicas=2, metrics_interval_s=0.5) as rs:
        result: dict[str, Any] = {"ray_init_s": rs.ready_info["ray_init_s"], "init_to_ready_s": rs.ready_info["ready_s"],
                                  "spawn_to_ready_s": rs.time_to_ready_s}
        pids = descendants(rs.proc.pid) | {rs.proc.pid}
        time.sleep(5)  # let start-up work settle
        per = {f"{name}[{pid}]": round(share, 4) for pid, (name, share) in _cpu_shares(pids, idle_s).items()}
        result["idle_cpu_share_of_one_core"] = round(sum(per.values()), 4)
        result["idle_cpu_by_process"] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
        recorder = ReplicaRecorder.from_ready_info(rs.ready_info).start()
        rec_pid = recorder.proc.pid
        time.sleep(3)
        result["sampler_cpu_share_of_one_core"] = round(_cpu_shares({rec_pid}, min(idle_s, 15.0))[rec_pid][1], 4)
        sent = time.time()
        req = urllib.request.Request(rs.url + "/vertex/predict", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            headers = r.headers
            r.read()
        done = time.time()
        timeline = recorder.stop(start=sent - 1, end=done)
        (replica,) = [r for r in timeline.replicas if r.replica_id == headers["X-Replica-Id"]]
        up = timeline.scale_events[0]
        result.update({
            "first_request_e2e_s": round(done - sent, 3), "first_request_queue_s": float(headers["X-Queue-S"]),
            "first_request_model_s": float(headers["X-Model-S"]),
            "zero_to_decision_s": round(up.t - sent, 3), "decision_to_replica_start_s": round(replica.start - up.t, 3),
            "replica_startup_s": round(replica.startup_s, 3), "case": {"layers": layers, "resolution": resolution},
            "load_average": os.getloadavg(),
        })
    result["leftover_pids"] = rs.stop()
    return result
