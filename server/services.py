"""Everything a request handler needs, built once per app: settings, store, scheduler, metrics,
readiness, fault injection."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from server.metrics import ServerMetrics
from server.scheduler import Scheduler
from server.settings import Settings
from server.store import FileStore, JobStore


@dataclass
class Faults:
    """Test-only: statuses the next Vertex predictions answer with, in order, and added latency."""

    statuses: deque = field(default_factory=deque)
    delay_s: float = 0.0


class Services:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.process_started_at = time.time()
        self.ready_at: float | None = None
        self.model_info: dict | None = None
        self.load_error: str | None = None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = ServerMetrics()
        self.store = JobStore(settings.data_dir / "jobs.sqlite3")
        self.files = FileStore(settings.data_dir)
        self.scheduler = Scheduler(self.store, self.files, self.metrics, queue_limit=settings.queue_limit,
                                   max_batch=settings.max_batch, cache_ttl=settings.cache_ttl,
                                   workers=settings.workers)
        self.faults = Faults()

    @property
    def ready(self) -> bool:
        return self.ready_at is not None

    def set_models(self, models: list) -> None:
        m = models[0]
        self.model_info = {"source": m.source, "kind": m.kind, "device": m.device, "dtype": m.dtype,
                           "num_inference_steps": m.num_inference_steps, "load_s": round(sum(x.load_s for x in models), 4),
                           "replicas": len(models)}
        self.metrics.model_load.set(self.model_info["load_s"])
        self.scheduler.start(models)
        self.ready_at = time.time()
        self.metrics.ready.set(1)
