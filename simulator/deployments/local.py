"""The local GPU server: k GPUs (workers) pulling from one FIFO queue, optional queue bound (arrivals
finding `queue_limit` jobs waiting are rejected, like the server's 429), optional micro-batching
(a worker takes up to `max_batch` waiting jobs of the same case; a batch of b takes
S x (1 + batch_marginal x (b - 1)), S one sampled single-job time), fixed monthly cost per GPU.

The queue is a SimPy `Store`; a worker collects same-case followers for its batch from the Store's
public `items` list (the jobs nobody has taken yet)."""

from __future__ import annotations

import simpy

from loadlab.schema import REJECTED
from simulator.deployments.base import Cost


class LocalGPU:
    def __init__(self, env: simpy.Environment, ledger, sample, gpus: int = 1, queue_limit: int | None = None,
                 max_batch: int = 1, batch_marginal: float = 1.0, fixed_per_month: float = 80.0,
                 name: str = "local"):
        if gpus < 1:
            raise ValueError("local deployment needs at least 1 GPU")
        self.env, self.ledger, self.sample, self.name = env, ledger, sample, name
        self.gpus, self.queue_limit, self.max_batch, self.batch_marginal = gpus, queue_limit, max_batch, batch_marginal
        self.fixed_per_month = fixed_per_month
        self.queue = simpy.Store(env)
        self.busy_s = 0.0
        self.serving = 0         # workers in service (on one host: what a job's service time contends with)
        self.in_system = 0       # jobs queued or in service
        for i in range(gpus):
            env.process(gpu_worker(env, self, i))

    def submit(self, job) -> None:
        if self.queue_limit is not None and len(self.queue.items) >= self.queue_limit:
            self.ledger.fail(job, self.env.now, "queue full (429)", status=REJECTED)
            return
        self.in_system += 1
        self.queue.put(job)

    def cost(self, horizon_s: float) -> Cost:
        return {"usage": 0.0, "fixed_per_month": self.fixed_per_month * self.gpus}

    def stats(self, horizon_s: float) -> dict:
        return {"gpus": self.gpus, "utilisation": self.busy_s / (self.gpus * horizon_s) if horizon_s else None,
                "mean_replicas": self.gpus, "max_replicas": self.gpus, "replica_hours": self.gpus * horizon_s / 3600}


def gpu_worker(env: simpy.Environment, gpu: LocalGPU, index: int):
    """One GPU: take the oldest job (and same-case followers up to max_batch), serve, repeat."""
    queue, ledger, sample = gpu.queue, gpu.ledger, gpu.sample
    label = f"{gpu.name}-gpu{index}"
    while True:
        job = yield queue.get()
        batch = [job]
        if gpu.max_batch > 1:
            for other in list(queue.items):
                if len(batch) >= gpu.max_batch:
                    break
                if other.case == job.case:
                    queue.items.remove(other)
                    batch.append(other)
        # the load it meets: the jobs waiting, its batch and the other workers' jobs; a local server's
        # workers run before the first request (its start is not simulated), so no job is a first one
        service = sample(job.case, in_system=gpu.in_system, busy=gpu.serving + 1, job=job)
        if len(batch) > 1:
            service *= 1 + gpu.batch_marginal * (len(batch) - 1)
        now = env.now
        for j in batch:
            j.started = now
            j.service_s = service / len(batch)
        gpu.serving += 1
        yield env.timeout(service)
        gpu.serving -= 1
        gpu.busy_s += service
        gpu.in_system -= len(batch)
        now = env.now
        for j in batch:
            ledger.complete(j, now, label)
