"""Where a sweep's or a search's runs go: local processes (the default) or Ray tasks on an existing cluster
(`--ray-address auto|HOST:PORT`). `pool(processes, ray_address)` is a context manager giving an object
with the two calls the sweep and the search use, `submit(fn, arg)` (a concurrent.futures Future) and
`map(fn, args)`, or None for one process in this one."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext


class RayPool:
    """Runs each call as a Ray task (one CPU each) on the cluster `ray.init(address)` connects to; the
    driver disconnects on leaving (an existing cluster keeps running)."""

    def __init__(self, address: str):
        import ray

        self.ray = ray
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
        self._remote = {}

    def _task(self, fn):
        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(num_cpus=1)(fn)
        return self._remote[fn]

    def submit(self, fn, arg):
        return self._task(fn).remote(arg).future()

    def map(self, fn, args):
        return self.ray.get([self._task(fn).remote(a) for a in args])

    def close(self) -> None:
        self.ray.shutdown()


@contextmanager
def pool(processes: int, ray_address: str | None = None):
    if ray_address:
        p = RayPool(ray_address)
        try:
            yield p
        finally:
            p.close()
        return
    with (ProcessPoolExecutor(processes) if processes > 1 else nullcontext()) as p:
        yield p
