"""Schemathesis against the server's own OpenAPI schema: every check, every phase (examples, coverage,
fuzzing, stateful through the schema's links), 0 failures. The server is the real app under uvicorn on
127.0.0.1 with an API key; the pipeline is the tests' stand-in model, because fuzzing runs hundreds of
predictions (the real pipeline behind the same routes is covered by test_server_e2e.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import uvicorn

from server.app import create_app
from server.process import free_port
from server.settings import Settings
from tests.server_helpers import FakeModel

pytestmark = pytest.mark.slow
KEY = "schemathesis-key"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("st-data"), api_key=KEY, queue_limit=8, cache_ttl=0)
    app = create_app(settings, model_loader=lambda _s: [FakeModel()])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/readyz", headers={"X-API-Key": KEY}, timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "server not ready"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(30)


def test_schemathesis_all_checks_all_phases(server_url, tmp_path):
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", server_url + "/openapi.json",
           "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
           "--header", f"X-API-Key: {KEY}", "--max-examples", "50", "--seed", "1",
           "--request-timeout", "30", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1200)
    out = done.stdout + done.stderr
    print(out[-6000:])
    assert done.returncode == 0, out[-20000:]
    summary = out[out.index("SUMMARY"):]
    assert "No issues found" in summary and "Failures:" not in summary, summary
    # every phase ran (none skipped whole), and the stateful phase followed the links through a job's life
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
    covered = int(out.split("API Links:")[1].split("covered")[0])
    assert covered >= 6, out
