"""The test-only route of fault injection (`--enable-fault-injection`): `POST /_test/faults` replaces
the pending faults of `server.faults.Faults` (statuses the next Vertex predictions answer with, a latency
added to every prediction, pipeline batches that raise)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from server.deps import ServicesDep, require_api_key
from server.errors import doc


class FaultsRequest(BaseModel):
    statuses: list[int] = Field(default_factory=list, description="statuses the next predictions answer, in order")
    delay_s: float = Field(0.0, ge=0, description="latency added to every prediction until reset")
    fail_jobs: int = Field(0, ge=0, description="the next k pipeline batches raise (job → failed)")


router = APIRouter(prefix="/_test", tags=["test-only"], dependencies=[Depends(require_api_key)])


@router.post("/faults", response_model=FaultsRequest, responses=doc(400, 401, 413, 422))
async def set_faults(body: FaultsRequest, svc: ServicesDep) -> FaultsRequest:
    """Replaces the pending faults."""
    svc.faults.replace(body.statuses, body.delay_s, body.fail_jobs)
    return body
