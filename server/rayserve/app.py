"""The Ray Serve application: a FastAPI ingress with the Vertex prediction contract of
`server.vertex_contract` (the job server's routes, limits, checks and Google-style errors), forwarding
each instance to the autoscaled `LayeredModel` deployment (one pipeline per replica, one call at a time).

The model deployment is the one that autoscales: the ingress calls it through a DeploymentHandle, so
requests wait in the handle's router (counted by the autoscaler as queued, held while the deployment
is at zero replicas) rather than in the ingress or the proxy; that wait is bounded by Ray Serve's
`max_queued_requests`, and a request past it is answered 429 with Retry-After. Every answer carries the
serving replica, its queue and model time, and whether it was that replica's first request (`HEADERS`).

No `from __future__ import annotations` here: Serve pickles the ingress class by value, and FastAPI must
find each route's annotations as objects, not as names to look up."""

import asyncio
import base64
import contextlib
import io
import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.exceptions import BackPressureError

from server import errors
from server.errors import APIError
from server.limits import SMALL_BODY, BodyLimit
from server.rayserve.options import (
    APP_NAME,
    INGRESS_DEPLOYMENT,
    MODEL_DEPLOYMENT,
    STARTUP_LOG_PREFIX,
    ServeOptions,
)
from server.vertex_contract import CheckedInstance, VertexRoutes

log = logging.getLogger("ray.serve")
DEPLOYED_MODEL_ID = "rayserve"
# Response headers. With several instances in one request, each holds a comma-separated list in
# instance order.
HEADERS = {
    "replica_id": "X-Replica-Id",        # Serve replica unique id (= the recorder's replica_id)
    "replica_pid": "X-Replica-Pid",
    "queue_s": "X-Queue-S",              # ingress received the request -> the replica began it
    "model_s": "X-Model-S",              # the pipeline call alone
    "cold_start": "X-Cold-Start",        # "1": the replica's first request
}


@serve.deployment(name=MODEL_DEPLOYMENT)
class ModelReplica:
    """One replica: the pipeline loaded once, calls run one at a time on a single worker thread (the
    event loop stays free for Serve's health checks and metrics during a long call)."""

    def __init__(self, source: str, device: str, dtype: str, steps: int | None, torch_threads: int):
        # A start-up's parts differ by machine and model: on a CPU with the tiny model the imports
        # dominate, with the real weights the load does. The stamps go to this replica's log.
        init_at = time.time()
        import torch

        torch.set_num_threads(torch_threads)
        from diffusers import QwenImageLayeredPipeline  # noqa: F401  the loader's own import, timed as one

        from server.model import load_model

        imported_at = time.time()
        self.model = load_model(source, device, dtype, steps)
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self.pid = os.getpid()
        self.served = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self.ready_at = time.time()
        log.info(STARTUP_LOG_PREFIX + json.dumps({"init_at": init_at, "imported_at": imported_at,
                                                  "load_s": self.model.load_s, "ready_at": self.ready_at}))

    async def predict(self, image: bytes, layers: int, resolution: int) -> dict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._run, image, layers, resolution)

    def _run(self, image: bytes, layers: int, resolution: int) -> dict:
        """On the pipeline thread: `started_at` is when this request's turn came (with
        max_ongoing_requests > 1, requests also wait here, inside the replica)."""
        from PIL import Image

        started = time.time()
        cold = self.served == 0
        self.served += 1
        with Image.open(io.BytesIO(image)) as im:
            im.load()
            rgba = im.convert("RGBA")
        t0 = time.perf_counter()
        out = self.model.decompose(rgba, layers, resolution)
        model_s = time.perf_counter() - t0
        pngs = []
        for layer in out:
            buf = io.BytesIO()
            layer.save(buf, format="PNG")
            pngs.append(buf.getvalue())
        return {"layers": pngs, "started_at": started, "model_s": model_s, "replica_id": self.replica_id,
                "replica_pid": self.pid, "cold_start": cold, "replica_load_s": self.model.load_s,
                "replica_ready_at": self.ready_at}


