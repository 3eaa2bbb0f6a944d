"""`AutoscalingPolicy`: what decides how many replicas a `ReplicaPool` runs. The pool starts, routes,
stops and bills replicas; a policy watches it (the hooks below) and calls `pool.set_target`,
`pool.start_replica` and `pool.stop_replica` from its own SimPy process(es)."""

from __future__ import annotations

from typing import ClassVar


class AutoscalingPolicy:
    """The hooks default to nothing; a policy overrides those it needs, and `attach`."""

    name: ClassVar[str]

    pool = None

    def attach(self, pool) -> None:
        """Take charge of `pool` (called once by its constructor): start the control loop, the first replicas."""
        raise NotImplementedError

    def on_arrival(self, job) -> None:
        """A request reached the deployment, before it is routed."""

    def on_queued(self, job) -> None:
        """A request is held in the router's queue (no replica had a free slot)."""
        self.on_load_change()

    def on_load_change(self) -> None:
        """The queue or a replica's ongoing requests changed."""

    def on_replica_change(self, replica) -> None:
        """A replica became ready, started stopping, or stopped."""
