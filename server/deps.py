"""Dependencies injected into the routers: the app's services, its intake, the API-key check and the
storage check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from server.errors import APIError
from server.intake import Intake
from server.services import Services

# Declared as security schemes so the OpenAPI schema says how to authenticate (the app drops them from
# the schema when no key is configured, because then nothing is enforced).
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")
bearer = HTTPBearer(auto_error=False, description="the server's API key as a bearer token")


def services(request: Request) -> Services:
    return request.app.state.services


def intake(request: Request) -> Intake:
    return request.app.state.services.intake


def require_api_key(request: Request,
                    key: Annotated[str | None, Security(api_key_header)] = None,
                    token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None) -> None:
    """X-API-Key or `Authorization: Bearer`; constant-time comparison. No key configured → open."""
    expected = request.app.state.services.settings.api_key
    if not expected:
        return
    given = key or (token.credentials if token else None)
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise APIError(401, "unauthorized", "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                       headers={"WWW-Authenticate": "Bearer"})


def require_storage(request: Request) -> None:
    """503 on the routes that need the data directory while it is unusable (see Services.storage_error)."""
    error = request.app.state.services.storage_error
    if error:
        raise APIError(503, "storage_unavailable", f"the server cannot store jobs: {error}")


# `svc: ServicesDep` / `intake: IntakeDep` in a route signature: injected from the app.
ServicesDep = Annotated[Services, Depends(services)]
IntakeDep = Annotated[Intake, Depends(intake)]
