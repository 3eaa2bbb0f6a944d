"""The API key (DECOMPOSER_API_KEY, the environment only): X-API-Key or `Authorization: Bearer`, compared in
constant time; no key configured → everything is open.

Enforced by `ApiKeyGuard`, in front of the whole app: FastAPI reads (and parses) a request's body before
it solves a route's dependencies, so a dependency alone would read a 15 MB upload, or answer 400 to
malformed JSON, before the 401. `require_api_key` marks the guarded routes (the guard finds them by it)
and gives the OpenAPI schema its security schemes; it checks the key too, for an app without the guard."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Request, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import APIError, render

UNAUTHORIZED = (401, "unauthorized", "missing or wrong API key (send X-API-Key or Authorization: Bearer)")
CHALLENGE = {"WWW-Authenticate": "Bearer"}

# Declared as security schemes so the OpenAPI schema says how to authenticate (the app drops them from
# the schema when no key is configured, because then nothing is enforced).
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")
bearer = HTTPBearer(auto_error=False, description="the server's API key as a bearer token")


def given_key(headers: Headers) -> str | None:
    """The key a request carries: X-API-Key, else the token of `Authorization: Bearer <token>` (what
    the two security schemes above read)."""
    if key := headers.get("x-api-key"):
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def authorized(expected: str | None, headers: Headers) -> bool:
    if not expected:
        return True
    given = given_key(headers)
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def require_api_key(request: Request,
                    key: Annotated[str | None, Security(api_key_header)] = None,
                    token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None) -> None:
    """The dependency of every guarded route (`key` and `token` are there for the schema)."""
    if not authorized(request.app.state.services.settings.api_key, request.headers):
        raise APIError(*UNAUTHORIZED, headers=dict(CHALLENGE))


def _requires_key(dependant) -> bool:
    return any(d.call is require_api_key or _requires_key(d) for d in dependant.dependencies)


def _leaves(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes in the order the router tries them. FastAPI keeps an included router whole (it is one
    route holding `original_router`); app.py includes them without a prefix, so their routes match the
    request's own path."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaves(inner.routes)
        else:
            yield route


def _route_for(routes: list[BaseRoute], scope: Scope) -> BaseRoute | None:
    """The route the router picks: the first full match, else the first partial one (the path matches,
    not the method: a 405, which is the guarded route's to answer too)."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers


class ApiKeyGuard:
    """Pure ASGI, the outermost middleware: a request for a route that depends on `require_api_key`,
    without the right key, is answered 401 (the app's error body, Google-style on the Vertex paths)
    before a byte of its body is read; the connection is then closed, the unread body with it. Every
    other route (health, docs, the schema, an unknown path's 404) is passed through."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._routes: list[BaseRoute] | None = None
        self._guarded: list[BaseRoute] = []

    def guarded(self, scope: Scope) -> bool:
        if self._routes is None:  # the routes are all there by the first request
            self._routes = list(_leaves(scope["app"].router.routes))
            self._guarded = [r for r in self._routes if isinstance(r, APIRoute) and _requires_key(r.dependant)]
        route = _route_for(self._routes, scope)
        return any(route is r for r in self._guarded)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        expected = scope["app"].state.services.settings.api_key
        if authorized(expected, headers) or not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        reply = dict(CHALLENGE)
        if _has_body(headers):
            reply["Connection"] = "close"
        response = render(Request(scope), *UNAUTHORIZED, headers=reply)
        await response(scope, receive, send)
