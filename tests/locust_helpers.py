"""Running Locust in subprocesses for the tests (never in the test process: see conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from server.process import free_port

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "decompose.py")
FAKE = ["--client-factory", "tests.fakeclient:make_client"]


def run_distributed(master_args: list[str], tmp_path: Path, env: dict[str, str], workers: int = 2,
                    timeout: float = 90) -> None:
    """A headless master with `master_args` and `workers` workers on 127.0.0.1; fails unless the master
    exits 0 within `timeout`; every process is gone afterwards."""
    port = free_port()
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--master", "--master-bind-port", str(port),
         "--expect-workers", str(workers), "--headless", *master_args],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--worker", "--master-host", "127.0.0.1",
         "--master-port", str(port)], cwd=tmp_path, env=env, stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        _, err = master.communicate(timeout=timeout)
        assert master.returncode == 0, err[-3000:]
    finally:
        for p in [master, *procs]:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
