"""`VertexAIClient`: a Vertex AI online-prediction endpoint behind `decompose_image`, through the real
google-cloud-aiplatform SDK (REST transport by default).

Request: `{"instances": [{"image": <base64>, "layers": N, "resolution": R}]}`; response
`{"predictions": [{"layers": [<base64 PNG>, ...], "timings": {...}, "cached": bool}]}`; a replicated target
(`server/rayserve`) adds `replica_id` and `cold_start` (the replica's first request) to each prediction,
which the result carries as `replica_id` and `first_on_replica`.

Two call paths, both retried by `google.api_core.retry.Retry` (exponential backoff with jitter, overall
deadline) on 429 `TooManyRequests`, 503 `ServiceUnavailable`, 504 `DeadlineExceeded`:
- `api="gapic"` (default): the low-level `aiplatform_v1.PredictionServiceClient.predict`, built per client
  (no global state, so several clients with different endpoints can live in one process).
- `api="endpoint"`: the article's call, `aiplatform.init(...)` then `aiplatform.Endpoint(name).predict`
  (its first call GETs the endpoint resource); `Endpoint.predict` takes only `timeout`, so the `Retry`
  wraps the bound method. `aiplatform.init` is process-global: use one endpoint per process in this mode.

Facts that shaped it (google-cloud-aiplatform 2.7.0): `api_endpoint` needs the `http://` scheme for plain
HTTP (otherwise https is forced); values cross protobuf `Struct`, so ints arrive as floats; `raw_predict`
always goes to Google's host, so it is not used. Payload limits: 1.5 MB per request on a shared public
endpoint, 10 MB on a dedicated/private one; the encoded request is measured before sending and either
re-encoded (downscale to `resolution`, JPEG quality steps) or refused with an error naming the limit.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from clients.base import (
    ClientError,
    DecomposeResult,
    JobFailedError,
    RejectedError,
    TargetTimeoutError,
    TargetUnavailableError,
)
from clients.images import decode_layer, reencode_to_fit

MB = 1_000_000  # Google states the limits in MB; decimal is the conservative reading
PAYLOAD_LIMIT_MB = {"shared": 1.5, "dedicated": 10.0}
DEFAULT_PROJECT, DEFAULT_LOCATION, DEFAULT_ENDPOINT_ID = "loadlab", "us-central1", "local"


class PayloadTooLargeError(ClientError):
    """The encoded request is over the endpoint's payload limit (oversize_policy="error" or re-encoding
    could not make it fit)."""


def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _is_local(host: str) -> bool:
    parsed = urlparse(host if "://" in host else "//" + host)
    return parsed.scheme == "http" or (parsed.hostname or "") in ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def _maybe_init_gevent_grpc() -> None:
    """gRPC under gevent (Locust) needs grpc's gevent integration after monkey-patching (locust #2339)."""
    try:
        from gevent import monkey
    except ImportError:
        return
    if monkey.is_module_patched("socket"):
        import grpc.experimental.gevent as grpc_gevent

        grpc_gevent.init_gevent()


