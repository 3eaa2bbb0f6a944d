"""The Ray Serve application: a FastAPI ingress with the Vertex prediction contract, forwarding each
instance to the autoscaled `LayeredModel` deployment (one pipeline per replica, one call at a time).

The model deployment is the one that autoscales: the ingress calls it through a DeploymentHandle, so
requests wait in the handle's router (counted by the autoscaler as queued, held while the deployment
is at zero replicas) rather than in the ingress or the proxy. Every answer carries the serving
replica, its queue and model time, and whether it was that replica's first request (`HEADERS`).

No `from __future__ import annotations` here: Serve pickles the ingress class by value, and FastAPI must
find `Request` in each route's annotations as an object, not as a name to look up."""

import asyncio
import base64
import binascii
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from server.model import MAX_LAYERS, MIN_LAYERS, RESOLUTION_BUCKETS
from server.rayserve.options import APP_NAME, INGRESS_DEPLOYMENT, MODEL_DEPLOYMENT, ServeOptions

DEPLOYED_MODEL_ID = "rayserve"
CREATED_AT = "2026-01-01T00:00:00Z"
# Response headers. With several instances in one request, each holds a comma-separated list in
# instance order.
HEADERS = {
    "replica_id": "X-Replica-Id",        # Serve replica unique id (= the recorder's replica_id)
    "replica_pid": "X-Replica-Pid",
    "queue_s": "X-Queue-S",              # ingress received the request -> the replica began it
    "model_s": "X-Model-S",              # the pipeline call alone
    "cold_start": "X-Cold-Start",        # "1": the replica's first request
}
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "INVALID_ARGUMENT", 500: "INTERNAL",
                 503: "UNAVAILABLE"}


class PredictError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@serve.deployment(name=MODEL_DEPLOYMENT)
class ModelReplica:
    """One replica: the pipeline loaded once, calls run one at a time on a single worker thread (the
    event loop stays free for Serve's health checks and metrics during a long call)."""

    def __init__(self, source: str, device: str, dtype: str, steps: int | None, torch_threads: int):
        import torch

        torch.set_num_threads(torch_threads)
        from server.model import load_model

        self.model = load_model(source, device, dtype, steps)
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self.pid = os.getpid()
        self.served = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self.ready_at = time.time()

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


