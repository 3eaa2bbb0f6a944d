"""Vertex AI predictions on the same app, intake and job queue as the job API.

- The custom-container contract: AIP_PREDICT_ROUTE (its health route is in `routers/health.py`).
- The REST paths google-cloud-aiplatform calls with api_endpoint="http://127.0.0.1:PORT" and
  api_transport="rest": GET the endpoint resource, POST `...endpoints/{e}:predict`.
Errors on these paths are Google-style JSON (see server.errors.render). A predict request is bounded
(body size of the endpoint type, instances per request) and admitted all or nothing."""

import base64
import time
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path
from starlette.convertors import StringConvertor, register_url_convertor

from server.deps import ServicesDep, require_api_key, require_storage
from server.errors import APIError, doc
from server.links import PREDICT_LINKS
from server.schemas import EndpointResource, Prediction, PredictResponse, predict_request_model
from server.services import Services
from server.settings import Settings

DEPLOYED_MODEL_ID = "local"
CREATED_AT = "2026-01-01T00:00:00Z"


class ResourceIdConvertor(StringConvertor):
    """A path segment of a resource name: no "/" and no ":", so the endpoint resource's `{endpoint}`
    never swallows ":predict" (else `OPTIONS …:predict` would be matched by the GET route)."""

    regex = "[^/:]+"


register_url_convertor("resource_id", ResourceIdConvertor())
ENDPOINT_PATH = ("/v1/projects/{project:resource_id}/locations/{location:resource_id}"
                 "/endpoints/{endpoint:resource_id}")
ResourceId = Annotated[str, Path(pattern=r"^[^/:]+$", examples=["local"])]
# 404: a path segment that is not a resource name (it holds ":") matches no route.
PREDICT_ERRORS = doc(400, 401, 404, 413, 415, 422, 429, 500, 503, 504, google=True)


async def predict(svc: Services, instances: list) -> PredictResponse:
    if svc.faults is not None:
        await svc.faults.before_predict()
    if not svc.ready:
        raise APIError(503, "not_ready", svc.not_ready_reason() or "not ready")
    intake = svc.intake
    # Every instance is checked before any is stored or submitted: one bad instance refuses the request.
    images = []
    for i, inst in enumerate(instances):
        images.append((inst.image, intake.check_image(inst.image, what=f"instances[{i}].image")))
    file_ids = [intake.store_image(data, size).file_id for data, size in images]
    jobs = intake.submit_all([(fid, inst.layers, inst.resolution) for fid, inst in zip(file_ids, instances, strict=True)],
                             source="vertex")
    deadline = time.monotonic() + svc.settings.vertex_timeout_s
    predictions = []
    for job in jobs:
        done = await intake.wait_until_finished(job["job_id"], deadline, svc.settings.vertex_timeout_s)
        if done["status"] == "failed":
            raise APIError(500, "job_failed", f"job {done['job_id']} failed: {done['error']}")
        predictions.append(Prediction(
            layers=[base64.b64encode(p.read_bytes()).decode("ascii") for p in intake.layer_paths(done)],
            timings={"queue_s": done["queue_s"], "inference_s": done["inference_s"]},
            cached=bool(done["cached"]), job_id=done["job_id"]))
    return PredictResponse(predictions=predictions, deployedModelId=DEPLOYED_MODEL_ID)


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["vertex"], dependencies=[Depends(require_api_key)])
    # A request that can never fit the queue would be refused forever: the limit is the smaller of both.
    max_instances = min(settings.vertex_max_instances, settings.queue_limit)
    PredictRequest = predict_request_model(max_instances)
    body_limit = settings.vertex_max_body_bytes
    predict_doc = {200: {"links": PREDICT_LINKS}, **PREDICT_ERRORS}
    description = (f"{{\"instances\": [{{\"image\", \"layers\", \"resolution\"}}]}} → {{\"predictions\": [...]}}. "
                   f"Body at most {body_limit} bytes ({settings.vertex_endpoint_type} endpoint), at most "
                   f"{max_instances} instances, admitted all or none.")

    @router.post(settings.vertex_predict_route, operation_id="vertex_predict", response_model=PredictResponse,
                 dependencies=[Depends(require_storage)], responses=predict_doc,
                 description="AIP_PREDICT_ROUTE: " + description)
    async def vertex_predict(body: Annotated[PredictRequest, Body()], svc: ServicesDep) -> PredictResponse:
        return await predict(svc, body.instances)

    @router.get(ENDPOINT_PATH, operation_id="get_endpoint", response_model=EndpointResource,
                responses=doc(401, 404, google=True))
    async def get_endpoint(project: ResourceId, location: ResourceId, endpoint: ResourceId) -> EndpointResource:
        """The endpoint resource the SDK reads before its first predict (it needs createTime)."""
        return EndpointResource(
            name=f"projects/{project}/locations/{location}/endpoints/{endpoint}",
            displayName="decomposer-loadlab-local", createTime=CREATED_AT, updateTime=CREATED_AT,
            deployedModels=[{"id": DEPLOYED_MODEL_ID, "model": f"projects/{project}/locations/{location}/models/local",
                             "displayName": "qwen-image-layered-local", "createTime": CREATED_AT}],
            trafficSplit={DEPLOYED_MODEL_ID: 100})

    # The colon is part of the last path segment: Starlette matches `{endpoint}:predict` literally.
    @router.post(ENDPOINT_PATH + ":predict", operation_id="endpoint_predict", response_model=PredictResponse,
                 dependencies=[Depends(require_storage)], responses=predict_doc,
                 description="The SDK's REST predict: " + description)
    async def endpoint_predict(project: ResourceId, location: ResourceId, endpoint: ResourceId,
                               body: Annotated[PredictRequest, Body()], svc: ServicesDep) -> PredictResponse:
        return await predict(svc, body.instances)

    return router
