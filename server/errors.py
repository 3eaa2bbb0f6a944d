"""Error responses: one body shape for the job API, Google's for the Vertex paths, and the OpenAPI
`responses=` entries that document them."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 405: "UNIMPLEMENTED", 415: "INVALID_ARGUMENT",
                 409: "FAILED_PRECONDITION", 413: "INVALID_ARGUMENT", 422: "INVALID_ARGUMENT",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class ErrorBody(BaseModel):
    detail: str
    error: str


class GoogleError(BaseModel):
    code: int
    message: str
    status: str


class GoogleErrorBody(BaseModel):
    error: GoogleError


class APIError(Exception):
    """Raised anywhere in a request; rendered as {"detail", "error"} (or Google-style on Vertex paths)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


# One meaning per status, on every route (README "Server" says the same).
STATUS_MEANING = {
    400: "malformed request: the body is not valid JSON (or, for an upload, not valid multipart)",
    401: "missing or wrong API key",
    404: "unknown id (file, job, layer) or route",
    409: "job not completed (yet, or it failed)",
    413: "too large: the request body, the uploaded image's bytes, or its pixel count (decompression-bomb guard)",
    415: "not an image Pillow can read",
    422: "invalid parameters, or an image that is empty, truncated or corrupt",
    429: "queue full; retry after Retry-After seconds",
    500: "the job failed in the pipeline",
    503: "not ready: model loading or failed to load, shutting down, or storage unavailable",
    504: "timed out waiting for the job",
}
HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer", "required": True}},
    429: {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": True,
                          "description": "seconds until a slot is likely free (queue depth x measured service time)"}},
}


def doc(*statuses: int, google: bool = False) -> dict:
    """OpenAPI `responses=` for the given error statuses."""
    model = GoogleErrorBody if google else ErrorBody
    out = {}
    for s in statuses:
        out[s] = {"model": model, "description": STATUS_MEANING[s]}
        if s in HEADERS:
            out[s]["headers"] = HEADERS[s]
    return out


def is_vertex_path(request: Request) -> bool:
    """Google's error shape here: the Vertex paths, or every path of an app that serves only them."""
    if getattr(request.app.state, "google_errors", False):
        return True
    paths = getattr(request.app.state, "vertex_paths", ())
    return request.url.path.startswith("/v1/") or request.url.path in paths


def render(request: Request, status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
    if is_vertex_path(request):
        body = {"error": {"code": status, "message": detail, "status": GOOGLE_STATUS.get(status, "UNKNOWN")}}
    else:
        body = {"detail": detail, "error": code}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        ctx = (first.get("ctx") or {}).get("error", "")
        return 400, "malformed_json", f"request body is not valid JSON: {ctx}".rstrip(": ")
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "path", "query"))
        parts.append(f"{loc or 'body'}: {e.get('msg')}")
    return 422, "invalid_request", "; ".join(parts)


def install(app) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return render(request, exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        status, code, detail = _validation_message(exc)
        return render(request, status, code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 413:  # server.limits.BodyTooLarge, while the route read its body
            detail = f"{detail} for {request.url.path}"
        return render(request, exc.status_code, code, detail, getattr(exc, "headers", None))
