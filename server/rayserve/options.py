"""What `python -m server.rayserve` deploys: the application's names and `ServeOptions` (the autoscaling
config as Ray Serve 2.60 names its fields, the replicas' resources, the Vertex contract's limits).
Imports no Ray, so the command line can set Ray's environment before Ray is imported."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from loadlab.ray_autoscaling import DEPLOYMENT, Flags, RayAutoscaling
from server.settings import MB, vertex_body_bytes
from server.vertex_contract import PredictLimits

APP_NAME = "decomposer"
MODEL_DEPLOYMENT = "LayeredModel"
INGRESS_DEPLOYMENT = "VertexIngress"
# A model replica logs one line with this prefix and a JSON object when its constructor ends (its
# start-up's stamps, epoch s): the replica recorder reads it from the replica's Serve log.
STARTUP_LOG_PREFIX = "replica start-up stamps "
# `--min-replicas` ... `--graceful-shutdown-timeout-s`: one flag per field of the autoscaling settings
AUTOSCALING_FLAGS = Flags(DEPLOYMENT, helps={
    "max_ongoing_requests": "per replica; 1 = one pipeline call at a time (default %(default)s)",
    "metrics_interval_s": "how often handles/replicas push load to the autoscaler (Ray's default 10 s)"})


@dataclass
class ServeOptions:
    """What `python -m server.rayserve` deploys (`autoscaling`: the one Ray autoscaling settings type)."""

    model: str = "tiny"
    device: str = "cpu"
    dtype: str = "float32"
    steps: int | None = None
    autoscaling: RayAutoscaling = field(default_factory=lambda: replace(DEPLOYMENT))
    replica_cpus: float = 1.0
    torch_threads: int = 1
    predict_route: str = "/vertex/predict"
    health_route: str = "/vertex/health"
    # The Vertex contract's limits, as on the job server (`python -m server --help` says each).
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    vertex_endpoint_type: str = "shared"
    vertex_max_body_mb: float | None = None
    vertex_max_instances: int = 8
    # Requests waiting in the model handle beyond this get 429 (Ray Serve's max_queued_requests; the
    # job server's queue limit has the same default).
    max_queued_requests: int = 64
    timeout_s: float = 3600.0  # a prediction not answered by then is 504, as the job server's vertex_timeout_s
    extra: dict = field(default_factory=dict)  # shown by the readiness route (ray address, session dir)

    def predict_limits(self) -> PredictLimits:
        # The job server's units (server.settings), so both servers hold a body to the same byte count.
        return PredictLimits(max_body_bytes=vertex_body_bytes(self.vertex_endpoint_type, self.vertex_max_body_mb),
                             max_instances=self.vertex_max_instances,
                             max_image_bytes=int(self.max_upload_mb * MB), max_pixels=self.max_pixels)

    def autoscaling_config(self) -> dict:
        return self.autoscaling.autoscaling_config()

    def ray_actor_options(self) -> dict:
        options: dict = {"num_cpus": self.replica_cpus}
        if self.device.startswith("cuda"):
            options["num_gpus"] = 1
        # Replicas inherit the driver's environment only through runtime_env; keep them offline and
        # single-threaded like the local server's worker.
        env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "DECOMPOSER_CACHE", "HF_HOME",
                                           "TOKENIZERS_PARALLELISM") if k in os.environ}
        env.setdefault("OMP_NUM_THREADS", str(self.torch_threads))
        options["runtime_env"] = {"env_vars": env}
        return options
