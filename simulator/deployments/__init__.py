"""Ways of serving: `LocalGPU` (k GPUs, FIFO), `VertexEndpoint` (replicas + `Autoscaler`), `Hybrid`."""

from simulator.deployments.hybrid import Hybrid
from simulator.deployments.local import LocalGPU
from simulator.deployments.vertex import Replica, VertexConfig, VertexEndpoint

__all__ = ["Hybrid", "LocalGPU", "Replica", "VertexConfig", "VertexEndpoint"]
