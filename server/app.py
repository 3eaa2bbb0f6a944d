"""The FastAPI application: routers, error handlers, and the lifespan that loads the model in the
background (so /healthz answers during a long load) and drains the worker on shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from server import errors
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
    settings = settings or Settings.from_env()
    loader = model_loader or default_loader

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc: Services = app.state.services
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
        await asyncio.to_thread(svc.scheduler.stop, settings.shutdown_grace_s)
        svc.store.close()

    app = FastAPI(title="decomposer-loadlab server", version="1.0",
                  description="Decomposes images into RGBA layers with QwenImageLayeredPipeline behind a FIFO job queue.",
                  lifespan=lifespan)
    app.state.services = Services(settings)
    app.state.vertex_paths = (settings.vertex_health_route, settings.vertex_predict_route)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(files.router)
    app.include_router(jobs.router)
    app.include_router(vertex.build_router(settings.vertex_health_route, settings.vertex_predict_route))
    if settings.enable_fault_injection:
        app.include_router(vertex.faults_router)
    return app
