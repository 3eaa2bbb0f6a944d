"""The Vertex AI prediction contract, one for both servers (the job server's `routers/vertex.py` and the
Ray Serve ingress in `rayserve/app.py`): the request model, the limits, how a body is checked, and the
router of Vertex's paths. What serves the checked instances is the one thing each server brings.

A predict body is checked in a worker thread (JSON, base64 and image headers of up to 10 MB would
otherwise hold the event loop), and every instance is checked before any is served, so one bad
instance refuses the whole request. Errors are `APIError`s / validation errors rendered by
`server.errors` in Google's shape, so the same bad request gets the same answer from both servers.
Imports no app state: Ray imports this module in the ingress replica."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import Response

from server.errors import APIError, doc
from server.images import inspect_image
from server.schemas import EXAMPLE_PNG_BASE64, NumLayers, Resolution

CREATED_AT = "2026-01-01T00:00:00Z"
# Base64 as `b64decode(validate=True)` accepts it: groups of four, padding only at the end. Said in the
# schema so a generator (schemathesis) knows what a valid string is; "decodes to an image" it cannot say.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"


@dataclass(frozen=True)
class PredictLimits:
    """Everything a predict request is held to before it is served."""

    max_body_bytes: int
    max_instances: int
    max_image_bytes: int
    max_pixels: int


def _decode_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None


ImageBase64 = Annotated[bytes, BeforeValidator(_decode_base64), WithJsonSchema(
    {"type": "string", "format": "byte", "contentEncoding": "base64", "contentMediaType": "image/png", "minLength": 4,
     "pattern": BASE64_PATTERN, "description": "base64 of the image bytes (PNG, JPEG, WebP ...)"})]


class Instance(BaseModel):
    # Vertex passes instances through as the caller sent them: unknown keys are ignored.
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "examples": [{"image": EXAMPLE_PNG_BASE64, "layers": 3, "resolution": 640}]})
    image: ImageBase64
    layers: NumLayers = 5
    resolution: Resolution = 1024


def predict_request_model(max_instances: int) -> type[BaseModel]:
    """`{"instances": [...], "parameters": {...}}` with this server's instance limit in the schema; any
    other top-level key is refused, as Google's API refuses an unknown field."""
    return create_model(
        "PredictRequest",
        instances=(list[Instance], Field(min_length=1, max_length=max_instances,
                                         description=f"1 to {max_instances} instances, admitted all or none")),
        parameters=(dict[str, Any] | None, None),
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [
            {"instances": [{"image": EXAMPLE_PNG_BASE64, "layers": 2, "resolution": 640}]}]}),
    )


@dataclass(frozen=True)
class CheckedInstance:
    image: bytes
    layers: int
    resolution: int
    width: int
    height: int


def _check_image(i: int, data: bytes, limits: PredictLimits) -> tuple[int, int]:
    what = f"instances[{i}].image"
    if len(data) > limits.max_image_bytes:
        raise APIError(413, "upload_too_large", f"{what} is over the limit of {limits.max_image_bytes} bytes")
    try:
        return inspect_image(data, limits.max_pixels)
    except APIError as err:
        raise APIError(err.status, err.code, f"{what}: {err.detail}") from None


def check_predict_body(body: bytes, request_model: type[BaseModel], limits: PredictLimits) -> list[CheckedInstance]:
    """The instances of a predict body, each image checked, or the error that refuses the request.
    Blocking (JSON, base64, image headers): run it in a worker thread."""
    try:
        parsed = request_model.model_validate_json(body)
    except ValidationError as err:
        # The same handler as FastAPI's own body validation: 400 for bad JSON, 422 for bad values.
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in
                                      err.errors(include_url=False, include_input=False)]) from None
    checked = []
    for i, inst in enumerate(parsed.instances):
        width, height = _check_image(i, inst.image, limits)
        checked.append(CheckedInstance(inst.image, inst.layers, inst.resolution, width, height))
    return checked


class ResourceIdConvertor(StringConvertor):
    """A path segment of a resource name: no "/" and no ":", so the endpoint resource's `{endpoint}`
    never swallows ":predict" (else `OPTIONS …:predict` would be matched by the GET route)."""

    regex = "[^/:]+"


register_url_convertor("resource_id", ResourceIdConvertor())
ENDPOINT_PATH = ("/v1/projects/{project:resource_id}/locations/{location:resource_id}"
                 "/endpoints/{endpoint:resource_id}")
ResourceId = Annotated[str, Path(pattern=r"^[^/:]+$", examples=["local"])]
# 404: a path segment that is not a resource name (it holds ":") matches no route.
PREDICT_STATUSES = (400, 401, 404, 413, 415, 422, 429, 500, 503, 504)


