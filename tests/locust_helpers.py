"""Running Locust in subprocesses for the tests (never in the test process: see conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from server.process import free_port

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "decompose.py")
FAKE = ["--client-factory", "tests.fakeclient:make_client"]


def run_distributed(master_args: list[str], tmp_path: Path, env: dict[str, str], workers: int = 2,
                    timeout: float = 90) -> None:
    """A headless master with `master_args` and `workers` workers on 127.0.0.1; fails unless the master
    exits 0 within `timeout`; every process is gone afterwards. A worker takes `--client-factory`
    from its own command line only (never from the master's options), so the workers get the
    master's."""
    port = free_port()
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--master", "--master-bind-port", str(port),
         "--expect-workers", str(workers), "--headless", *master_args],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--worker", "--master-host", "127.0.0.1",
         "--master-port", str(port), *_factory(master_args)], cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
        for _ in range(workers)]
    try:
        _, err = master.communicate(timeout=timeout)
        assert master.returncode == 0, err[-3000:]
    finally:
        for p in [master, *procs]:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def _factory(args: list[str]) -> list[str]:
    """The `--client-factory X` of `args`, if any."""
    i = args.index("--client-factory") if "--client-factory" in args else -1
    return args[i:i + 2] if i >= 0 else []


@contextmanager
def web_ui(cwd: Path, log: Path, *args: str, env: dict[str, str] | None = None, up_s: float = 30) -> Iterator[str]:
    """A Locust web UI (not headless) of the locustfile with `args`, started in `cwd` on a free
    127.0.0.1 port, its stderr in `log`; yields its base URL once it answers. Killed at the end."""
    port = free_port()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-port", str(port), *args],
                                cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc, log, up_s)
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _wait_up(base: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the web UI exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(base + "/", timeout=2).close()
            return
        except urllib.error.HTTPError:   # answering (a login redirect, a refusal): it is up
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the web UI did not answer within {timeout} s: {log.read_text()[-3000:]}")
