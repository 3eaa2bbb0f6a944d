"""Jobs: submit, status with long-poll, results."""

from __future__ import annotations

import io
import zipfile
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import FileResponse

from server.deps import ServicesDep, require_api_key
from server.errors import APIError, doc
from server.scheduler import Draining, QueueFull
from server.schemas import JOB_ID_PATTERN, DecomposeAccepted, DecomposeRequest, JobStatus

router = APIRouter(prefix="/api", tags=["jobs"], dependencies=[Depends(require_api_key)])

MAX_WAIT_S = 60.0
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="32 hex digits, from POST /api/decompose")]


def submit_job(svc, file_id: str, num_layers: int, resolution: int, source: str = "api") -> dict:
    """Shared by the job API and the Vertex routes: one queue, one worker."""
    if svc.store.get_file(file_id) is None or not svc.files.upload_path(file_id).exists():
        raise APIError(404, "unknown_file", f"no uploaded file with id {file_id}; POST /api/upload first")
    try:
        return svc.scheduler.submit(file_id, num_layers, resolution, source=source)
    except QueueFull as full:
        raise APIError(429, "queue_full", f"{full}; retry after about {full.retry_after_s} s",
                       headers={"Retry-After": str(full.retry_after_s)}) from None
    except Draining as err:
        raise APIError(503, "shutting_down", str(err)) from None


def job_status(svc, job: dict) -> JobStatus:
    fields = {k: job[k] for k in JobStatus.model_fields if k in job and k != "queue_position"}
    fields["cached"] = bool(job["cached"])
    position = svc.scheduler.queue_position(job["job_id"]) if job["status"] == "queued" else None
    return JobStatus(queue_position=position, **fields)


def get_job(svc, job_id: str) -> dict:
    job = svc.store.get(job_id)
    if job is None:
        raise APIError(404, "unknown_job", f"no job with id {job_id}")
    return job


def completed_layers(svc, job_id: str) -> list:
    job = get_job(svc, job_id)
    if job["status"] != "completed":
        raise APIError(409, "not_completed", f"job {job_id} is {job['status']}, not completed"
                       + (f": {job['error']}" if job["error"] else ""))
    paths = svc.files.layer_paths(job["result_job_id"] or job_id)
    if not paths:
        raise APIError(404, "result_gone", f"the result files of job {job_id} are missing from the data directory")
    return paths


@router.post("/decompose", status_code=202, response_model=DecomposeAccepted, responses=doc(400, 401, 404, 422, 429, 503))
async def decompose(body: DecomposeRequest, svc: ServicesDep):
    job = submit_job(svc, body.file_id, body.num_layers, body.resolution)
    return DecomposeAccepted(job_id=job["job_id"], status=job["status"], cached=bool(job["cached"]))


@router.get("/status/{job_id}", response_model=JobStatus, responses=doc(401, 404, 422))
async def status(job_id: JobId,
                 svc: ServicesDep,
                 wait: Annotated[float, Query(ge=0, description=f"long-poll: wait up to this many seconds (max "
                                              f"{MAX_WAIT_S:g}) for the job to end; returns at once when it does")] = 0.0):
    job = get_job(svc, job_id)
    if wait > 0 and job["status"] not in ("completed", "failed"):
        await svc.scheduler.wait_finished(job_id, min(wait, MAX_WAIT_S))
        job = get_job(svc, job_id)
    return job_status(svc, job)


@router.get("/result/{job_id}", response_class=Response, responses={
    200: {"content": {"application/zip": {}}, "description": "zip of layer_0.png ... (RGBA)"}, **doc(401, 404, 409, 422)})
async def result(job_id: JobId, svc: ServicesDep):
    paths = completed_layers(svc, job_id)
    buf = io.BytesIO()
    # PNG is already compressed: store, do not deflate again.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in paths:
            zf.write(p, p.name)
    return Response(buf.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'})


@router.get("/result/{job_id}/layers/{index}", response_class=FileResponse, responses={
    200: {"content": {"image/png": {}}, "description": "one RGBA layer"}, **doc(401, 404, 409, 422)})
async def layer(job_id: JobId, index: Annotated[int, Path(ge=0)], svc: ServicesDep):
    paths = completed_layers(svc, job_id)
    if index >= len(paths):
        raise APIError(404, "unknown_layer", f"job {job_id} has {len(paths)} layers (0..{len(paths) - 1}), not {index}")
    return FileResponse(paths[index], media_type="image/png")
