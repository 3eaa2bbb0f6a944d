"""CPU pinning of the server and the load generator (bench/pinning.py), and the service-time inflation
that `bench concurrency` prints per stage."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench import pinning
from loadlab.schema import Report

ROOT = Path(__file__).resolve().parent.parent
needs_two_cpus = pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                                    reason="pinning needs Linux and at least 2 usable CPUs")


def thread_cpus(pid: int) -> dict[int, set[int]]:
    return {int(t): os.sched_getaffinity(int(t)) for t in os.listdir(f"/proc/{pid}/task")}


@needs_two_cpus
def test_plan_splits_the_cpus_and_sizes_torch_threads():
    usable = sorted(os.sched_getaffinity(0))
    cpus = pinning.plan()
    assert sorted(cpus.load) == usable[:1] and sorted(cpus.server) == usable[1:]
    assert pinning.server_env(cpus)["OMP_NUM_THREADS"] == str(len(usable) - 1)
    assert pinning.plan(enabled=False) is None and pinning.server_env(None) == {}


@needs_two_cpus
def test_a_child_takes_the_plan_its_parent_exported(monkeypatch):
    # the demo pins itself to the load CPUs, so a bench command it starts sees one CPU: it must reuse
    # the parent's split, not conclude there is nothing to pin
    parent = pinning.CpuPlan(server=frozenset({0}), load=frozenset({1}))  # not what it would pick itself
    monkeypatch.setenv(pinning.PLAN_ENV, parent.export())
    assert pinning.plan() == parent
    assert pinning.plan(enabled=False) is None


def test_pin_reaches_every_thread_of_a_running_process():
    code = ("import threading, time\n"
            "for _ in range(3): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
            "print('up', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        assert len(thread_cpus(proc.pid)) == 4
        target = {sorted(os.sched_getaffinity(0))[-1]}
        assert pinning.pin(proc.pid, target) == sorted(target)
        assert all(cpus == target for cpus in thread_cpus(proc.pid).values())
    finally:
        proc.kill()
        proc.wait()


@needs_two_cpus
def test_load_generator_block_pins_this_process_and_restores_it():
    before = os.sched_getaffinity(0)
    cpus = pinning.plan()
    with pinning.load_generator(cpus) as load:
        assert load == sorted(cpus.load) and os.sched_getaffinity(0) == set(cpus.load)
        child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                               capture_output=True, text=True)
        assert child.stdout.strip() == str(sorted(cpus.load))  # Locust started here inherits it
    assert os.sched_getaffinity(0) == before


def test_inflation_is_stage_model_time_over_the_model_time_alone(tmp_path):
    """A `bench single` run at 0.1 s per job is the reference; a burst stage whose model takes 0.2 s
    per job ran 2.0x slower than alone."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    fake = ["--url", "http://fake", "--client-factory", "tests.fakeclient:make_client"]
    single = tmp_path / "single.json"
    run = subprocess.run([sys.executable, "-m", "bench", "single", "--cases", "light", "--runs", "2", "--out",
                          str(single), *fake], cwd=tmp_path, env={**env, "LOADLAB_FAKE_SERVICE_S": "0.1"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "conc.json"
    run = subprocess.run([sys.executable, "-m", "bench", "concurrency", "--stages", "3", "--cases", "light",
                          "--single-report", str(single), "--out", str(out), "--locust-dir", str(tmp_path / "l"),
                          *fake], cwd=tmp_path, env={**env, "LOADLAB_FAKE_SERVICE_S": "0.2"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = Report.load(out)
    assert report.extra["service_inflation"]["stages"]["u=3"] == pytest.approx(2.0)
    row = next(r.split() for r in run.stdout.splitlines() if r.startswith("u=3"))
    assert row[row.index("|") - 1] == "2.00"  # the infl column


@pytest.mark.slow
@needs_two_cpus
def test_started_server_runs_pinned_with_torch_threads_to_match():
    from bench.measure import started_server
    from clients.local import LocalClient
    from loadlab.cases import ALL_CASES, test_image

    cpus = pinning.plan()
    before = os.sched_getaffinity(0)
    image = str(test_image(ALL_CASES["light"], tempfile.mkdtemp()))
    with started_server({"cache_ttl": 0}, cpus=cpus) as target:
        pid = target.server.pid
        assert target.server_cpus == sorted(cpus.server) and target.load_cpus == sorted(cpus.load)
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"OMP_NUM_THREADS={len(cpus.server)}".encode() in environ
        with LocalClient(target.url) as client:
            client.decompose_image(image, 2, 640)  # torch starts its thread pool lazily: it must inherit
        time.sleep(0.2)
        assert all(c == set(cpus.server) for c in thread_cpus(pid).values()), thread_cpus(pid)
        assert os.sched_getaffinity(0) == set(cpus.load)
    assert os.sched_getaffinity(0) == before


def _sleeper(env: dict) -> subprocess.Popen:
    """A process with `env`, once its environ reads back (CI once read it empty, and counted the
    default of one thread per core for the sized one)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    for _ in range(1000):
        if Path(f"/proc/{proc.pid}/environ").read_bytes():
            return proc
        time.sleep(0.01)
    raise AssertionError(f"the sleeper's environ stayed empty (exit code {proc.poll()})")


@needs_two_cpus
def test_a_server_with_more_torch_threads_than_its_cpus_is_refused_not_measured_slow(tmp_path):
    """A server started by hand runs one torch thread per core; pinned onto fewer CPUs it would be slow
    (9.92 s instead of 3.48 s for a light job, silently): bench refuses, in one line, before any job."""
    base = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    by_hand, sized = _sleeper(base), _sleeper({**base, "OMP_NUM_THREADS": "1"})
    try:
        with pytest.raises(pinning.OversubscribedServer, match="OMP_NUM_THREADS=1 taskset"):
            pinning.check_fits(by_hand.pid, {1})
        assert pinning.check_fits(sized.pid, {1}) == 1
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", ""))
                                                           if p)}
        env.pop(pinning.PLAN_ENV, None)
        run = subprocess.run([sys.executable, "-m", "bench", "single", "--cases", "light", "--runs", "1",
                              "--url", "http://127.0.0.1:9", "--server-pid", str(by_hand.pid),
                              "--out", str(tmp_path / "s.json")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert run.stderr.strip().splitlines()[-1].startswith("bench single: error: the server"), run.stderr
        assert not (tmp_path / "s.json").exists()
    finally:
        for p in (by_hand, sized):
            p.kill()
            p.wait()
