"""One `decompose_image` call turned into a `JobRecord` of the shared report schema: what Locust and
the benchmarks record for every job."""

from __future__ import annotations

import time

from clients.base import ClientError, RejectedError
from loadlab.schema import COMPLETED, FAILED, REJECTED, JobRecord


def run_job(client, case, image_path: str, served_by: str = "", scheduled: float | None = None) -> JobRecord:
    """Run one job with the client's exact timings: completed, failed (with the error text) or
    rejected (429 after the client's retries). Never raises; a client bug is recorded as failed too.

    `scheduled` (epoch seconds): when an open-loop arrival was due; end-to-end latency then counts
    from it, so a late dispatch shows in the latency instead of hiding (coordinated omission)."""
    submitted = time.time()
    t0 = time.perf_counter()
    # latency origin on the perf_counter clock: the scheduled time when given
    origin = t0 - (submitted - scheduled) if scheduled is not None else t0
    try:
        result = client.decompose_image(image_path, case.layers, case.resolution)
    except Exception as err:
        now = time.perf_counter()
        status = REJECTED if isinstance(err, RejectedError) else FAILED
        extra = {"http_status": err.status} if isinstance(err, ClientError) else {"client_bug": True}
        return JobRecord(case=case.name, status=status, scheduled=scheduled, submitted=submitted,
                         finished=submitted + (now - t0), e2e_s=now - origin,
                         error=f"{type(err).__name__}: {err}", served_by=served_by or None, extra=extra)
    now = time.perf_counter()
    timings = result.timings or {}
    upload, queue = timings.get("upload_s"), timings.get("queue_s")
    started = submitted + upload + queue if upload is not None and queue is not None else None
    extra = {"job_id": result.job_id, "cached": result.cached, "retries": result.retries,
             "upload_s": upload, "transfer_s": timings.get("transfer_s"),
             "client_total_s": timings.get("total_s"), "layers": len(result.layers),
             "detect_s": timings.get("detect_s"), "batch_size": result.batch_size}
    replica = result.replica_id
    if replica:
        # a replicated target: the replica is who served it (bench.replicas.mark_cold_starts reads
        # extra["replica_id"]); the client's name stays in extra
        extra.update(replica_id=replica, client=result.served_by)
    return JobRecord(
        case=case.name, status=COMPLETED, scheduled=scheduled, submitted=submitted, finished=submitted + (now - t0),
        started=started, queue_s=queue, service_s=timings.get("inference_s"), e2e_s=now - origin,
        served_by=replica or result.served_by,
        # the replica's first request (a measured run against replicas refines it with the timeline:
        # bench.replicas.mark_cold_starts)
        cold_start=result.first_on_replica, extra=extra)
