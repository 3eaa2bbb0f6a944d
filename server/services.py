"""Everything a request handler needs, built once per app: settings, storage, scheduler, metrics,
readiness, the intake, and (tests only) fault injection."""

from __future__ import annotations

import logging
import sqlite3
import time

from server.faults import Faults
from server.intake import Intake
from server.metrics import ServerMetrics
from server.scheduler import Scheduler
from server.settings import Settings
from server.store import FileStore, JobStore, StorageError, check_data_dir

log = logging.getLogger("server")


class Services:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.process_started_at = time.time()
        self.ready_at: float | None = None
        self.model_info: dict | None = None
        self.load_error: str | None = None
        # Set when the data directory is unusable at start: the server stays up, not ready, and says why.
        self.storage_error: str | None = None
        self.metrics = ServerMetrics()
        self.store: JobStore | None = None
        self.files: FileStore | None = None
        try:
            check_data_dir(settings.data_dir, settings.min_free_mb)
            self.store = JobStore(settings.data_dir / "jobs.sqlite3")
            self.files = FileStore(settings.data_dir)
            if self.files.removed_at_start:
                log.warning("removed %d temporary file(s) a previous process left half-written",
                            self.files.removed_at_start)
        except (StorageError, OSError, sqlite3.Error) as err:
            self.storage_error = str(err)
            log.error("storage unavailable, the server will not get ready: %s", err)
        self.faults = None
        if settings.enable_fault_injection:
            self.faults = Faults()
        self.scheduler = Scheduler(self.store, self.files, self.metrics, queue_limit=settings.queue_limit,
                                   max_batch=settings.max_batch, cache_ttl=settings.cache_ttl,
                                   workers=settings.workers,
                                   before_batch=self.faults.before_batch if self.faults else None)
        self.intake = Intake(settings, self.store, self.files, self.scheduler)

    @property
    def ready(self) -> bool:
        return self.ready_at is not None and self.storage_error is None

    def not_ready_reason(self) -> str | None:
        """Why the server cannot serve now (None when it can)."""
        if self.storage_error:
            return self.storage_error
        if self.scheduler.draining:
            return "shutting down"
        if self.load_error:
            return f"model load failed: {self.load_error}"
        if self.ready_at is None:
            return "model still loading"
        return None

    def set_models(self, models: list) -> None:
        m = models[0]
        self.model_info = {"source": m.source, "kind": m.kind, "device": m.device, "dtype": m.dtype,
                           "num_inference_steps": m.num_inference_steps, "load_s": round(sum(x.load_s for x in models), 4),
                           "replicas": len(models)}
        self.metrics.model_load.set(self.model_info["load_s"])
        self.scheduler.start(models)
        self.ready_at = time.time()
        self.metrics.ready.set(1)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
