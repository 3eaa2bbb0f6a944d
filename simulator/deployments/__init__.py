"""Ways of serving, each a `Deployment`: `LocalGPU` (k GPUs, FIFO), `VertexEndpoint` (replicas + the vertex
autoscaler), `RayServeDeployment` (replicas + Ray Serve's autoscaler, on GPU nodes), `Hybrid` (Vertex
first, local GPU on failure). The replicated ones share `ReplicaPool`."""

from simulator.deployments.base import Cost, Deployment
from simulator.deployments.hybrid import Hybrid
from simulator.deployments.local import LocalGPU
from simulator.deployments.ray_serve import RayServeDeployment
from simulator.deployments.replica import Replica
from simulator.deployments.replicas import ReplicaPool
from simulator.deployments.vertex import VertexConfig, VertexEndpoint

__all__ = ["Cost", "Deployment", "Hybrid", "LocalGPU", "RayServeDeployment", "Replica", "ReplicaPool", "VertexConfig", "VertexEndpoint"]
