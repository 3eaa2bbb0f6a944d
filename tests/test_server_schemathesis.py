"""Schemathesis against the server's own OpenAPI schema: every check, every phase (examples, coverage,
fuzzing, stateful through the schema's links), with and without hooks: nothing found but what the
schema cannot say (bytes that are not an image). The server is the real app under uvicorn on
127.0.0.1 with an API key; the pipeline is the tests' stand-in model, because fuzzing runs hundreds of
predictions (the real pipeline behind the same routes is covered by test_server_e2e.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from server.settings import Settings
from tests.server_helpers import served_app

pytestmark = pytest.mark.slow
KEY = "schemathesis-key"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("st-data"), api_key=KEY, queue_limit=8, cache_ttl=0)
    with served_app(settings) as (url, _app):
        deadline = time.monotonic() + 30
        while requests.get(url + "/readyz", headers={"X-API-Key": KEY}, timeout=2).status_code != 200:
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.05)
        yield url


def run_schemathesis(url: str, tmp_path: Path, hooks: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SCHEMATHESIS_HOOKS"}
    if hooks:
        env["SCHEMATHESIS_HOOKS"] = hooks
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", url + "/openapi.json",
           "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
           "--header", f"X-API-Key: {KEY}", "--max-examples", "50", "--seed", "1",
           "--request-timeout", "30", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1200)
    out = done.stdout + done.stderr
    print(out[-6000:])
    return out


# What OpenAPI cannot say, listed in the README: that bytes (an upload, a base64 instance) decode as
# an image. Everything else schemathesis finds is a defect of the schema or the server.
INEXPRESSIBLE = ("the uploaded file is not an image Pillow can read",
                 "the image cannot be decoded (truncated or corrupt)")


def assert_only_inexpressible(out: str) -> str:
    """Every failure found is a schema-valid image that is not an image; returns the summary."""
    report = out[out.index("FAILURES"):out.index("SUMMARY")] if "FAILURES" in out else ""
    for case in report.split("Test Case ID:")[1:]:
        checks = set(re.findall(r"^- (ST\d+)", case, flags=re.MULTILINE))
        assert checks == {"ST202"}, case
        assert any(reason in case for reason in INEXPRESSIBLE), case
    summary = out[out.index("SUMMARY"):]
    failures = [line for line in summary.splitlines() if line.strip().startswith("❌ ST")]
    assert all("ST202" in line for line in failures), summary
    return summary


def test_schemathesis_all_checks_all_phases(server_url, tmp_path):
    """With hooks that draw real images for the fuzzing and stateful phases, a job's whole life is
    followed through the links (the coverage phase draws its own boundary strings, images or not)."""
    out = run_schemathesis(server_url, tmp_path, hooks="schemathesis_hooks")
    summary = assert_only_inexpressible(out)
    for phase in ("Examples", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
    covered = int(out.split("API Links:")[1].split("covered")[0])
    assert covered >= 6, out


def test_schemathesis_without_hooks_finds_only_what_the_schema_cannot_say(server_url, tmp_path):
    summary = assert_only_inexpressible(run_schemathesis(server_url, tmp_path, hooks=None))
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert phase in summary, summary