def _check_instance(i: int, inst: object, max_bytes: int) -> tuple[bytes, int, int]:
    """(image bytes, layers, resolution) of one Vertex instance, or a 400 naming what is wrong."""
    if not isinstance(inst, dict) or "image" not in inst:
        raise PredictError(400, f"instances[{i}] must be an object with an 'image' (base64)")
    try:
        # protobuf Struct turns ints into floats on the SDK's way here
        layers, resolution = int(inst.get("layers", 5)), int(inst.get("resolution", 1024))
    except (TypeError, ValueError):
        raise PredictError(400, f"instances[{i}].layers and .resolution must be integers") from None
    if not MIN_LAYERS <= layers <= MAX_LAYERS:
        raise PredictError(400, f"instances[{i}].layers must be between {MIN_LAYERS} and {MAX_LAYERS}")
    if resolution not in RESOLUTION_BUCKETS:
        raise PredictError(400, f"instances[{i}].resolution must be one of {list(RESOLUTION_BUCKETS)}")
    try:
        data = base64.b64decode(inst["image"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise PredictError(400, f"instances[{i}].image is not valid base64") from None
    if len(data) > max_bytes:
        raise PredictError(413, f"instances[{i}].image is over {max_bytes} bytes")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise PredictError(400, f"instances[{i}].image is not a readable image: {err}") from None
    return data, layers, resolution


def _endpoint_resource(project: str, location: str, endpoint: str) -> dict:
    name = f"projects/{project}/locations/{location}/endpoints/{endpoint}"
    return {"name": name, "displayName": "decomposer-loadlab-rayserve", "createTime": CREATED_AT,
            "updateTime": CREATED_AT,
            "deployedModels": [{"id": DEPLOYED_MODEL_ID, "model": f"projects/{project}/locations/{location}"
                                f"/models/{DEPLOYED_MODEL_ID}", "displayName": "qwen-image-layered-rayserve",
                                "createTime": CREATED_AT}],
            "trafficSplit": {DEPLOYED_MODEL_ID: 100}}


@serve.deployment(name=INGRESS_DEPLOYMENT)
@serve.ingress()
class VertexIngress:
    """The HTTP surface (FastAPI, built on the replica): Vertex's predict/health routes, the SDK's REST
    paths and readiness. It holds no model and does no waiting of its own."""

    def __init__(self, model, options: ServeOptions):
        self.model = model
        self.options = options
        self.started_at = time.time()

    async def _predict(self, body: object):
        received = time.time()
        try:
            if not isinstance(body, dict) or not isinstance(body.get("instances"), list) \
                    or not body["instances"]:
                raise PredictError(400, "body must be {\"instances\": [ ... ]} with at least one instance")
            max_bytes = int(self.options.max_upload_mb * 1_000_000)
            checked = [_check_instance(i, inst, max_bytes) for i, inst in enumerate(body["instances"])]
        except PredictError as err:
            return _google_error(err.status, err.message)
        try:
            results = await asyncio.gather(*(self.model.predict.remote(data, layers, resolution)
                                             for data, layers, resolution in checked))
        except Exception as err:  # noqa: BLE001 - a replica error becomes Vertex's 500
            return _google_error(500, f"prediction failed: {type(err).__name__}: {err}")
        predictions, columns = [], {key: [] for key in HEADERS}
        for r in results:
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
                "max_ongoing_requests": self.options.max_ongoing_requests, "ingress_started_at": self.started_at,
                **self.options.extra}

    def __serve_build_asgi_app__(self):
        # Route signatures are resolved from this module's globals (postponed annotations), so
        # FastAPI and Request are imported at module level.
        api = FastAPI(title="decomposer-loadlab on Ray Serve", docs_url=None, redoc_url=None)

        async def predict(request: Request):
            try:
                body = await request.json()
            except ValueError:
                return _google_error(400, "body is not JSON")
            return await self._predict(body)

        async def ready():
            """Ready once the ingress is up: at zero model replicas a prediction is held, not refused."""
            return self._ready()

        async def health():
            return {"ready": True}

        async def get_endpoint(project: str, location: str, endpoint: str):
            return _endpoint_resource(project, location, endpoint)

        async def endpoint_predict(project: str, location: str, endpoint: str, request: Request):
            return await predict(request)

        api.add_api_route(self.options.predict_route, predict, methods=["POST"])
        api.add_api_route(self.options.health_route, health, methods=["GET"])
        api.add_api_route("/readyz", ready, methods=["GET"])
        api.add_api_route("/healthz", health, methods=["GET"])
        api.add_api_route("/v1/projects/{project}/locations/{location}/endpoints/{endpoint}", get_endpoint,
                          methods=["GET"])
        # The colon is a literal inside the last path segment, as in server/routers/vertex.py.
        api.add_api_route("/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:predict",
                          endpoint_predict, methods=["POST"])
        return api


def _google_error(status: int, message: str):
    return JSONResponse({"error": {"code": status, "message": message,
                                   "status": GOOGLE_STATUS.get(status, "UNKNOWN")}}, status_code=status)


def build_app(options: ServeOptions, source: str):
    """The bound application: the autoscaled model deployment behind one ingress replica. `source` is
    the resolved model (a directory or hub id every node can load)."""
    model = ModelReplica.options(
        autoscaling_config=options.autoscaling_config(),
        max_ongoing_requests=options.max_ongoing_requests,
        ray_actor_options=options.ray_actor_options(),
        graceful_shutdown_timeout_s=options.graceful_shutdown_timeout_s,
    ).bind(source, options.device, options.dtype, options.steps, options.torch_threads)
    # One ingress replica that takes no CPU slot (the model replicas get them all) and never queues:
    # requests must wait in the model handle's router, where the autoscaler counts them.
    return VertexIngress.options(
        num_replicas=1, max_ongoing_requests=100_000, ray_actor_options={"num_cpus": 0},
    ).bind(model, options)