class VertexAIClient:
    """Client of a Vertex AI endpoint (or of our server's Vertex-compatible routes).

    Every argument falls back to the environment, then to a default:
    project `GOOGLE_CLOUD_PROJECT` ("loadlab"), location `VERTEX_LOCATION` / `GOOGLE_CLOUD_REGION`
    ("us-central1"), endpoint_id `VERTEX_ENDPOINT_ID` ("local"), api_endpoint `VERTEX_API_ENDPOINT`
    ("{location}-aiplatform.googleapis.com"; "http://127.0.0.1:PORT" for our server — a bare
    "127.0.0.1:PORT" gets http:// added), transport `VERTEX_TRANSPORT` ("rest" | "grpc"),
    api `VERTEX_API` ("gapic" | "endpoint"), timeout_s `VERTEX_TIMEOUT_S` (per attempt, 120),
    deadline_s `VERTEX_DEADLINE_S` (all attempts, 300), endpoint_type `VERTEX_ENDPOINT_TYPE`
    ("shared" → 1.5 MB, "dedicated" → 10 MB) or payload_limit_mb `VERTEX_PAYLOAD_LIMIT_MB`,
    oversize_policy `VERTEX_OVERSIZE_POLICY` ("reencode" | "error"), image_format `VERTEX_IMAGE_FORMAT`
    ("original": the file's bytes as they are; "jpeg": always re-encode as JPEG like the article's client).
    credentials: default `AnonymousCredentials` for a local/http endpoint, else Application Default
    Credentials. retry_timeouts: also retry a per-attempt client timeout (off: the job may still be
    running on the replica, and a retry would queue it twice)."""

    name = "vertex"

    def __init__(self, project: str | None = None, location: str | None = None, endpoint_id: str | None = None,
                 api_endpoint: str | None = None, credentials: Any = None, *, transport: str | None = None,
                 api: str | None = None, timeout_s: float | None = None, deadline_s: float | None = None,
                 initial_backoff_s: float = 0.5, max_backoff_s: float = 10.0, backoff_multiplier: float = 2.0,
                 endpoint_type: str | None = None, payload_limit_mb: float | None = None,
                 oversize_policy: str | None = None, image_format: str | None = None,
                 retry_timeouts: bool = False, name: str | None = None):
        self.project = project or _env("GOOGLE_CLOUD_PROJECT", DEFAULT_PROJECT)
        self.location = location or _env("VERTEX_LOCATION") or _env("GOOGLE_CLOUD_REGION", DEFAULT_LOCATION)
        self.endpoint_id = str(endpoint_id or _env("VERTEX_ENDPOINT_ID", DEFAULT_ENDPOINT_ID))
        api_endpoint = api_endpoint or _env("VERTEX_API_ENDPOINT") or f"{self.location}-aiplatform.googleapis.com"
        api_endpoint = api_endpoint.rstrip("/")
        if "://" not in api_endpoint and _is_local(api_endpoint):
            api_endpoint = "http://" + api_endpoint
        self.api_endpoint = api_endpoint
        self.transport = (transport or _env("VERTEX_TRANSPORT", "rest")).lower()
        if self.transport not in ("rest", "grpc"):
            raise ValueError(f"transport must be 'rest' or 'grpc', not {self.transport!r}")
        self.api = (api or _env("VERTEX_API", "gapic")).lower()
        if self.api not in ("gapic", "endpoint"):
            raise ValueError(f"api must be 'gapic' or 'endpoint', not {self.api!r}")
        self.timeout_s = float(timeout_s or _env("VERTEX_TIMEOUT_S", 120.0))
        self.deadline_s = float(deadline_s or _env("VERTEX_DEADLINE_S", 300.0))
        self.initial_backoff_s, self.max_backoff_s = initial_backoff_s, max_backoff_s
        self.backoff_multiplier = backoff_multiplier
        self.endpoint_type = (endpoint_type or _env("VERTEX_ENDPOINT_TYPE", "shared")).lower()
        if payload_limit_mb is None:
            env_limit = _env("VERTEX_PAYLOAD_LIMIT_MB")
            if env_limit is not None:
                payload_limit_mb = float(env_limit)
            elif self.endpoint_type in PAYLOAD_LIMIT_MB:
                payload_limit_mb = PAYLOAD_LIMIT_MB[self.endpoint_type]
            else:
                raise ValueError(f"endpoint_type must be one of {sorted(PAYLOAD_LIMIT_MB)}")
        self.payload_limit_mb = float(payload_limit_mb)
        self.payload_limit_bytes = int(self.payload_limit_mb * MB)
        self.oversize_policy = (oversize_policy or _env("VERTEX_OVERSIZE_POLICY", "reencode")).lower()
        if self.oversize_policy not in ("reencode", "error"):
            raise ValueError(f"oversize_policy must be 'reencode' or 'error', not {self.oversize_policy!r}")
        self.image_format = (image_format or _env("VERTEX_IMAGE_FORMAT", "original")).lower()
        self.retry_timeouts = retry_timeouts
        if name:
            self.name = name
        if credentials is None and _is_local(self.api_endpoint):
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
        self.credentials = credentials
        self.endpoint_name = (f"projects/{self.project}/locations/{self.location}/endpoints/{self.endpoint_id}")
        self._client = None
        self._endpoint = None
        self._lock = threading.Lock()
        self.last_request_info: dict[str, Any] = {}
        self._import_sdk()

    def _import_sdk(self) -> None:
        """Import the SDK's modules now, once a process: built lazily, they were imported inside the first
        request (0.74 s here) and counted as its latency, a load generator's cost and not the endpoint's
        (the demo's first Vertex burst job: 0.87 s from its answer to its layers, the next ones 0.17 s).
        The objects themselves (credentials, the endpoint's GET) still wait for first use."""
        if self.api == "endpoint":
            import google.cloud.aiplatform  # noqa: F401
        else:
            import google.cloud.aiplatform_v1  # noqa: F401

    # --- SDK objects, built on first use ------------------------------------------------------------

    def _client_options(self) -> dict[str, str]:
        endpoint = self.api_endpoint
        if self.transport == "grpc" and "://" in endpoint:
            endpoint = endpoint.split("://", 1)[1]  # grpc takes host:port
        return {"api_endpoint": endpoint}

    def prediction_client(self):
        """The low-level `PredictionServiceClient` (gapic)."""
        with self._lock:
            if self._client is None:
                from google.cloud.aiplatform_v1 import PredictionServiceClient

                if self.transport == "grpc":
                    _maybe_init_gevent_grpc()
                    if _is_local(self.api_endpoint):
                        import grpc
                        from google.cloud.aiplatform_v1.services.prediction_service.transports import (
                            PredictionServiceGrpcTransport,
                        )

                        host = self._client_options()["api_endpoint"]
                        transport = PredictionServiceGrpcTransport(channel=grpc.insecure_channel(host))
                        self._client = PredictionServiceClient(transport=transport)
                        return self._client
                self._client = PredictionServiceClient(credentials=self.credentials, transport=self.transport,
                                                       client_options=self._client_options())
            return self._client

    def endpoint(self):
        """The article's `aiplatform.Endpoint(NAME)`, after `aiplatform.init(...)` for this target."""
        with self._lock:
            if self._endpoint is None:
                from google.cloud import aiplatform

                if self.transport == "grpc":
                    _maybe_init_gevent_grpc()
                aiplatform.init(project=self.project, location=self.location, credentials=self.credentials,
                                api_endpoint=self._client_options()["api_endpoint"], api_transport=self.transport)
                self._endpoint = aiplatform.Endpoint(self.endpoint_name)
            return self._endpoint

    # --- request building ---------------------------------------------------------------------------

    def request_size(self, image_b64: str, num_layers: int, resolution: int) -> int:
        """Bytes of the JSON body the REST transport sends for one instance."""
        body = {"instances": [{"image": image_b64, "layers": num_layers, "resolution": resolution}]}
        return len(json.dumps(body, separators=(",", ":")))

    def encode_image(self, image_path: str, num_layers: int, resolution: int) -> tuple[str, dict]:
        """The base64 image for the request, within the payload limit (per the oversize policy)."""
        raw = Path(image_path).read_bytes()
        info: dict[str, Any] = {"original_bytes": len(raw), "reencoded": False,
                                "limit_bytes": self.payload_limit_bytes}

        def fits(data: bytes) -> bool:
            return self.request_size(base64.b64encode(data).decode("ascii"), num_layers, resolution) \
                <= self.payload_limit_bytes

        if self.image_format == "jpeg" and not raw[:3] == b"\xff\xd8\xff":
            raw, extra = reencode_to_fit(raw, max(4096, resolution), lambda _d: True, qualities=(95,))
            info.update(extra)
        b64 = base64.b64encode(raw).decode("ascii")
        size = self.request_size(b64, num_layers, resolution)
        if size > self.payload_limit_bytes:
            limit = (f"{self.payload_limit_mb:g} MB ({self.payload_limit_bytes} bytes, "
                     f"{self.endpoint_type} endpoint)")
            if self.oversize_policy == "error":
                raise PayloadTooLargeError(
                    f"{self.name}: request for {Path(image_path).name} is {size} bytes after base64, over the "
                    f"payload limit of {limit}; use oversize_policy='reencode' or a dedicated endpoint (10 MB)",
                    status=413)
            try:
                raw, extra = reencode_to_fit(raw, resolution, fits)
            except ValueError as err:
                raise PayloadTooLargeError(f"{self.name}: {Path(image_path).name} cannot be re-encoded under "
                                           f"the payload limit of {limit}: {err}", status=413) from err
            info.update(extra)
            b64 = base64.b64encode(raw).decode("ascii")
            info["original_request_bytes"] = size
            size = self.request_size(b64, num_layers, resolution)
        info["request_bytes"] = size
        return b64, info

    # --- the call -----------------------------------------------------------------------------------

    def _retry(self, counter: list[Exception]):
        from google.api_core import exceptions as gexc
        from google.api_core import retry as gretry

        retryable: tuple[type[BaseException], ...] = (gexc.TooManyRequests, gexc.ServiceUnavailable,
                                                      gexc.DeadlineExceeded)
        if self.retry_timeouts:
            import requests

            retryable += (requests.exceptions.Timeout,)
        def predicate(err: Exception) -> bool:
            # gRPC reports a refused connection as UNAVAILABLE (503); REST raises ConnectionError, which is
            # not retried. Treat both alike: a dead target fails fast (the fallback client moves on).
            if isinstance(err, gexc.ServiceUnavailable) and "failed to connect" in str(err.message):
                return False
            return isinstance(err, retryable)

        return gretry.Retry(predicate=predicate, initial=self.initial_backoff_s,
                            maximum=self.max_backoff_s, multiplier=self.backoff_multiplier,
                            timeout=self.deadline_s, on_error=counter.append)

    def predict(self, instances: list[dict], counter: list[Exception] | None = None) -> tuple[list[Any], str]:
        """Raw predict with retries: (predictions as Python values, deployed model id). Errors map to the
        contract's exceptions; `counter` collects the errors that were retried."""
        counter = counter if counter is not None else []
        retry = self._retry(counter)
        try:
            if self.api == "endpoint":
                endpoint = self.endpoint()
                result = retry(endpoint.predict)(instances=instances, timeout=self.timeout_s)
                return list(result.predictions), str(result.deployed_model_id or "")
            from google.protobuf import json_format, struct_pb2

            values = [json_format.ParseDict(i, struct_pb2.Value()) for i in instances]
            response = self.prediction_client().predict(endpoint=self.endpoint_name, instances=values,
                                                        retry=retry, timeout=self.timeout_s)
            predictions = [_plain(p) for p in response.predictions]
            return predictions, str(response.deployed_model_id or "")
        except Exception as err:  # noqa: BLE001 - mapped to the contract below
            raise self._map_error(err, counter) from err

    def _map_error(self, err: Exception, counter: list[Exception]) -> Exception:
        from google.api_core import exceptions as gexc

        retried = f" after {len(counter)} retries" if counter else ""
        cause = err
        if isinstance(err, gexc.RetryError):
            cause = err.cause or (counter[-1] if counter else err)
            retried = f" (retry deadline of {self.deadline_s:g} s passed after {len(counter)} retries)"
        where = f"{self.name} {self.api_endpoint} {self.endpoint_name}"
        if isinstance(cause, gexc.TooManyRequests):
            return RejectedError(f"{where}: 429 Too Many Requests{retried}: {cause.message}", status=429)
        if isinstance(cause, gexc.DeadlineExceeded):
            return TargetTimeoutError(f"{where}: deadline exceeded{retried}: {cause.message}", status=504)
        if isinstance(cause, gexc.InternalServerError):
            # 500 from predict: the serving container raised (our server: the job failed in the pipeline)
            return JobFailedError(f"{where}: HTTP 500{retried}: {cause.message}", status=500)
        if isinstance(cause, gexc.ServiceUnavailable | gexc.ServerError):
            return TargetUnavailableError(f"{where}: HTTP {cause.code}{retried}: {cause.message}",
                                          status=getattr(cause, "code", 503))
        if isinstance(cause, gexc.GoogleAPICallError):
            code = getattr(cause, "code", None)
            status = int(code) if isinstance(code, int) else None
            return ClientError(f"{where}: HTTP {status}: {cause.message}", status=status)
        try:
            import requests

            if isinstance(cause, requests.exceptions.ConnectTimeout):
                return TargetUnavailableError(f"{where}: cannot connect: {cause}")
            if isinstance(cause, requests.exceptions.Timeout):
                return TargetTimeoutError(f"{where}: no answer within the per-request timeout of "
                                          f"{self.timeout_s:g} s{retried}")
            if isinstance(cause, requests.exceptions.ConnectionError):
                return TargetUnavailableError(f"{where}: cannot connect: {cause}")
        except ImportError:
            pass
        if type(cause).__module__.startswith("grpc") or "grpc" in type(cause).__name__.lower():
            return TargetUnavailableError(f"{where}: {cause}")
        return ClientError(f"{where}: {type(cause).__name__}: {cause}")

    def decompose_image(self, image_path: str, num_layers: int, resolution: int) -> DecomposeResult:
        submitted_at = time.time()
        t0 = time.perf_counter()
        b64, info = self.encode_image(image_path, int(num_layers), int(resolution))
        instance = {"image": b64, "layers": int(num_layers), "resolution": int(resolution)}
        t_encoded = time.perf_counter()
        counter: list[Exception] = []
        predictions, deployed_model_id = self.predict([instance], counter)
        t_answered = time.perf_counter()
        if not predictions:
            raise JobFailedError(f"{self.name}: empty predictions from {self.endpoint_name}")
        prediction = predictions[0]
        if not isinstance(prediction, dict) or "layers" not in prediction:
            error = prediction.get("error") if isinstance(prediction, dict) else None
            raise JobFailedError(f"{self.name}: prediction without layers: {error or str(prediction)[:200]}")
        layers = [decode_layer(base64.b64decode(b)) for b in prediction["layers"]]
        t_end = time.perf_counter()
        if len(layers) != int(num_layers):
            raise ClientError(f"{self.name}: {len(layers)} layers returned, asked {num_layers}")
        timings = prediction.get("timings") or {}
        queue_s, inference_s = timings.get("queue_s"), timings.get("inference_s")
        server_s = (queue_s or 0.0) + (inference_s or 0.0)
        self.last_request_info = {**info, "deployed_model_id": deployed_model_id}
        return DecomposeResult(
            layers=layers,
            timings={"upload_s": t_encoded - t0, "queue_s": queue_s, "inference_s": inference_s,
                     # the request's wire time outside the server's queue+inference, plus decoding
                     "transfer_s": max(0.0, (t_answered - t_encoded) - server_s) + (t_end - t_answered),
                     "total_s": t_end - t0},
            served_by=self.name, job_id=prediction.get("job_id"), cached=bool(prediction.get("cached", False)),
            retries=len(counter), submitted_at=submitted_at, finished_at=time.time(),
            attempts=[{"client": self.name, "ok": True, "retries": len(counter),
                       "retried": [type(e).__name__ for e in counter], "request_bytes": info["request_bytes"],
                       "reencoded": info["reencoded"]}],
            # Ray Serve's app (server/rayserve) names its replica; Vertex AI and our server do not
            replica_id=str(prediction["replica_id"]) if prediction.get("replica_id") else None,
            first_on_replica=bool(prediction.get("cold_start", False)),
        )

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.transport.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def __enter__(self) -> VertexAIClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _plain(value: Any) -> Any:
    """proto-plus Struct/ListValue wrappers (MapComposite, RepeatedComposite) as plain dict/list."""
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if hasattr(value, "keys"):
        return {k: _plain(value[k]) for k in value.keys()}
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value


__all__ = ["VertexAIClient", "PayloadTooLargeError", "PAYLOAD_LIMIT_MB"]
