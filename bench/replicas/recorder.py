"""The replica recorder: a subprocess (`python -m bench.replicas sample`, bench/replicas/sampler.py) that
joins the rayserve cluster as a Ray driver and writes a sample of the Serve controller 4 times a second by
default; `stop()` reads the samples back with the controller log and returns the `ReplicaTimeline`.

Ray must not be imported into a load generator (Locust's gevent patches), and a subprocess is stopped
cleanly by a signal: so this module never imports Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.replicas.controller_log import controller_log_text, parse_controller_log
from bench.replicas.replica_log import startup_phases, startup_stamps
from bench.replicas.timeline import build_timeline
from bench.replicas.types import DEFAULT_INTERVAL_S, ReplicaTimeline, Sample

# The project's root: the sampler subprocess runs there, so `-m bench.replicas` resolves to this package.
ROOT = Path(__file__).resolve().parents[2]


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
                                         cwd=str(ROOT), start_new_session=True)
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
        timeline = build_timeline(samples, events, app=self.app, deployment=self.deployment, start=start, end=end,
                                  interval_s=self.interval_s, log_path=log_path)
        stamps = startup_stamps(self.session_dir, self.app, self.deployment)
        for replica in timeline.replicas:
            if replica.replica_id in stamps:
                replica.startup_phases = startup_phases(stamps[replica.replica_id], replica.start, replica.running_at)
        return timeline

    def __enter__(self) -> ReplicaRecorder:
        return self.start()

    def __exit__(self, *exc) -> None:
        self._terminate()
        if self._own_files:
            self.samples_path.unlink(missing_ok=True)
            self.log_path.unlink(missing_ok=True)
