"""The request-body guard in front of every route: a Content-Length over the route's limit is answered
413 at once, before a byte of the body is read, and a body without one (chunked) is cut off with 413 as
soon as it passes the limit, so an oversized request costs neither disk nor memory. The 413 has the
app's own error body (Google-style on the Vertex paths). And the connection guard uvicorn lacks: a
header timeout (`header_timeout_protocol`)."""

from __future__ import annotations

import asyncio
import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import render

# Every body but an upload or a prediction is a few dozen bytes of JSON (both servers' default limit).
SMALL_BODY = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised from `receive` while the route reads its body; FastAPI re-raises HTTPExceptions met while
    reading a body, so the app's handler renders it."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is over the limit of {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: list[tuple[str, int]], default: int):
        """`limits`: (path template, bytes), first match wins; `default` for every other path."""
        self.app = app
        self.limits: list[tuple[re.Pattern, int]] = [(compile_path(path)[0], n) for path, n in limits]
        self.default = default

    def limit_for(self, path: str) -> int:
        return next((n for regex, n in self.limits if regex.match(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            request = Request(scope, receive)
            response = render(request, 413, "body_too_large", f"request body is {int(length)} bytes, over the "
                              f"limit of {limit} bytes for {request.url.path}", headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def header_timeout_protocol(base: type[asyncio.Protocol], timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol `base` (its `http=` class) with a header timeout, which uvicorn lacks: a
    connection that has not sent a whole request head `timeout_s` after it opened, or after the first
    byte of its next request, is closed. Without it a client sending headers a byte a second (slowloris)
    holds its connection, and a slot of `limit_concurrency`, for as long as it likes."""

    class HeaderTimeout(base):
        _head_timer: asyncio.TimerHandle | None = None

        def _awaiting_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(timeout_s, self._head_timed_out)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._awaiting_head() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and self._awaiting_head():  # a new request on a kept-alive connection
                self._arm_head_timer()
            super().data_received(data)
            # The head is complete once a request cycle runs; the parser sees it only here, in data_received.
            if self._head_timer is not None and not self._awaiting_head():
                self._head_timer.cancel()
                self._head_timer = None

        def connection_lost(self, exc) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

    HeaderTimeout.__name__ = HeaderTimeout.__qualname__ = f"HeaderTimeout{base.__name__}"
    return HeaderTimeout