class EndpointResource(BaseModel):
    """The parts of Vertex's Endpoint resource the SDK reads before its first predict."""

    name: str
    displayName: str
    createTime: str
    updateTime: str
    deployedModels: list[dict[str, str]]
    trafficSplit: dict[str, int]


def endpoint_resource(project: str, location: str, endpoint: str, deployed_model_id: str,
                      display_name: str) -> EndpointResource:
    return EndpointResource(
        name=f"projects/{project}/locations/{location}/endpoints/{endpoint}",
        displayName=display_name, createTime=CREATED_AT, updateTime=CREATED_AT,
        deployedModels=[{"id": deployed_model_id,
                         "model": f"projects/{project}/locations/{location}/models/{deployed_model_id}",
                         "displayName": "qwen-image-layered", "createTime": CREATED_AT}],
        trafficSplit={deployed_model_id: 100})


# What a server brings: serve checked instances, all or none, and answer (a response model or a Response).
Serve = Callable[[list[CheckedInstance]], Awaitable[Any]]


async def in_worker_thread(fn: Callable, *args):
    return await anyio.to_thread.run_sync(fn, *args)


@dataclass
class VertexRoutes:
    """Vertex's paths on one server: AIP_PREDICT_ROUTE, the SDK's REST `…/endpoints/{e}:predict` and
    the endpoint resource the SDK reads first. Errors are Google-shaped (server.errors.render)."""

    limits: PredictLimits
    predict_route: str
    serve: Serve
    deployed_model_id: str
    display_name: str
    response_model: type[BaseModel] | None = None
    responses: dict | None = None
    dependencies: Sequence[Any] = ()          # on every route (e.g. the API key)
    predict_dependencies: Sequence[Any] = ()  # on the predict routes only (e.g. storage usable)
    statuses: Sequence[int] = PREDICT_STATUSES
    # Where the body check runs: a worker thread (a server with its own bounded pool passes that).
    off_loop: Callable[..., Awaitable[Any]] = in_worker_thread

    def __post_init__(self):
        self.request_model = predict_request_model(self.limits.max_instances)

    def body_limits(self) -> list[tuple[str, int]]:
        """(path template, bytes) for server.limits.BodyLimit."""
        return [(self.predict_route, self.limits.max_body_bytes),
                (ENDPOINT_PATH + ":predict", self.limits.max_body_bytes)]

    def router(self) -> APIRouter:
        request_model = self.request_model
        description = (f"{{\"instances\": [{{\"image\", \"layers\", \"resolution\"}}]}} → {{\"predictions\": "
                       f"[...]}}. Body at most {self.limits.max_body_bytes} bytes, at most "
                       f"{self.limits.max_instances} instances, admitted all or none.")
        # The body is read and checked by the route itself (off the event loop), so FastAPI is told its
        # schema here instead of through a body parameter (which it would parse on the loop).
        body_doc = {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{request_model.__name__}"}}}}}
        responses = {**(self.responses or {}), **doc(*self.statuses, google=True)}
        router = APIRouter(tags=["vertex"], dependencies=list(self.dependencies))

        async def predict(request: Request) -> Response:
            body = await request.body()
            instances = await self.off_loop(check_predict_body, body, request_model, self.limits)
            return await self.serve(instances)

        async def endpoint_predict(project: ResourceId, location: ResourceId, endpoint: ResourceId,
                                   request: Request) -> Response:
            return await predict(request)

        async def get_endpoint(project: ResourceId, location: ResourceId, endpoint: ResourceId) -> EndpointResource:
            """The endpoint resource the SDK reads before its first predict (it needs createTime)."""
            return endpoint_resource(project, location, endpoint, self.deployed_model_id, self.display_name)

        common = {"response_model": self.response_model, "responses": responses, "openapi_extra": body_doc,
                  "dependencies": list(self.predict_dependencies)}
        router.add_api_route(self.predict_route, predict, methods=["POST"], operation_id="vertex_predict",
                             description="AIP_PREDICT_ROUTE: " + description, **common)
        router.add_api_route(ENDPOINT_PATH, get_endpoint, methods=["GET"], operation_id="get_endpoint",
                             response_model=EndpointResource, responses=doc(401, 404, google=True))
        # The colon is part of the last path segment: Starlette matches `{endpoint}:predict` literally.
        router.add_api_route(ENDPOINT_PATH + ":predict", endpoint_predict, methods=["POST"],
                             operation_id="endpoint_predict", description="The SDK's REST predict: " + description,
                             **common)
        return router

    def add_request_schema(self, openapi: dict) -> None:
        """Put the predict request's model (and the models it uses) into the schema's components, where
        the routes' `$ref` points."""
        schema = self.request_model.model_json_schema(ref_template="#/components/schemas/{model}")
        components = openapi.setdefault("components", {}).setdefault("schemas", {})
        components.update(schema.pop("$defs", {}))
        components[self.request_model.__name__] = schema
