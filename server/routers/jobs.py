"""Jobs: submit, status with long-poll, results."""

from __future__ import annotations

import io
import zipfile
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import FileResponse

from server.deps import IntakeDep, require_api_key, require_storage
from server.errors import APIError, doc
from server.links import DECOMPOSE_LINKS, STATUS_LINKS
from server.schemas import EXAMPLE_JOB_ID, JOB_ID_PATTERN, DecomposeAccepted, DecomposeRequest, JobStatus

router = APIRouter(prefix="/api", tags=["jobs"], dependencies=[Depends(require_api_key), Depends(require_storage)])

MAX_WAIT_S = 60.0
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="32 hex digits, from POST /api/decompose",
                            examples=[EXAMPLE_JOB_ID])]


@router.post("/decompose", operation_id="decompose", status_code=202, response_model=DecomposeAccepted,
             responses={202: {"links": DECOMPOSE_LINKS}, **doc(400, 401, 404, 413, 422, 429, 503)})
async def decompose(body: DecomposeRequest, intake: IntakeDep) -> DecomposeAccepted:
    job = intake.submit(body.file_id, body.num_layers, body.resolution)
    return DecomposeAccepted(job_id=job["job_id"], status=job["status"], cached=bool(job["cached"]))


@router.get("/status/{job_id}", operation_id="status", response_model=JobStatus,
            responses={200: {"links": STATUS_LINKS}, **doc(401, 404, 422, 503)})
async def status(job_id: JobId, intake: IntakeDep,
                 wait: Annotated[float, Query(ge=0, allow_inf_nan=False, examples=[30], description=(
                     f"long-poll: wait up to this many seconds (values above {MAX_WAIT_S:g} wait "
                     f"{MAX_WAIT_S:g}) for the job to end; returns at once when it does"))] = 0.0) -> JobStatus:
    return intake.status(await intake.wait(job_id, min(wait, MAX_WAIT_S)))


@router.get("/result/{job_id}", operation_id="result", response_class=Response, responses={
    200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
          "description": "zip of layer_0.png ... (RGBA)"}, **doc(401, 404, 409, 422, 503)})
async def result(job_id: JobId, intake: IntakeDep):
    paths = intake.completed_layers(job_id)
    buf = io.BytesIO()
    # PNG is already compressed: store, do not deflate again.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in paths:
            zf.write(p, p.name)
    return Response(buf.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'})


@router.get("/result/{job_id}/layers/{index}", operation_id="layer", response_class=FileResponse, responses={
    200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
          "description": "one RGBA layer"}, **doc(401, 404, 409, 422, 503)})
async def layer(job_id: JobId, index: Annotated[int, Path(ge=0, examples=[0])], intake: IntakeDep):
    paths = intake.completed_layers(job_id)
    if index >= len(paths):
        raise APIError(404, "unknown_layer", f"job {job_id} has {len(paths)} layers (0..{len(paths) - 1}), not {index}")
    return FileResponse(paths[index], media_type="image/png")
