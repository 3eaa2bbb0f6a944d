"""Vertex AI predictions on the same app, intake and job queue as the job API: the contract of
`server.vertex_contract` (routes, limits, checks, Google-style errors), served by submitting one job per
instance, all or none, and waiting for them."""

import base64
import time

from fastapi import Depends

from server.deps import require_api_key, require_storage
from server.errors import APIError
from server.links import PREDICT_LINKS
from server.schemas import Prediction, PredictResponse
from server.services import Services
from server.settings import Settings
from server.vertex_contract import CheckedInstance, PredictLimits, VertexRoutes

DEPLOYED_MODEL_ID = "local"


def limits(settings: Settings) -> PredictLimits:
    # A request that can never fit the queue would be refused forever: the limit is the smaller of both.
    return PredictLimits(max_body_bytes=settings.vertex_max_body_bytes,
                         max_instances=min(settings.vertex_max_instances, settings.queue_limit),
                         max_image_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels)


def _encode_layers(intake, done: dict) -> list[str]:
    return [base64.b64encode(p.read_bytes()).decode("ascii") for p in intake.layer_paths(done)]


async def predict(svc: Services, instances: list[CheckedInstance]) -> PredictResponse:
    if svc.faults is not None:
        await svc.faults.before_predict()
    if not svc.ready:
        raise APIError(503, "not_ready", svc.not_ready_reason() or "not ready")
    intake = svc.intake
    # Hashing and writing the images is disk work: off the event loop, like their checks.
    stored = [await intake.store_image_async(inst.image, (inst.width, inst.height)) for inst in instances]
    jobs = intake.submit_all([(up.file_id, inst.layers, inst.resolution) for up, inst in zip(stored, instances, strict=True)],
                             source="vertex")
    deadline = time.monotonic() + svc.settings.vertex_timeout_s
    predictions = []
    for job in jobs:
        done = await intake.wait_until_finished(job["job_id"], deadline, svc.settings.vertex_timeout_s)
        if done["status"] == "failed":
            raise APIError(500, "job_failed", f"job {done['job_id']} failed: {done['error']}")
        predictions.append(Prediction(
            layers=await intake.off_loop(_encode_layers, intake, done),
            timings={"queue_s": done["queue_s"], "inference_s": done["inference_s"]},
            cached=bool(done["cached"]), job_id=done["job_id"]))
    return PredictResponse(predictions=predictions, deployedModelId=DEPLOYED_MODEL_ID)


def build_routes(settings: Settings, services: Services) -> VertexRoutes:
    async def serve(instances: list[CheckedInstance]) -> PredictResponse:
        return await predict(services, instances)

    return VertexRoutes(limits=limits(settings), predict_route=settings.vertex_predict_route, serve=serve,
                        deployed_model_id=DEPLOYED_MODEL_ID, display_name="decomposer-loadlab-local",
                        response_model=PredictResponse, responses={200: {"links": PREDICT_LINKS}},
                        dependencies=[Depends(require_api_key)], predict_dependencies=[Depends(require_storage)],
                        off_loop=services.intake.off_loop)
