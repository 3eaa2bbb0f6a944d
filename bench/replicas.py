"""The replica timeline of a Ray Serve run, measured: a recorder that samples the Serve controller (target
and replicas by state, 4 times a second by default) from its own process, plus the controller log's
millisecond-stamped scaling decisions; from both, each replica's up interval, the replica-seconds (the
bill) and the scale events, and which jobs met a cold start.

    rec = ReplicaRecorder.from_url("http://127.0.0.1:8000").start()
    ... run the load ...
    timeline = rec.stop(start=run_start, end=run_end)     # ReplicaTimeline; .to_dict() is plain JSON
    mark_cold_starts(report_jobs, timeline)

The sampler is a subprocess (`python -m bench.replicas sample`) that joins the cluster as a Ray driver:
Ray must not be imported into a load generator (Locust's gevent patches), and a subprocess is stopped
cleanly by a signal. It reads the Serve details (`ServeControllerClient.get_serve_details`, Ray 2.60):
`target_num_replicas` and each replica's id, state, pid and `start_time_s`. The controller log
(`<session_dir>/logs/serve/controller_<pid>.log`, on the head node) gives the decision times; without it
(a remote cluster) scale events come from the sampled target, to the sampling interval."""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# Ray 2.60's ReplicaState values, in the three groups the timeline counts.
STATE_GROUP = {"STARTING": "starting", "RECOVERING": "starting", "RUNNING": "running", "UPDATING": "running",
               "PENDING_MIGRATION": "running", "STOPPING": "stopping"}
DEFAULT_INTERVAL_S = 0.25


@dataclass
class Sample:
    t: float                      # epoch s (midpoint of the controller call)
    target: int | None            # the autoscaler's target replica count
    starting: int
    running: int
    stopping: int
    replicas: list[dict] = field(default_factory=list)  # {"id", "state", "pid", "start_time_s"}


@dataclass
class ReplicaInterval:
    replica_id: str
    pid: int | None
    start: float                  # the controller started the replica actor (billing starts)
    running_at: float | None      # constructor done, health check passed: can serve
    stopping_at: float | None
    end: float | None             # stopped; None = still up when the recording ended

    @property
    def startup_s(self) -> float | None:
        return None if self.running_at is None else self.running_at - self.start


@dataclass
class ScaleEvent:
    t: float
    from_replicas: int
    to_replicas: int
    direction: str                # "up" | "down"
    source: str                   # "controller_log" (ms stamps) | "samples" (to the sampling interval)
    ongoing_requests: float | None = None  # the autoscaler's aggregate behind the decision (log only)


@dataclass
class ReplicaTimeline:
    app: str
    deployment: str
    start: float                  # the window everything is clipped to (epoch s)
    end: float
    interval_s: float
    samples: list[Sample]
    replicas: list[ReplicaInterval]
    scale_events: list[ScaleEvent]
    replica_seconds: float        # sum of up intervals clipped to [start, end]
    max_replicas: int             # most replicas up at once (any state)
    log_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for r, d in zip(self.replicas, out["replicas"], strict=True):
            d["startup_s"] = r.startup_s
        out["scale_ups"] = sum(e.direction == "up" for e in self.scale_events)
        out["scale_downs"] = sum(e.direction == "down" for e in self.scale_events)
        return out

    def running_at(self, t: float) -> int:
        """Replicas RUNNING at time t (from the intervals, so log-precise when the log was read)."""
        return sum(1 for r in self.replicas if r.running_at is not None and r.running_at <= t
                   and (r.stopping_at is None or t < r.stopping_at) and (r.end is None or t < r.end))

    def replica(self, replica_id: str) -> ReplicaInterval | None:
        return next((r for r in self.replicas if r.replica_id == replica_id), None)


# --- the controller log ---------------------------------------------------------------------------

