"""`AutoscalingPolicy`: what decides how many replicas a `ReplicaPool` runs. The pool starts, routes,
stops and bills replicas; a policy watches it (the hooks below) and calls `pool.set_target`,
`pool.start_replica` and `pool.stop_replicas` from its own SimPy process(es). The policy decides how many
replicas; the pool (its deployment kind's `replicas_to_stop`) decides which stop, so no policy reaches
into a deployment's choice."""

from __future__ import annotations

from typing import ClassVar


class AutoscalingPolicy:
    """The hooks default to nothing; a policy overrides those it needs, and `attach`."""

    name: ClassVar[str]

    pool = None

    def attach(self, pool) -> None:
        """Take charge of `pool` (called once by its constructor): start the control loop, the first replicas."""
        raise NotImplementedError

    def on_request(self, job) -> None:
        """A request reached the deployment, even one it then refuses (an endpoint's idle clock counts it)."""

    def on_arrival(self, job) -> None:
        """A request the deployment accepted, before it is routed."""

    def on_queued(self, job) -> None:
        """A request is held in the router's queue (no replica had a free slot)."""
        self.on_load_change()

    def on_load_change(self) -> None:
        """The queue or a replica's ongoing requests changed."""

    def on_replica_change(self, replica) -> None:
        """A replica became ready, started stopping, or stopped."""
