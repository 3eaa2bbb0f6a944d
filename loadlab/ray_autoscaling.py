"""Ray Serve's autoscaling settings: one type for the deployment (server/rayserve), the benchmark that starts
it (bench autoscale, the demo) and the simulator's model of it, and the command-line flags made from its
fields (`--PREFIXfield-name`, e.g. `--upscale-delay-s` or `--ray-upscale-delay-s`).

The field names and defaults are Ray Serve 2.60's (AutoscalingConfig, and the two deployment options the
autoscaler's behaviour depends on: max_ongoing_requests, graceful_shutdown_timeout_s); each command states
its own defaults as a changed copy (`dataclasses.replace`). Imports nothing of the project, no Ray."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass
class RayAutoscaling:
    """Ray Serve 2.60's autoscaling config and the deployment options it depends on (Ray's defaults)."""

    min_replicas: int = _setting(1, "fewest replicas")
    max_replicas: int = _setting(1, "most replicas")
    initial_replicas: int | None = _setting(None, "replicas at deploy; None: min_replicas")
    target_ongoing_requests: float = _setting(2.0, "ongoing requests per replica the autoscaler aims at")
    max_ongoing_requests: int = _setting(5, "requests a replica takes at once (the router holds the rest)")
    upscale_delay_s: float = _setting(30.0, "how long a decision to scale up must hold, s")
    downscale_delay_s: float = _setting(600.0, "how long a decision to scale down must hold, s")
    downscale_to_zero_delay_s: float | None = _setting(None, "the same for 1 -> 0 replicas, s; None: "
                                                             "the downscale delay")
    look_back_period_s: float = _setting(30.0, "window of the averaged load, s")
    # Deprecated in 2.60 but still what the handles' and replicas' metric pushes use: it bounds how soon
    # the autoscaler sees a change in load. None (the deployment only) leaves Ray's default.
    metrics_interval_s: float | None = _setting(10.0, "how often handles and replicas push load to the "
                                                      "autoscaler, s")
    graceful_shutdown_timeout_s: float = _setting(20.0, "a stopping replica's jobs are killed after it, s")

    def settings(self) -> dict[str, Any]:
        """Every field by Ray's name (what a report's `config.server.autoscaling` records)."""
        return asdict(self)

    def autoscaling_config(self) -> dict[str, Any]:
        """Ray Serve's `autoscaling_config` of the deployment; unset optional fields left to Ray."""
        config = {
            "min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s, "downscale_delay_s": self.downscale_delay_s,
            "look_back_period_s": self.look_back_period_s,
        }
        for key in ("metrics_interval_s", "downscale_to_zero_delay_s", "initial_replicas"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    def changed(self, base: RayAutoscaling | None = None) -> dict[str, Any]:
        """The fields that differ from `base` (default: Ray's defaults), by Ray's name."""
        ray = base or RayAutoscaling()
        return {k: v for k, v in self.settings().items() if k in ray.settings() and v != getattr(ray, k)}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# The deployment `python -m server.rayserve` and `bench autoscale` start on this machine: from zero to two
# one-request replicas, delays of seconds so a scenario of minutes shows every transition.
DEPLOYMENT = RayAutoscaling(min_replicas=0, max_replicas=2, target_ongoing_requests=1.0, max_ongoing_requests=1,
                            upscale_delay_s=2.0, downscale_delay_s=10.0, downscale_to_zero_delay_s=15.0,
                            metrics_interval_s=None)


@dataclass(frozen=True)
class Flags:
    """The flags of some fields of `RayAutoscaling`: `--{prefix}{field-name}`, with the defaults of `base`.
    `aliases` keeps older spellings (field -> flag) working; `types` and `helps` replace a field's."""

    base: RayAutoscaling
    prefix: str = ""
    only: Sequence[str] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    types: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    helps: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        return tuple(self.only) if self.only is not None else RayAutoscaling.field_names()

    def dest(self, name: str) -> str:
        return (self.prefix + name).replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser | Any) -> None:
        """Add one flag per field to `parser` (or an argument group)."""
        by_name = {f.name: f for f in fields(RayAutoscaling)}
        for name in self.names():
            f = by_name[name]
            spellings = [f"--{self.prefix}{name.replace('_', '-')}"]
            if name in self.aliases:
                spellings.append(self.aliases[name])
            kind = self.types.get(name) or (int if "int" in str(f.type) else float)
            help_text = self.helps.get(name) or f"Ray Serve {name}: {f.metadata['doc']} (default %(default)s)"
            parser.add_argument(*spellings, dest=self.dest(name), type=kind, default=getattr(self.base, name),
                                metavar="S" if name.endswith("_s") else "N", help=help_text)

    def read(self, args: argparse.Namespace, **override: Any) -> RayAutoscaling:
        """The settings the flags gave: `base` with each flag's value (and `override`)."""
        values = {name: getattr(args, self.dest(name)) for name in self.names()}
        return replace(self.base, **values, **override)