@serve.deployment(name=INGRESS_DEPLOYMENT)
@serve.ingress()
class VertexIngress:
    """The HTTP surface (FastAPI, built on the replica): Vertex's predict/health routes, the SDK's REST
    paths and readiness. It holds no model and does no waiting of its own."""

    def __init__(self, model, options: ServeOptions):
        self.model = model
        self.options = options
        self.started_at = time.time()
        self.mean_model_s: float | None = None  # of the answers so far, for Retry-After

    async def _serve(self, instances: list[CheckedInstance]) -> JSONResponse:
        received = time.time()
        responses = []
        try:
            # `.remote()` itself may refuse (the handle's queue full), so it is inside the try too.
            for inst in instances:
                responses.append(self.model.predict.remote(inst.image, inst.layers, inst.resolution))
            results = await asyncio.wait_for(asyncio.gather(*responses), self.options.timeout_s)
        except Exception as err:
            _cancel(responses)
            raise self._error(err) from None
        return self._answer(results, received)

    def _error(self, err: Exception) -> APIError:
        """What a failed prediction answers; the cause goes to the replica's log, never to the caller
        (Ray's errors hold tracebacks, paths, pids and actor ids)."""
        if isinstance(err, BackPressureError):
            queued, limit = err.args[:2]  # (num_queued_requests, max_queued_requests), its only record of them
            retry_after = self._retry_after_s(queued)
            return APIError(429, "queue_full", f"{queued} requests are queued, the limit is {limit}; "
                            f"retry after about {retry_after} s",
                            headers={"Retry-After": str(retry_after)})
        if isinstance(err, asyncio.TimeoutError):
            return APIError(504, "timeout", f"the prediction did not finish in {self.options.timeout_s:g} s")
        log.error("prediction failed: %r", err)
        return APIError(500, "job_failed", f"the prediction failed on a model replica ({type(err).__name__})")

    def _retry_after_s(self, queued: int) -> int:
        """The queue ahead drained by the replicas at the mean model time seen so far (1 s before any)."""
        per_job = self.mean_model_s or 1.0
        return max(1, math.ceil(queued * per_job / max(1, self.options.autoscaling.max_replicas)))

    def _answer(self, results: list[dict], received: float) -> JSONResponse:
        predictions, columns = [], {key: [] for key in HEADERS}
        for r in results:
            self.mean_model_s = r["model_s"] if self.mean_model_s is None else \
                0.8 * self.mean_model_s + 0.2 * r["model_s"]
            queue_s = max(0.0, r["started_at"] - received)
            predictions.append({
                "layers": [base64.b64encode(p).decode("ascii") for p in r["layers"]],
                "timings": {"queue_s": queue_s, "inference_s": r["model_s"]},
                "cached": False, "replica_id": r["replica_id"], "replica_pid": r["replica_pid"],
                "cold_start": r["cold_start"], "replica_load_s": r["replica_load_s"],
                "replica_ready_at": r["replica_ready_at"],
            })
            values = {"replica_id": r["replica_id"], "replica_pid": str(r["replica_pid"]),
                      "queue_s": f"{queue_s:.6f}", "model_s": f"{r['model_s']:.6f}",
                      "cold_start": "1" if r["cold_start"] else "0"}
            for key in HEADERS:
                columns[key].append(values[key])
        headers = {HEADERS[key]: ",".join(vals) for key, vals in columns.items()}
        return JSONResponse({"predictions": predictions, "deployedModelId": DEPLOYED_MODEL_ID}, headers=headers)

    def _ready(self) -> dict:
        return {"ready": True, "app": APP_NAME, "deployment": MODEL_DEPLOYMENT, "model": self.options.model,
                "device": self.options.device, "autoscaling": self.options.autoscaling_config(),
                "max_ongoing_requests": self.options.autoscaling.max_ongoing_requests,
                "max_queued_requests": self.options.max_queued_requests, "ingress_started_at": self.started_at,
                **self.options.extra}

    def __serve_build_asgi_app__(self):
        api = FastAPI(title="decomposer-loadlab on Ray Serve", docs_url=None, redoc_url=None)
        api.state.google_errors = True  # every path answers in Google's shape, an unknown one too
        errors.install(api)
        routes = VertexRoutes(limits=self.options.predict_limits(), predict_route=self.options.predict_route,
                              serve=self._serve, deployed_model_id=DEPLOYED_MODEL_ID,
                              display_name="decomposer-loadlab-rayserve")
        api.include_router(routes.router())
        api.add_middleware(BodyLimit, default=SMALL_BODY, limits=routes.body_limits())

        async def ready():
            """Ready once the ingress is up: at zero model replicas a prediction is held, not refused."""
            return self._ready()

        async def health():
            return {"ready": True}

        api.add_api_route(self.options.health_route, health, methods=["GET"])
        api.add_api_route("/readyz", ready, methods=["GET"])
        api.add_api_route("/healthz", health, methods=["GET"])
        return api


def _cancel(responses: list) -> None:
    """One instance refused or failed: the others would be served for nobody. Ray's `cancel()` re-raises
    a response's own error (the refusal itself, among them), which is already being answered."""
    for response in responses:
        with contextlib.suppress(Exception):
            response.cancel()


def build_app(options: ServeOptions, source: str):
    """The bound application: the autoscaled model deployment behind one ingress replica. `source` is
    the resolved model (a directory or hub id every node can load)."""
    model = ModelReplica.options(
        autoscaling_config=options.autoscaling_config(),
        max_ongoing_requests=options.autoscaling.max_ongoing_requests,
        max_queued_requests=options.max_queued_requests,
        ray_actor_options=options.ray_actor_options(),
        graceful_shutdown_timeout_s=options.autoscaling.graceful_shutdown_timeout_s,
    ).bind(source, options.device, options.dtype, options.steps, options.torch_threads)
    # One ingress replica that takes no CPU slot (the model replicas get them all) and never queues:
    # requests must wait in the model handle's router, where the autoscaler counts them.
    return VertexIngress.options(
        num_replicas=1, max_ongoing_requests=100_000, ray_actor_options={"num_cpus": 0},
    ).bind(model, options)
