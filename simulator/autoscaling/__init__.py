"""Autoscaling policies (name -> class): `vertex` (Vertex AI's target-utilisation autoscaler, as modelled
here) and `ray-serve` (Ray Serve 2.60's request-based autoscaler, from its source)."""

from simulator.autoscaling.base_policy import AutoscalingPolicy
from simulator.autoscaling.ray_serve import RayServeConfig, RayServePolicy
from simulator.autoscaling.vertex import VertexPolicy

POLICIES: dict[str, type[AutoscalingPolicy]] = {VertexPolicy.name: VertexPolicy, RayServePolicy.name: RayServePolicy}

__all__ = ["POLICIES", "AutoscalingPolicy", "RayServeConfig", "RayServePolicy", "VertexPolicy"]
