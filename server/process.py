"""`ServerProcess`: `python -m server` as a subprocess on a free 127.0.0.1 port, for benchmarks, the demo
and tests that want a real uvicorn.

    with ServerProcess(queue_limit=4, enable_fault_injection=True) as server:
        requests.get(server.url + "/readyz")

Options are the CLI's (`max_batch=3` → `--max-batch 3`, `True` → a bare flag, `None`/`False` → left
out); positional strings are passed as CLI arguments as they are. `queue_size` is accepted as an alias of
`queue_limit`. Without `data_dir`, a temporary directory is used and removed by `stop()`/`kill()`
unless `keep_data=True`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ALIASES = {"queue_size": "queue_limit"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_flags(options: dict) -> list[str]:
    """Keyword options as command-line flags: max_batch=1 -> --max-batch 1, flag=True -> --flag."""
    flags: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)]
    return flags


class ServerProcess:
    def __init__(self, *args: str, data_dir: str | Path | None = None, env: dict[str, str] | None = None,
                 port: int | None = None, ready_timeout_s: float = 600.0, keep_data: bool = False,
                 api_key: str | None = None, **options):
        self.extra_args = [str(a) for a in args]
        self._own_data = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="decomposer-server-"))
        self.keep_data = keep_data
        self.env = dict(env or {})
        self.port = port
        self.api_key = api_key
        self.ready_timeout_s = ready_timeout_s
        self.options = {ALIASES.get(k, k): v for k, v in options.items()}
        self.proc: subprocess.Popen | None = None
        self.ready_info: dict | None = None
        self.started_at: float | None = None  # epoch s at spawn
        self.time_to_ready_s: float | None = None
        self.log_path = self.data_dir / "server.log"

    # --- life cycle
    def command(self) -> list[str]:
        return [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir), *cli_flags(self.options), *self.extra_args]

    def start(self, wait_ready: bool = True) -> ServerProcess:
        """Spawn the server; with `wait_ready`, return once /readyz answers 200 (else once it is listening)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("server already running")
        self.port = self.port or free_port()
        env = {**os.environ, **self.env}
        env.setdefault("HF_HUB_OFFLINE", "1")
        if self.api_key:
            env["DECOMPOSER_API_KEY"] = self.api_key  # never on the command line, where `ps` shows it
        with contextlib.suppress(OSError):  # an unusable data directory is the server's to report
            self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.started_at = time.time()
        t0 = time.monotonic()
        # Own process group: a test's kill cannot reach pytest, and pytest's Ctrl-C does not double-hit us.
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(Path(__file__).resolve().parent.parent), start_new_session=True)
        log.close()
        if wait_ready:
            self.ready_info = self.wait_ready(self.ready_timeout_s)
            self.time_to_ready_s = time.monotonic() - t0
        else:
            self.wait_listening(self.ready_timeout_s)
        return self

    def wait_listening(self, timeout_s: float) -> None:
        """Until the port accepts connections (the server answers, ready or not)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"server not listening within {timeout_s:g} s; log:\n{self.log_tail()}")

    def wait_ready(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before ready; log:\n{self.log_tail()}")
            try:
                req = urllib.request.Request(self.url + "/readyz", headers=headers)
                with urllib.request.urlopen(req, timeout=2) as resp:
                    return json.loads(resp.read())
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"server not ready within {timeout_s:g} s; log:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (graceful: finish or re-queue the running job), wait, then SIGKILL."""
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        elif self.proc is not None:
            rc = self.proc.returncode
        self._cleanup()
        return rc

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (the data directory is kept for a restart)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _cleanup(self) -> None:
        if self._own_data and not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
