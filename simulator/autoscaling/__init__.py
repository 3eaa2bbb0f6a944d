"""Autoscaling policies: `vertex` (Vertex AI's target-utilisation autoscaler, as modelled here) and
`ray-serve` (Ray Serve 2.60's request-based autoscaler, from its source). Which deployment uses which is
in the one registry, `simulator/scenarios.py`."""

from simulator.autoscaling.base_policy import AutoscalingPolicy
from simulator.autoscaling.ray_serve import RayServeConfig, RayServePolicy
from simulator.autoscaling.vertex import VertexPolicy

__all__ = ["AutoscalingPolicy", "RayServeConfig", "RayServePolicy", "VertexPolicy"]
