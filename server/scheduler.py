"""The job scheduler: a FIFO of queued job ids, one worker thread per model replica (normally one per
device), micro-batching, the content cache, and the wake-ups that end long-polls.

The device never sees more than one pipeline call at a time per replica: that is what removed the
article's out-of-memory failures at 20 simultaneous jobs. Overload is refused at the door with 429."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from PIL import Image

from server.metrics import ServerMetrics
from server.store import FileStore, JobStore

log = logging.getLogger("server.scheduler")


class QueueFull(Exception):
    def __init__(self, retry_after_s: int, depth: int):
        super().__init__(f"queue full ({depth} jobs waiting)")
        self.retry_after_s, self.depth = retry_after_s, depth


class Draining(Exception):
    pass


class Scheduler:
    def __init__(self, store: JobStore, files: FileStore, metrics: ServerMetrics, *, queue_limit: int,
                 max_batch: int, cache_ttl: float, workers: int = 1,
                 before_batch: Callable[[], None] | None = None):
        self.store, self.files, self.metrics = store, files, metrics
        self.queue_limit, self.max_batch, self.cache_ttl, self.n_workers = queue_limit, max_batch, cache_ttl, workers
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._keys: dict[str, tuple[str, int, int]] = {}
        self._running: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.draining = False
        # Long-poll waiters: job id → asyncio events, set from worker threads via the loop.
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._drain_waiters: set[asyncio.Event] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._service_s: deque[float] = deque(maxlen=50)
        self.before_batch = before_batch  # called before each pipeline call (fault injection in tests)
        self.models: list = []

    # --- start-up / shutdown -----------------------------------------------------------------------

    def recover(self) -> int:
        """Re-queue jobs a killed process left running, then load the queue in submission order."""
        requeued = self.store.requeue_running()
        with self._cond:
            for job in self.store.queued_in_order():
                self._queue.append(job["job_id"])
                self._keys[job["job_id"]] = (job["file_id"], job["num_layers"], job["resolution"])
            self.metrics.queue_depth.set(len(self._queue))
        return requeued

    def start(self, models: list) -> None:
        self.models = list(models)
        for i, model in enumerate(self.models):
            t = threading.Thread(target=self._work, args=(model,), name=f"decomposer-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def begin_drain(self) -> None:
        """Stop taking jobs; wake every long-poll so open connections let the server exit."""
        self.draining = True
        with self._cond:
            self._cond.notify_all()
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._set_all_drain)
            except RuntimeError:
                pass

    def _set_all_drain(self) -> None:
        for ev in list(self._drain_waiters):
            ev.set()

    def stop(self, grace_s: float) -> None:
        """Let the running batch finish for up to `grace_s`; a batch still running after that stays
        `running` in the store and is re-queued at the next start-up (so it is never lost)."""
        self.begin_drain()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + grace_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # --- submissions -------------------------------------------------------------------------------

    def retry_after_s(self, depth: int | None = None) -> int:
        depth = len(self._queue) if depth is None else depth
        mean = (sum(self._service_s) / len(self._service_s)) if self._service_s else 5.0
        return max(1, math.ceil(depth * mean / max(1, len(self.models) or self.n_workers)))

    def submit_all(self, keys: list[tuple[str, int, int]], source: str = "api") -> list[dict]:
        """Admit every (file_id, num_layers, resolution) or none: QueueFull when the jobs that need the
        model do not all fit in the queue, so a multi-instance request never leaves some of its jobs
        running for nobody. Cache hits are answered at once and take no queue slot."""
        if self.draining:
            raise Draining("server is shutting down and takes no new jobs")
        cached = []
        for file_id, num_layers, resolution in keys:
            hit = self.store.find_cached(file_id, num_layers, resolution, self.cache_ttl)
            usable = hit is not None and self.files.layer_paths(hit["result_job_id"] or hit["job_id"])
            cached.append(hit if usable else None)
        needed = sum(hit is None for hit in cached)
        jobs = []
        with self._cond:
            if needed and len(self._queue) + needed > self.queue_limit:
                self.metrics.rejected.labels("queue_full").inc()
                raise QueueFull(self.retry_after_s(), len(self._queue))
            for (file_id, num_layers, resolution), hit in zip(keys, cached, strict=True):
                if hit is not None:
                    jobs.append(self.store.add_job(file_id, num_layers, resolution, source=source, cached_from=hit))
                    self.metrics.cache_hits.inc()
                    self.metrics.jobs_finished.labels("completed").inc()
                    continue
                job = self.store.add_job(file_id, num_layers, resolution, source=source)
                self._queue.append(job["job_id"])
                self._keys[job["job_id"]] = (file_id, num_layers, resolution)
                jobs.append(job)
            self.metrics.queue_depth.set(len(self._queue))
            self._cond.notify(needed)
        return jobs

    def queue_position(self, job_id: str) -> int | None:
        """Jobs ahead of this one (0 = next to run); None when it is not queued."""
        with self._cond:
            try:
                return self._queue.index(job_id)
            except ValueError:
                return None

    def depth(self) -> int:
        return len(self._queue)

    # --- long-poll ---------------------------------------------------------------------------------

    async def wait_finished(self, job_id: str, timeout_s: float) -> None:
        """Return when the job ends (or the server drains, or the timeout passes). The worker sets the
        event through the loop, so the wake-up costs one loop iteration, not a polling interval."""
        ev = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(ev)
        self._drain_waiters.add(ev)
        try:
            job = self.store.get(job_id)  # checked after registering, so an end in between is not missed
            if job is None or job["status"] in ("completed", "failed") or self.draining:
                return
            try:
                await asyncio.wait_for(ev.wait(), timeout_s)
            except TimeoutError:
                pass
        finally:
            self._drain_waiters.discard(ev)
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(ev)
                if not waiters:
                    self._waiters.pop(job_id, None)

    def _notify(self, job_ids: list[str]) -> None:
        if self.loop is None:
            return

        def wake():
            for jid in job_ids:
                for ev in list(self._waiters.get(jid, ())):
                    ev.set()
        try:
            self.loop.call_soon_threadsafe(wake)
        except RuntimeError:  # loop closed during shutdown
            pass

    # --- the worker --------------------------------------------------------------------------------

    def _take_batch(self) -> list[str] | None:
        """Head of the queue plus later jobs with the same (layers, resolution), up to max_batch."""
        with self._cond:
            # Once draining, no new batch starts: queued jobs stay queued in the store for the next start.
            while not self._queue and not self._stopping and not self.draining:
                self._cond.wait()
            if self._stopping or self.draining:
                return None
            head = self._queue.popleft()
            batch = [head]
            _, layers, res = self._keys[head]
            if self.max_batch > 1:
                for jid in list(self._queue):
                    if len(batch) >= self.max_batch:
                        break
                    if self._keys[jid][1:] == (layers, res):
                        self._queue.remove(jid)
                        batch.append(jid)
            self._running.update(batch)
            self.metrics.queue_depth.set(len(self._queue))
            return batch

    def _work(self, model) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                self._run_batch(model, batch)
            except Exception:  # the worker must survive anything
                log.exception("worker error on batch %s", batch)
            finally:
                with self._cond:
                    self._running.difference_update(batch)
                    for jid in batch:
                        self._keys.pop(jid, None)

    def _run_batch(self, model, batch: list[str]) -> None:
        started = time.time()
        self.store.mark_running(batch, started, len(batch))
        jobs = [self.store.get(j) for j in batch]
        for job in jobs:
            self.metrics.queue_wait.observe(max(0.0, started - job["submitted_at"]))
        self.metrics.batch_size.observe(len(batch))
        layers_n, res = jobs[0]["num_layers"], jobs[0]["resolution"]
        t0 = time.perf_counter()
        try:
            images = []
            for job in jobs:
                with Image.open(self.files.upload_path(job["file_id"])) as im:
                    im.load()
                    images.append(im.copy())
            if self.before_batch is not None:
                self.before_batch()
            outputs = model.decompose_batch(images, layers_n, res, [0] * len(images))
            inference_s = time.perf_counter() - t0
            for job, layers in zip(jobs, outputs, strict=True):
                self.files.put_layers(job["job_id"], layers)
        except Exception as err:  # a pipeline exception fails these jobs; the worker goes on
            inference_s = time.perf_counter() - t0
            log.warning("batch %s failed: %s", batch, err)
            now = time.time()
            for jid in batch:
                self.store.finish(jid, "failed", now, inference_s, f"{type(err).__name__}: {err}")
                self.metrics.jobs_finished.labels("failed").inc()
            self._notify(batch)
            return
        self.metrics.inference.observe(inference_s)
        self._service_s.append(inference_s)  # per batch: what one queue slot costs the worker
        now = time.time()
        for jid in batch:
            self.store.finish(jid, "completed", now, inference_s)
            self.metrics.jobs_finished.labels("completed").inc()
        self._notify(batch)
