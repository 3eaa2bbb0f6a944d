"""CPU pinning for measurements on a small machine: the server's model worker on some cores, the load
generator on the others, so that they do not compete for the same cores (shared/DESIGN.md, rules of
measurement). Linux only (`os.sched_setaffinity`); elsewhere, or with fewer than 2 usable CPUs,
nothing is pinned and the report says so (cpus None)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# "server CPUs/load CPUs", e.g. "1/0": the plan a parent hands to the commands it starts
PLAN_ENV = "LOADLAB_CPU_PLAN"


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the server and the load generator get."""

    server: frozenset[int]
    load: frozenset[int]

    def export(self) -> str:
        """The plan as PLAN_ENV holds it, for child processes."""
        return f"{','.join(map(str, sorted(self.server)))}/{','.join(map(str, sorted(self.load)))}"


def plan(enabled: bool = True) -> CpuPlan | None:
    """The load generator on the first usable CPU, the server on the rest; None when pinning is off,
    unsupported, or there are fewer than 2 CPUs to split."""
    if not enabled or not hasattr(os, "sched_setaffinity"):
        return None
    inherited = os.environ.get(PLAN_ENV)
    if inherited:  # a parent (the demo) already split the CPUs and pinned us to its load side
        server, _, load = inherited.partition("/")
        return CpuPlan(server=frozenset(map(int, server.split(","))), load=frozenset(map(int, load.split(","))))
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return CpuPlan(server=frozenset(cpus[1:]), load=frozenset(cpus[:1]))


def server_env(cpus: CpuPlan | None) -> dict[str, str]:
    """Environment for a server process: torch's (OpenMP's, MKL's) thread pools sized to its CPUs,
    else it would run as many threads as the machine has cores on fewer cores."""
    if cpus is None:
        return {}
    n = str(len(cpus.server))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def pin(pid: int, cpus: frozenset[int] | set[int]) -> list[int]:
    """Pin every thread of process `pid` (threads started later inherit it from their creator);
    returns the CPUs read back from the process."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(tid, cpus)
    return sorted(os.sched_getaffinity(pid))


def torch_threads(pid: int) -> int | None:
    """The thread pool torch (OpenMP) runs in process `pid`: its OMP_NUM_THREADS, else torch's default,
    one thread per core of the machine; None when the process cannot be read (an empty environ: a
    process exiting, or one not yet through its exec, whose variables are not known)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    environ = raw.split(b"\0")
    value = next((kv[len(b"OMP_NUM_THREADS="):] for kv in environ if kv.startswith(b"OMP_NUM_THREADS=")), b"")
    return int(value) if value.isdigit() and int(value) > 0 else os.cpu_count()


class OversubscribedServer(ValueError):
    """A server whose thread pool is larger than the CPUs it would be pinned to: every job would run
    slower than alone (measured: 9.92 s instead of 3.48 s for the same light job), silently."""


def check_fits(pid: int, cpus: frozenset[int] | set[int]) -> int | None:
    """The server's torch thread count, or OversubscribedServer when it exceeds `cpus`."""
    threads = torch_threads(pid)
    if threads is not None and threads > len(cpus):
        listed = ",".join(map(str, sorted(cpus)))
        raise OversubscribedServer(
            f"the server (pid {pid}) runs {threads} torch threads and would be pinned to {len(cpus)} CPU(s) "
            f"({listed}): its jobs would be slowed by the oversubscription. Start it as "
            f"`OMP_NUM_THREADS={len(cpus)} taskset -c {listed} python -m server ...`, or pass --no-pin")
    return threads


@contextlib.contextmanager
def load_generator(cpus: CpuPlan | None) -> Iterator[list[int] | None]:
    """This process (and every process it starts, e.g. Locust) on the load generator's CPUs for the
    block; the previous affinity afterwards. Yields the CPUs, or None when not pinned."""
    if cpus is None:
        yield None
        return
    before = os.sched_getaffinity(0)
    try:
        yield pin(os.getpid(), cpus.load)
    finally:
        pin(os.getpid(), before)


def service_inflation(stage_service_s: float | None, single_service_s: float | None) -> float | None:
    """How much slower the model ran in a stage than alone: the stage's mean model time ÷ the mean
    model time of a job run on its own (1.0 = no contention; what pinning is meant to keep near 1)."""
    if not stage_service_s or not single_service_s:
        return None
    return stage_service_s / single_service_s
