"""`RayServeProcess`: `python -m server.rayserve` as a subprocess with its own Ray temp directory, for
benchmarks and tests; it waits for the ready line and, on stop, checks that every process of the Ray
cluster it started is gone (killing the leftovers by pid).

    with RayServeProcess(min_replicas=0, max_replicas=2, metrics_interval_s=0.5) as rs:
        requests.get(rs.url + "/readyz")
        rs.ready_info["gcs_address"], rs.ready_info["session_dir"]"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from server.process import cli_flags, free_port
from server.rayserve.__main__ import READY_PREFIX

BIND_FAILED = "Failed to bind to address"      # Serve's proxy, when its HTTP port is taken
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """Serve's proxy could not bind the HTTP port."""


def descendants(pid: int) -> set[int]:
    """Every live process under `pid` (from /proc), so Ray's own processes can be checked and cleaned."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids that still run (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


class RayServeProcess:
    def __init__(self, *args: str, port: int | None = None, ray_temp_dir: str | Path | None = None,
                 env: dict[str, str] | None = None, ready_timeout_s: float = 300.0, keep_temp: bool = False,
                 **options):
        self.extra_args = [str(a) for a in args]
        self.port = port
        # Short: Ray puts Unix sockets under it, and their paths are limited to 107 bytes.
        self._own_temp = ray_temp_dir is None
        self.ray_temp_dir = Path(ray_temp_dir or tempfile.mkdtemp(prefix="rs-"))
        self.keep_temp = keep_temp
        self.env = dict(env or {})
        self.ready_timeout_s = ready_timeout_s
        self.options = options
        self.proc: subprocess.Popen | None = None
        self.ready_info: dict | None = None
        self.started_at: float | None = None
        self.time_to_ready_s: float | None = None
        self.log_path = self.ray_temp_dir / "rayserve.log"
        self.tree: set[int] = set()  # the Ray processes seen under the command, for the leftover check
        self._log_from = 0           # where this start's part of the log begins

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "server.rayserve", "--host", "127.0.0.1", "--port", str(self.port),
                "--ray-temp-dir", str(self.ray_temp_dir), *cli_flags(self.options), *self.extra_args]

    def start(self) -> RayServeProcess:
        """Start and wait for the ready line. A port this class chose is chosen again when Serve's proxy
        could not bind it: Ray's own processes bind ephemeral ports while it starts, and one took the
        port picked free before (seen here once in a few dozen starts)."""
        ours = self.port is None
        attempts = PORT_ATTEMPTS if ours else 1
        for attempt in range(1, attempts + 1):
            self.port = free_port() if ours else self.port
            try:
                return self._start_once()
            except PortTaken:
                if attempt == attempts:
                    raise
                print(f"rayserve: port {self.port} was taken while Ray started; trying another", flush=True)
        raise AssertionError("unreachable")

    def _start_once(self) -> RayServeProcess:
        self.ray_temp_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        env.setdefault("HF_HUB_OFFLINE", "1")
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.started_at = time.time()
        # Own session: Ray's processes stay in our process group, out of pytest's Ctrl-C.
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(Path(__file__).resolve().parents[2]), start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                kind = PortTaken if f"{BIND_FAILED} '127.0.0.1:{self.port}'" in self._log_text() else RuntimeError
                raise kind(f"rayserve exited with {self.proc.returncode}:\n{tail}")
            info = self._ready_line()
            if info:
                self.ready_info = info
                self.time_to_ready_s = time.time() - self.started_at
                self.tree = descendants(self.proc.pid)
                return self
            time.sleep(0.2)
        self.kill()
        raise TimeoutError(f"rayserve not ready within {self.ready_timeout_s:g} s:\n{self.log_tail()}")

    def _log_text(self) -> str:
        """This start's part of the log (a start tried again appends to it)."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_from)
            return f.read().decode(errors="replace")

    def _ready_line(self) -> dict | None:
        for line in self._log_text().splitlines():
            if line.startswith(READY_PREFIX):
                return json.loads(line[len(READY_PREFIX):])
        return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 90.0) -> list[int]:
        """SIGTERM (the command shuts Serve and Ray down), then SIGKILL what is left, by pid. Returns the
        pids that had to be killed (empty when the shutdown was clean)."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.tree |= descendants(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 15
        while alive(self.tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = sorted(alive(self.tree | ({self.proc.pid} if self.proc.poll() is None else set())))
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if self._own_temp and not self.keep_temp:
            shutil.rmtree(self.ray_temp_dir, ignore_errors=True)
        return leftovers

    kill = stop

    def __enter__(self) -> RayServeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