_LINE = re.compile(r"^(?:INFO|WARNING|ERROR|DEBUG) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) controller \d+ -- (.*)$")
_DEP = r"Deployment\(name='(?P<dep>[^']+)', app='(?P<app>[^']*)'\)"
_REP = r"Replica\(id='(?P<id>[^']+)', deployment='(?P<dep>[^']+)', app='(?P<app>[^']*)'\)"
_MESSAGES = [
    ("scale", re.compile(rf"(?P<dir>Upscaling|Downscaling) {_DEP} from (?P<frm>\d+) to (?P<to>\d+) replicas\."
                         r"(?: Current ongoing requests: (?P<req>[\d.]+))?")),
    ("starting", re.compile(rf"Starting {_REP}")),
    ("running", re.compile(rf"{_REP} started successfully .*\(PID: (?P<pid>\d+)\)")),
    ("stopping", re.compile(rf"Stopping {_REP}")),
    ("stopped", re.compile(rf"{_REP} is stopped\.")),
]


def parse_controller_log(text: str, deployment: str, app: str) -> list[dict]:
    """The controller's scaling decisions and replica transitions for one deployment, in log order:
    {"t", "kind": scale|starting|running|stopping|stopped, ...}. Ray's log formatter writes local time
    with milliseconds, so the times are converted with the local time zone."""
    events = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        stamp, message = m.groups()
        for kind, pattern in _MESSAGES:
            hit = pattern.match(message)
            if not hit or hit["dep"] != deployment or hit["app"] != app:
                continue
            t = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            event: dict[str, Any] = {"t": t, "kind": kind}
            if kind == "scale":
                event.update({"from": int(hit["frm"]), "to": int(hit["to"]),
                              "direction": "up" if hit["dir"] == "Upscaling" else "down",
                              "ongoing_requests": float(hit["req"]) if hit["req"] else None})
            else:
                event["replica_id"] = hit["id"]
                if kind == "running":
                    event["pid"] = int(hit["pid"])
            events.append(event)
            break
    return events


def controller_log_text(session_dir: str | None) -> tuple[str, str | None]:
    """The controller log(s) of a session (all of them: a restarted controller writes a new file)."""
    if not session_dir:
        return "", None
    paths = sorted(glob.glob(os.path.join(session_dir, "logs", "serve", "controller_*.log")))
    if not paths:
        return "", None
    return "".join(Path(p).read_text(errors="replace") for p in paths), ",".join(paths)


# --- from samples and log to the timeline ---------------------------------------------------------

def sample_from_details(details: dict, app: str, deployment: str, t: float) -> Sample:
    """One Sample from `get_serve_details()` (the ServeInstanceDetails dict of Ray 2.60)."""
    dep = (details.get("applications", {}).get(app, {}).get("deployments", {}) or {}).get(deployment)
    if not dep:
        return Sample(t=t, target=None, starting=0, running=0, stopping=0)
    replicas = [{"id": r["replica_id"], "state": str(r["state"]).split(".")[-1], "pid": r.get("pid"),
                 "start_time_s": r.get("start_time_s")} for r in dep.get("replicas", [])]
    counts = {"starting": 0, "running": 0, "stopping": 0}
    for r in replicas:
        group = STATE_GROUP.get(r["state"])
        if group:
            counts[group] += 1
    return Sample(t=t, target=dep.get("target_num_replicas"), replicas=replicas, **counts)


