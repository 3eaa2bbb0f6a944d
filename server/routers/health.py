"""Liveness, readiness (model loaded) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.deps import ServicesDep, require_api_key
from server.errors import doc

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz():
    """200 while the process is alive, also during model load; no auth."""
    return {"ok": True}


@router.get("/readyz", dependencies=[Depends(require_api_key)], responses={
    503: {"description": "model not loaded yet (or the load failed, or shutting down)"}, **doc(401)})
async def readyz(svc: ServicesDep):
    if not svc.ready or svc.scheduler.draining:
        body = {"ready": False, "process_started_at": svc.process_started_at,
                "draining": svc.scheduler.draining, "error": svc.load_error}
        return JSONResponse(body, status_code=503)
    return {"ready": True, "model": svc.model_info, "process_started_at": svc.process_started_at,
            "ready_at": svc.ready_at, "queue_depth": svc.scheduler.depth()}


@router.get("/metrics", dependencies=[Depends(require_api_key)], response_class=Response, responses=doc(401))
async def metrics(svc: ServicesDep):
    counts = svc.store.count_by_status()
    for status in ("queued", "running", "completed", "failed"):
        svc.metrics.jobs.labels(status).set(counts.get(status, 0))
    svc.metrics.queue_depth.set(svc.scheduler.depth())
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
