"""Ways of serving, each a `Deployment`: `LocalGPU` (k GPUs, FIFO), `VertexEndpoint` (replicas +
autoscaler), `Hybrid` (Vertex first, local GPU on failure)."""

from simulator.deployments.base import Cost, Deployment
from simulator.deployments.hybrid import Hybrid
from simulator.deployments.local import LocalGPU
from simulator.deployments.vertex import Replica, VertexConfig, VertexEndpoint

__all__ = ["Cost", "Deployment", "Hybrid", "LocalGPU", "Replica", "VertexConfig", "VertexEndpoint"]