def build_timeline(samples: list[Sample], log_events: list[dict], *, app: str, deployment: str,
                   start: float | None = None, end: float | None = None,
                   interval_s: float = DEFAULT_INTERVAL_S, log_path: str | None = None) -> ReplicaTimeline:
    """Replica intervals, replica-seconds and scale events from the samples and the log events. A time
    the log has wins over the sampled one (milliseconds vs the sampling interval)."""
    samples = sorted(samples, key=lambda s: s.t)
    start = start if start is not None else (samples[0].t if samples else 0.0)
    end = end if end is not None else (samples[-1].t if samples else start)
    reps: dict[str, dict[str, Any]] = {}
    for s in samples:
        for r in s.replicas:
            rec = reps.setdefault(r["id"], {"pid": r.get("pid"), "start": r.get("start_time_s"), "running_at": None,
                                            "stopping_at": None, "end": None, "last_seen": s.t})
            rec["pid"] = rec["pid"] or r.get("pid")
            rec["start"] = rec["start"] or r.get("start_time_s") or s.t
            rec["last_seen"] = s.t
            group = STATE_GROUP.get(r["state"])
            if group == "running" and rec["running_at"] is None:
                rec["running_at"] = s.t
            if group == "stopping" and rec["stopping_at"] is None:
                rec["stopping_at"] = s.t
    # A replica gone from the samples ended at the first sample without it.
    for rec in reps.values():
        later = [s.t for s in samples if s.t > rec["last_seen"]]
        if later:
            rec["end"] = later[0]
    for e in log_events:
        if e["kind"] == "scale":
            continue
        rec = reps.setdefault(e["replica_id"], {"pid": None, "start": None, "running_at": None,
                                                "stopping_at": None, "end": None, "last_seen": e["t"]})
        key = {"starting": "start", "running": "running_at", "stopping": "stopping_at", "stopped": "end"}[e["kind"]]
        rec[key] = e["t"]
        if e["kind"] == "running":
            rec["pid"] = rec["pid"] or e.get("pid")
    replicas = [ReplicaInterval(replica_id=rid, pid=r["pid"], start=r["start"] if r["start"] is not None else start,
                                running_at=r["running_at"], stopping_at=r["stopping_at"], end=r["end"])
                for rid, r in reps.items()]
    replicas.sort(key=lambda r: r.start)

    events = [ScaleEvent(t=e["t"], from_replicas=e["from"], to_replicas=e["to"], direction=e["direction"],
                         source="controller_log", ongoing_requests=e["ongoing_requests"])
              for e in log_events if e["kind"] == "scale"]
    if not events:  # no log: target changes between samples, stamped at the sample that saw them
        previous = None
        for s in samples:
            if s.target is None:
                continue
            if previous is not None and s.target != previous:
                events.append(ScaleEvent(t=s.t, from_replicas=previous, to_replicas=s.target,
                                         direction="up" if s.target > previous else "down", source="samples"))
            previous = s.target
    events = [e for e in events if start <= e.t <= end]

    seconds = sum(max(0.0, min(r.end if r.end is not None else end, end) - max(r.start, start)) for r in replicas)
    bounds = sorted({r.start for r in replicas})
    most = max((sum(1 for r in replicas if r.start <= b and (r.end is None or b < r.end)) for b in bounds),
               default=0)
    return ReplicaTimeline(app=app, deployment=deployment, start=start, end=end, interval_s=interval_s,
                           samples=samples, replicas=replicas, scale_events=events, replica_seconds=seconds,
                           max_replicas=most, log_path=log_path)


def _field(job: Any, name: str) -> Any:
    return job.get(name) if isinstance(job, dict) else getattr(job, name, None)


def mark_cold_starts(jobs: list[Any], timeline: ReplicaTimeline) -> list[bool]:
    """Which jobs met a cold start: the job arrived (its `scheduled` time, else `submitted`) before the
    replica that served it could serve (`extra["replica_id"]`, from the X-Replica-Id header); for a job
    without a replica id (failed, or no header), when no replica was RUNNING at its arrival. Sets
    `cold_start` on each job and `extra["cold_wait_s"]` (time from arrival until its replica ran)."""
    marks = []
    for job in jobs:
        arrival = _field(job, "scheduled")
        arrival = arrival if arrival is not None else _field(job, "submitted")
        extra = _field(job, "extra")
        extra = extra if isinstance(extra, dict) else None
        rid = (extra or {}).get("replica_id")
        replica = timeline.replica(rid) if rid else None
        if replica is not None and replica.running_at is not None:
            wait = max(0.0, replica.running_at - arrival)
            cold = wait > 0
        else:
            wait = None
            cold = timeline.running_at(arrival) == 0
        if isinstance(job, dict):
            job["cold_start"] = cold
        else:
            job.cold_start = cold
        if extra is not None and wait is not None:
            extra["cold_wait_s"] = wait
        marks.append(cold)
    return marks


# --- the recorder ---------------------------------------------------------------------------------

def _ray_env(auth_token_path: str | None, gcs_address: str) -> dict[str, str]:
    """What a driver joining the rayserve cluster needs in its environment (never on its command line)."""
    env = dict(os.environ)
    if auth_token_path:
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN_PATH"] = auth_token_path
    if gcs_address.startswith(("127.0.0.1:", "localhost:")):
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # as the loopback cluster was started
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


