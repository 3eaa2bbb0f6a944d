"""Liveness, readiness (model loaded, storage usable, not draining) and Prometheus metrics. The Vertex
health route (AIP_HEALTH_ROUTE) answers readiness, whatever path it names, even /healthz; it and /healthz
are open, so they say only alive / ready, nothing about the model or the error (that is /readyz's, behind
the key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from server.deps import ServicesDep, require_api_key
from server.errors import STATUS_MEANING, doc
from server.schemas import Readiness
from server.services import Services

LIVENESS_ROUTE = "/healthz"
READINESS_ROUTE = "/readyz"
NOT_READY = {503: {"model": Readiness, "description": STATUS_MEANING[503]}}


class Ready(BaseModel):
    """What an unauthenticated caller learns: ready or not, no model path, no error details (those are
    on /readyz, behind the key)."""

    ready: bool


def readiness(svc: Services) -> JSONResponse:
    reason = svc.not_ready_reason()
    if reason is not None:
        body = Readiness(ready=False, process_started_at=svc.process_started_at,
                         draining=svc.scheduler.draining, error=reason)
        return JSONResponse(body.model_dump(), status_code=503)
    body = Readiness(ready=True, model=svc.model_info, process_started_at=svc.process_started_at,
                     ready_at=svc.ready_at, queue_depth=svc.scheduler.depth())
    return JSONResponse(body.model_dump())


def build_router(vertex_health_route: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    # Registered first: when AIP_HEALTH_ROUTE names /healthz or /readyz, this route is the one that answers.
    @router.get(vertex_health_route, operation_id="vertex_health", response_model=Ready,
                responses={503: {"model": Ready, "description": STATUS_MEANING[503]}})
    async def vertex_health(svc: ServicesDep):
        """AIP_HEALTH_ROUTE: readiness, no auth (Vertex routes traffic to a replica only once this is 200);
        only ready or not: why not is on /readyz."""
        ready = svc.not_ready_reason() is None
        return JSONResponse(Ready(ready=ready).model_dump(), status_code=200 if ready else 503)

    if vertex_health_route != LIVENESS_ROUTE:
        @router.get(LIVENESS_ROUTE, operation_id="healthz")
        async def healthz() -> dict[str, bool]:
            """200 while the process is alive, also during model load; no auth."""
            return {"ok": True}

    if vertex_health_route != READINESS_ROUTE:
        @router.get(READINESS_ROUTE, operation_id="readyz", dependencies=[Depends(require_api_key)],
                    response_model=Readiness, responses={**NOT_READY, **doc(401)})
        async def readyz(svc: ServicesDep):
            return readiness(svc)

    @router.get("/metrics", operation_id="metrics", dependencies=[Depends(require_api_key)], response_class=Response,
                responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                                 "description": "Prometheus text format"}, **doc(401)})
    async def metrics(svc: ServicesDep):
        if svc.store is not None:
            counts = svc.store.count_by_status()
            for status in ("queued", "running", "completed", "failed"):
                svc.metrics.jobs.labels(status).set(counts.get(status, 0))
        svc.metrics.queue_depth.set(svc.scheduler.depth())
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
