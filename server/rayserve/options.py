"""What `python -m server.rayserve` deploys: the application's names and `ServeOptions` (the autoscaling
config as Ray Serve 2.60 names its fields, the replicas' resources, the Vertex contract's limits).
Imports no Ray, so the command line can set Ray's environment before Ray is imported."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from server.settings import MB, vertex_body_bytes
from server.vertex_contract import PredictLimits

APP_NAME = "decomposer"
MODEL_DEPLOYMENT = "LayeredModel"
INGRESS_DEPLOYMENT = "VertexIngress"


@dataclass
class ServeOptions:
    """What `python -m server.rayserve` deploys (autoscaling config fields as Ray Serve 2.60 names them)."""

    model: str = "tiny"
    device: str = "cpu"
    dtype: str = "float32"
    steps: int | None = None
    min_replicas: int = 0
    max_replicas: int = 2
    initial_replicas: int | None = None
    target_ongoing_requests: float = 1.0
    max_ongoing_requests: int = 1
    upscale_delay_s: float = 2.0
    downscale_delay_s: float = 10.0
    downscale_to_zero_delay_s: float | None = 15.0
    look_back_period_s: float = 30.0
    # Deprecated in 2.60 but still what the handles' and replicas' metric pushes use (default 10 s):
    # it bounds how soon the autoscaler sees a change in load. None leaves Ray's default.
    metrics_interval_s: float | None = None
    replica_cpus: float = 1.0
    torch_threads: int = 1
    graceful_shutdown_timeout_s: float = 20.0
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
        config = {
            "min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s, "downscale_delay_s": self.downscale_delay_s,
            "look_back_period_s": self.look_back_period_s,
        }
        if self.metrics_interval_s is not None:
            config["metrics_interval_s"] = self.metrics_interval_s
        if self.downscale_to_zero_delay_s is not None:
            config["downscale_to_zero_delay_s"] = self.downscale_to_zero_delay_s
        if self.initial_replicas is not None:
            config["initial_replicas"] = self.initial_replicas
        return config

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
