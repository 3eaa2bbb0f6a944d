"""Dependencies injected into the routers: the app's services, its intake, the API-key check (in
server.auth, enforced before the body by its middleware) and the storage check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.auth import require_api_key
from server.errors import APIError
from server.intake import Intake
from server.services import Services

__all__ = ["IntakeDep", "ServicesDep", "intake", "require_api_key", "require_storage", "services"]


def services(request: Request) -> Services:
    return request.app.state.services


def intake(request: Request) -> Intake:
    return request.app.state.services.intake


def require_storage(request: Request) -> None:
    """503 on the routes that need the data directory while it is unusable (see Services.storage_error)."""
    error = request.app.state.services.storage_error
    if error:
        raise APIError(503, "storage_unavailable", f"the server cannot store jobs: {error}")


# `svc: ServicesDep` / `intake: IntakeDep` in a route signature: injected from the app.
ServicesDep = Annotated[Services, Depends(services)]
IntakeDep = Annotated[Intake, Depends(intake)]
