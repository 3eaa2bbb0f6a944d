"""The `ray-serve` policy's settings: the deployment's autoscaling config as Ray Serve 2.60's
AutoscalingConfig has it, with the constants of ray/serve/_private/constants.py the model uses
(simulator/autoscaling/ray_serve.py)."""

from __future__ import annotations

from dataclasses import dataclass

from loadlab.ray_autoscaling import RayAutoscaling

CONTROL_LOOP_INTERVAL_S = 0.1          # ray/serve/_private/constants.py (RAY_SERVE_CONTROL_LOOP_INTERVAL_S)
RECORD_INTERVAL_FACTOR = 0.2           # RAY_SERVE_AUTOSCALING_METRIC_RECORD_INTERVAL_FACTOR


@dataclass
class RayServeConfig(RayAutoscaling):
    """The deployment's autoscaling settings (loadlab.ray_autoscaling, Ray's defaults) and the rest of
    Ray Serve 2.60's AutoscalingConfig and constants the model uses."""

    metrics_interval_s: float = 10.0       # the model needs a push interval: Ray's default, never None
    upscaling_factor: float | None = None
    downscaling_factor: float | None = None
    smoothing_factor: float = 1.0
    graceful_shutdown_wait_loop_s: float = 2.0
    control_loop_interval_s: float = CONTROL_LOOP_INTERVAL_S
    # not a Serve setting: the cluster autoscaler's idle_timeout_minutes x 60 (ray/autoscaler/gcp/defaults.yaml:
    # 5 min), how long a GPU node outlives its replica; only the bill (simulator/bill.py) reads it
    node_idle_timeout_s: float = 300.0

    @classmethod
    def from_dict(cls, settings: dict) -> RayServeConfig:
        """From a report's `config.server.autoscaling` (Ray's field names); unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown Ray Serve autoscaling setting(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in settings.items() if v is not None or k in ("downscale_to_zero_delay_s",
                                                                                   "initial_replicas")})

    def check(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError("Ray Serve: need 0 <= min_replicas <= max_replicas, max_replicas >= 1")
        if self.target_ongoing_requests <= 0 or self.max_ongoing_requests < 1:
            raise ValueError("Ray Serve: target_ongoing_requests > 0 and max_ongoing_requests >= 1")
        if self.look_back_period_s <= 0 or self.metrics_interval_s <= 0 or self.control_loop_interval_s <= 0:
            raise ValueError("Ray Serve: look_back_period_s, metrics_interval_s and the control period must be > 0")

    @property
    def upscaling(self) -> float:
        return self.upscaling_factor or self.smoothing_factor

    @property
    def downscaling(self) -> float:
        return self.downscaling_factor or self.smoothing_factor

    @property
    def record_interval_s(self) -> float:
        return min(self.look_back_period_s * RECORD_INTERVAL_FACTOR, self.metrics_interval_s)


def ray_defaults() -> RayServeConfig:
    """Ray Serve settings for this app (one pipeline call at a time per replica): scale 0..3 on one ongoing
    request per replica; Ray's own delays and look-back (30 s up, 600 s down, 30 s); a graceful shutdown
    long enough for a Large job on a T4 (Ray's 20 s default would kill jobs in flight when scaling down)."""
    return RayServeConfig(min_replicas=0, max_replicas=3, target_ongoing_requests=1.0, max_ongoing_requests=1,
                          graceful_shutdown_timeout_s=300.0)
