"""Test set-up shared by every test.

Locust is never imported in this process: it monkey-patches the standard library with gevent, which
would turn the server's worker threads into greenlets. Locust runs in subprocesses instead."""

import os
import tempfile
from pathlib import Path

# No hub access at any point; a private model cache unless CI gives one.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DECOMPOSER_CACHE", tempfile.mkdtemp(prefix="loadlab-cache-"))
# Subprocesses (Locust, bench, servers) import this checkout, and `tests.fakeclient`, whatever their cwd.
_ROOT = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny offline pipeline, built into the cache on first use and loaded once per session."""
    from server.model import load_model

    return load_model("tiny")
