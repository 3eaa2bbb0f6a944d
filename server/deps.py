"""Dependencies injected into the routers: the app's services and the API-key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from server.errors import APIError
from server.services import Services


def services(request: Request) -> Services:
    return request.app.state.services


def require_api_key(request: Request) -> None:
    """X-API-Key or `Authorization: Bearer`; constant-time comparison. No key configured → open."""
    expected = request.app.state.services.settings.api_key
    if not expected:
        return
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise APIError(401, "unauthorized", "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                       headers={"WWW-Authenticate": "Bearer"})


# `svc: ServicesDep` in a route signature: the app's Services, injected.
ServicesDep = Annotated[Services, Depends(services)]