class ReplicaRecorder:
    """Runs the sampler subprocess; `stop()` returns the `ReplicaTimeline`."""

    def __init__(self, gcs_address: str, *, session_dir: str | None = None, auth_token_path: str | None = None,
                 app: str = "decomposer", deployment: str = "LayeredModel",
                 interval_s: float = DEFAULT_INTERVAL_S, samples_path: str | Path | None = None):
        self.gcs_address, self.session_dir, self.auth_token_path = gcs_address, session_dir, auth_token_path
        self.app, self.deployment, self.interval_s = app, deployment, interval_s
        self._own_files = samples_path is None  # temporary: removed once the timeline is built
        self.samples_path = Path(samples_path or tempfile.mkstemp(prefix="replicas-", suffix=".jsonl")[1])
        self.log_path = self.samples_path.with_suffix(".log")
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None

    @classmethod
    def from_ready_info(cls, info: dict, **kwargs) -> ReplicaRecorder:
        """From the rayserve ready line or the `ray` part of its /readyz answer."""
        info = info.get("ray", info)
        return cls(info["gcs_address"], session_dir=info.get("session_dir"),
                   auth_token_path=info.get("auth_token_path"), **kwargs)

    @classmethod
    def from_url(cls, url: str, **kwargs) -> ReplicaRecorder:
        with urllib.request.urlopen(url.rstrip("/") + "/readyz", timeout=30) as r:
            ready = json.loads(r.read())
        kwargs.setdefault("app", ready.get("app", "decomposer"))
        kwargs.setdefault("deployment", ready.get("deployment", "LayeredModel"))
        return cls.from_ready_info(ready["ray"], **kwargs)

    def start(self, timeout_s: float = 60.0) -> ReplicaRecorder:
        """Start sampling; returns once the first sample is written."""
        self.samples_path.write_text("")
        cmd = [sys.executable, "-m", "bench.replicas", "sample", "--gcs-address", self.gcs_address,
               "--app", self.app, "--deployment", self.deployment, "--interval-s", str(self.interval_s),
               "--out", str(self.samples_path)]
        self.started_at = time.time()
        with open(self.log_path, "wb") as log:  # a file, not a pipe: Ray's driver output would fill a pipe
            self.proc = subprocess.Popen(cmd, env=_ray_env(self.auth_token_path, self.gcs_address),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         cwd=str(Path(__file__).resolve().parents[1]), start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.samples_path.stat().st_size > 0:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica sampler exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        self._terminate()
        raise TimeoutError(f"replica sampler wrote no sample within {timeout_s:g} s")

    def _terminate(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def samples(self) -> list[Sample]:
        out = []
        for line in self.samples_path.read_text().splitlines():
            if line.strip():
                out.append(Sample(**json.loads(line)))
        return out

    def stop(self, start: float | None = None, end: float | None = None) -> ReplicaTimeline:
        """Stop sampling and build the timeline over [start, end] (default: the recording)."""
        self._terminate()
        samples = self.samples()
        if self._own_files:
            self.samples_path.unlink(missing_ok=True)
            self.log_path.unlink(missing_ok=True)
        text, log_path = controller_log_text(self.session_dir)
        events = parse_controller_log(text, self.deployment, self.app)
        return build_timeline(samples, events, app=self.app, deployment=self.deployment, start=start, end=end,
                              interval_s=self.interval_s, log_path=log_path)

    def __enter__(self) -> ReplicaRecorder:
        return self.start()

    def __exit__(self, *exc) -> None:
        self._terminate()
        if self._own_files:
            self.samples_path.unlink(missing_ok=True)
            self.log_path.unlink(missing_ok=True)


def _sample_loop(args: argparse.Namespace) -> int:
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    import ray
    from ray.serve.context import _get_global_client

    ray.init(address=args.gcs_address, namespace="serve", log_to_driver=False, logging_level="ERROR",
             configure_logging=False)
    # After ray.init, which installs its own SIGTERM handler.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    client = _get_global_client()
    with open(args.out, "a", buffering=1) as out:
        next_t = time.monotonic()
        while not stop["now"]:
            t0 = time.time()
            try:
                details = client.get_serve_details()
            except Exception as err:  # noqa: BLE001 - the cluster going away ends the recording, not a crash
                print(f"sampler: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                break
            t = (t0 + time.time()) / 2
            out.write(json.dumps(asdict(sample_from_details(details, args.app, args.deployment, t))) + "\n")
            next_t += args.interval_s
            time.sleep(max(0.0, next_t - time.monotonic()))
    ray.shutdown()
    return 0


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


def measure(idle_s: float = 30.0, layers: int = 2, resolution: int = 640) -> dict[str, Any]:
    """One measurement of the rayserve set-up on the tiny model: Ray init -> ready, the control plane's
    CPU while idle at zero model replicas (and the sampler's own), a request at zero replicas (decision
    time, replica start, first-request latency)."""
    import base64
    import io

    from PIL import Image

    from server.rayserve.process import RayServeProcess, descendants

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, "PNG")
    body = json.dumps({"instances": [{"image": base64.b64encode(buf.getvalue()).decode(), "layers": layers,
                                      "resolution": resolution}]}).encode()
    hz = os.sysconf("SC_CLK_TCK")
    with RayServeProcess(min_replicas=0, max_replicas=2, metrics_interval_s=0.5) as rs:
        result: dict[str, Any] = {"ray_init_s": rs.ready_info["ray_init_s"], "init_to_ready_s": rs.ready_info["ready_s"],
                                  "spawn_to_ready_s": rs.time_to_ready_s}
        pids = descendants(rs.proc.pid) | {rs.proc.pid}
        time.sleep(5)  # let start-up work settle
        before, t0 = _cpu_ticks(pids), time.monotonic()
        time.sleep(idle_s)
        after, wall = _cpu_ticks(pids), time.monotonic() - t0
        per = {}
        for pid, (name, ticks) in after.items():
            if pid in before:
                per[f"{name}[{pid}]"] = round((ticks - before[pid][1]) / hz / wall, 4)
        result["idle_cpu_share_of_one_core"] = round(sum(per.values()), 4)
        result["idle_cpu_by_process"] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
        recorder = ReplicaRecorder.from_ready_info(rs.ready_info).start()
        rec_pid = recorder.proc.pid
        time.sleep(3)
        r0, t0 = _cpu_ticks({rec_pid}), time.monotonic()
        time.sleep(min(idle_s, 15.0))
        r1, wall = _cpu_ticks({rec_pid}), time.monotonic() - t0
        result["sampler_cpu_share_of_one_core"] = round((r1[rec_pid][1] - r0[rec_pid][1]) / hz / wall, 4)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="(internal) sample the Serve controller into a JSON-lines file until SIGTERM")
    s.add_argument("--gcs-address", required=True)
    s.add_argument("--app", default="decomposer")
    s.add_argument("--deployment", default="LayeredModel")
    s.add_argument("--interval-s", type=float, default=DEFAULT_INTERVAL_S)
    s.add_argument("--out", required=True)
    r = sub.add_parser("record", help="record the timeline of a running `python -m server.rayserve` until "
                                      "Ctrl-C or --duration-s, and write it as JSON")
    r.add_argument("--url", default="http://127.0.0.1:8000")
    r.add_argument("--duration-s", type=float, default=None)
    r.add_argument("--interval-s", type=float, default=DEFAULT_INTERVAL_S)
    r.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("measure", help="start rayserve on the tiny model and measure init -> ready, idle CPU, "
                                       "a request at zero replicas; prints JSON")
    m.add_argument("--idle-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.command == "sample":
        return _sample_loop(args)
    if args.command == "measure":
        print(json.dumps(measure(args.idle_s), indent=1))
        return 0
    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    recorder = ReplicaRecorder.from_url(args.url, interval_s=args.interval_s).start()
    try:
        deadline = time.monotonic() + (args.duration_s or float("inf"))
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    timeline = recorder.stop()
    args.out.write_text(json.dumps(timeline.to_dict(), indent=1))
    print(f"{len(timeline.samples)} samples, {len(timeline.replicas)} replicas, "
          f"{timeline.replica_seconds:.1f} replica-s, {len(timeline.scale_events)} scale events -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
