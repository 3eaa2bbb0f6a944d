"""Vertex AI on the same app and the same job queue as the job API.

- The custom-container contract: AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE (registered in `build_router`,
  because the paths come from settings).
- The REST paths google-cloud-aiplatform calls with api_endpoint="http://127.0.0.1:PORT" and
  api_transport="rest": GET the endpoint resource, POST `...endpoints/{e}:predict`.
Errors on these paths are Google-style JSON (see server.errors.render)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from server.deps import ServicesDep, require_api_key
from server.errors import APIError, doc
from server.images import inspect_image
from server.model import MAX_LAYERS, MIN_LAYERS, RESOLUTION_BUCKETS
from server.routers.jobs import submit_job

DEPLOYED_MODEL_ID = "local"
CREATED_AT = "2026-01-01T00:00:00Z"


class Instance(BaseModel):
    model_config = ConfigDict(extra="ignore")
    image: str = Field(description="base64 of the image bytes")
    layers: int = Field(5, ge=MIN_LAYERS, le=MAX_LAYERS)
    resolution: int = Field(1024)


class PredictRequest(BaseModel):
    instances: list[Instance] = Field(min_length=1)
    parameters: dict | None = None


class PredictResponse(BaseModel):
    predictions: list[dict]
    deployedModelId: str = DEPLOYED_MODEL_ID


async def _predict(svc, body: PredictRequest) -> PredictResponse:
    faults = svc.faults
    if faults.delay_s > 0:
        await asyncio.sleep(faults.delay_s)
    if faults.statuses:
        status = faults.statuses.popleft()
        raise APIError(status, "injected_fault", f"injected fault {status} (fault injection)",
                       headers={"Retry-After": "1"} if status in (429, 503) else None)
    if not svc.ready:
        raise APIError(503, "not_ready", "the model is still loading")
    jobs = []
    for i, inst in enumerate(body.instances):
        if inst.resolution not in RESOLUTION_BUCKETS:
            raise APIError(400, "invalid_request", f"instances[{i}].resolution must be one of {list(RESOLUTION_BUCKETS)}")
        try:
            data = base64.b64decode(inst.image, validate=True)
        except (binascii.Error, ValueError):
            raise APIError(400, "invalid_request", f"instances[{i}].image is not valid base64") from None
        if len(data) > svc.settings.max_upload_bytes:
            raise APIError(413, "upload_too_large", f"instances[{i}].image is over {svc.settings.max_upload_mb:g} MB")
        width, height = inspect_image(data, svc.settings.max_pixels)
        file_id = hashlib.sha256(data).hexdigest()
        svc.files.put_upload(file_id, data)
        svc.store.add_file(file_id, width, height, len(data))
        jobs.append(submit_job(svc, file_id, inst.layers, inst.resolution, source="vertex"))
    deadline = time.monotonic() + svc.settings.vertex_timeout_s
    predictions = []
    for job in jobs:
        while True:
            current = svc.store.get(job["job_id"])
            if current["status"] in ("completed", "failed"):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise APIError(504, "timeout", f"job {job['job_id']} did not finish in {svc.settings.vertex_timeout_s:g} s")
            if svc.scheduler.draining:
                raise APIError(503, "shutting_down", "server is shutting down; the job stays queued")
            await svc.scheduler.wait_finished(job["job_id"], min(remaining, 60.0))
        if current["status"] == "failed":
            raise APIError(500, "job_failed", f"job {job['job_id']} failed: {current['error']}")
        paths = svc.files.layer_paths(current["result_job_id"] or current["job_id"])
        predictions.append({
            "layers": [base64.b64encode(p.read_bytes()).decode("ascii") for p in paths],
            "timings": {"queue_s": current["queue_s"], "inference_s": current["inference_s"]},
            "cached": bool(current["cached"]), "job_id": current["job_id"],
        })
    return PredictResponse(predictions=predictions)


def _endpoint_resource(project: str, location: str, endpoint: str) -> dict:
    return {
        "name": f"projects/{project}/locations/{location}/endpoints/{endpoint}",
        "displayName": "decomposer-loadlab-local", "createTime": CREATED_AT, "updateTime": CREATED_AT,
        "deployedModels": [{"id": DEPLOYED_MODEL_ID, "model": f"projects/{project}/locations/{location}/models/local",
                            "displayName": "qwen-image-layered-local", "createTime": CREATED_AT}],
        "trafficSplit": {DEPLOYED_MODEL_ID: 100},
    }


def build_router(health_route: str, predict_route: str) -> APIRouter:
    router = APIRouter(tags=["vertex"])

    @router.get(health_route)
    async def vertex_health(svc: ServicesDep):
        """AIP_HEALTH_ROUTE: 200 once the model is loaded (Vertex routes traffic only then); no auth."""
        if not svc.ready or svc.scheduler.draining:
            raise APIError(503, "not_ready", "model not loaded yet or shutting down")
        return {"ready": True}

    @router.post(predict_route, response_model=PredictResponse, dependencies=[Depends(require_api_key)],
                 responses=doc(400, 401, 413, 415, 422, 429, 503, 504, google=True))
    async def vertex_predict(body: PredictRequest, svc: ServicesDep):
        """AIP_PREDICT_ROUTE: {"instances": [{"image", "layers", "resolution"}]} → {"predictions": [...]}."""
        return await _predict(svc, body)

    @router.get("/v1/projects/{project}/locations/{location}/endpoints/{endpoint}",
                dependencies=[Depends(require_api_key)], responses=doc(401, google=True))
    async def get_endpoint(project: str, location: str, endpoint: str):
        """The endpoint resource the SDK reads before its first predict (it needs createTime)."""
        return _endpoint_resource(project, location, endpoint)

    # The colon is part of the last path segment: Starlette matches `{endpoint}:predict` literally, with
    # the endpoint id restricted so `:predict` is never swallowed into it.
    @router.post("/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:predict",
                 response_model=PredictResponse, dependencies=[Depends(require_api_key)],
                 responses=doc(400, 401, 413, 415, 422, 429, 503, 504, google=True))
    async def endpoint_predict(project: str, location: str, endpoint: str, body: PredictRequest,
                               svc: ServicesDep):
        return await _predict(svc, body)

    return router


class FaultsRequest(BaseModel):
    statuses: list[int] = Field(default_factory=list, description="statuses the next predictions answer, in order")
    delay_s: float = Field(0.0, ge=0, description="latency added to every prediction until reset")
    fail_jobs: int = Field(0, ge=0, description="the next k pipeline batches raise (job → failed)")


faults_router = APIRouter(prefix="/_test", tags=["test-only"])


@faults_router.post("/faults")
async def set_faults(body: FaultsRequest, request: Request, svc: ServicesDep):
    """Test only (exists with --enable-fault-injection): replaces the pending faults."""
    svc.faults.statuses.clear()
    svc.faults.statuses.extend(body.statuses)
    svc.faults.delay_s = body.delay_s
    svc.scheduler.fail_next = body.fail_jobs
    return JSONResponse({"statuses": list(svc.faults.statuses), "delay_s": svc.faults.delay_s,
                         "fail_jobs": body.fail_jobs})
