"""Prometheus metrics, on a registry per app (so tests can build several apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TIME_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600, 1800)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("decomposer_queue_depth", "jobs waiting for a worker", registry=r)
        self.jobs = Gauge("decomposer_jobs", "jobs in the store by status", ["status"], registry=r)
        self.jobs_finished = Counter("decomposer_jobs_finished", "jobs finished by this process", ["status"], registry=r)
        self.rejected = Counter("decomposer_rejected", "submissions refused", ["reason"], registry=r)
        self.queue_wait = Histogram("decomposer_queue_wait_seconds", "submitted → started", buckets=TIME_BUCKETS,
                                    registry=r)
        self.inference = Histogram("decomposer_inference_seconds", "pipeline call per batch", buckets=TIME_BUCKETS,
                                   registry=r)
        self.batch_size = Histogram("decomposer_batch_size", "jobs per pipeline call",
                                    buckets=(1, 2, 3, 4, 6, 8, 16), registry=r)
        self.cache_hits = Counter("decomposer_cache_hits", "jobs answered from the content cache", registry=r)
        self.model_load = Gauge("decomposer_model_load_seconds", "time to load the pipeline", registry=r)
        self.ready = Gauge("decomposer_ready", "1 once the model is loaded", registry=r)
