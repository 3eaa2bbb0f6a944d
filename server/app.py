"""The FastAPI application: routers, error handlers, and the lifespan that loads the model in the
background (so /healthz answers during a long load) and drains the worker on shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from server import errors
from server.auth import ApiKeyGuard
from server.limits import SMALL_BODY, BodyLimit
from server.routers import files, health, jobs, vertex
from server.services import Services
from server.settings import Settings

log = logging.getLogger("server")


def default_loader(settings: Settings) -> list:
    from server.model import load_model

    return [load_model(settings.model, settings.device, settings.dtype, settings.steps) for _ in range(settings.workers)]


def create_app(settings: Settings | None = None, model_loader: Callable[[Settings], list] | None = None) -> FastAPI:
    """`model_loader(settings) -> [LayeredModel, ...]` (one per worker) is injectable so tests can use a
    stand-in model; the default loads the real pipeline."""
    settings = settings or Settings()
    loader = model_loader or default_loader

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc: Services = app.state.services
        if svc.storage_error is None:  # else: not ready, and /readyz says why; nothing to load or recover
            svc.scheduler.loop = asyncio.get_running_loop()
            requeued = svc.scheduler.recover()
            if requeued:
                log.warning("re-queued %d job(s) left running by the previous process", requeued)

            def load():
                try:
                    svc.set_models(loader(settings))
                    log.info("model ready: %s", svc.model_info)
                except Exception as err:  # stays not-ready; /readyz says why
                    svc.load_error = f"{type(err).__name__}: {err}"
                    log.exception("model load failed")

            threading.Thread(target=load, name="decomposer-model-load", daemon=True).start()
        yield
        if svc.storage_error is None:
            await asyncio.to_thread(svc.scheduler.stop, settings.shutdown_grace_s)
        svc.close()

    app = FastAPI(title="decomposer-loadlab server", version="1.0",
                  description="Decomposes images into RGBA layers with QwenImageLayeredPipeline behind a FIFO job queue.",
                  lifespan=lifespan)
    app.state.services = Services(settings)
    app.state.vertex_paths = (settings.vertex_health_route, settings.vertex_predict_route)
    errors.install(app)
    app.include_router(health.build_router(settings.vertex_health_route))
    app.include_router(files.build_router(settings.max_upload_bytes))
    app.include_router(jobs.router)
    vertex_routes = vertex.build_routes(settings, app.state.services)
    app.include_router(vertex_routes.router())
    if settings.enable_fault_injection:
        from server.internal import faults

        app.include_router(faults.router)
    # The body limit of every route, in one place (bytes); anything else takes small JSON bodies at most.
    app.add_middleware(BodyLimit, default=SMALL_BODY, limits=[
        ("/api/upload", settings.max_upload_bytes + files.MULTIPART_OVERHEAD), *vertex_routes.body_limits()])
    app.add_middleware(ApiKeyGuard)  # added last, so outermost: the key is checked before the body's size
    app.openapi = lambda: _openapi(app, settings, vertex_routes)
    return app


def _openapi(app: FastAPI, settings: Settings, vertex_routes) -> dict:
    """FastAPI's schema with the predict body's models, minus the security schemes when no API key is
    configured (nothing is enforced then, and a schema that asked for a key would not be the truth)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        vertex_routes.add_request_schema(schema)
        if not settings.api_key:
            schema.get("components", {}).pop("securitySchemes", None)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation.pop("security", None)
                    operation.get("responses", {}).pop("401", None)
        app.openapi_schema = schema
    return app.openapi_schema
