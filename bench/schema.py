"""One report schema for measured and simulated results (shared/DESIGN.md, "One report schema").

A report is a JSON document:

    {"schema": "decomposer-loadlab/report/v1",
     "kind": "measured" | "simulated",
     "name": "...", "created": "<ISO 8601 UTC>",
     "target": "local" | "vertex" | "hybrid" | ...,     # what was measured or modelled
     "environment": {...},                             # host, cpu, versions (measured) / simulator
     "model": {...},                                   # measured: source, kind, device, dtype, steps,
                                                       #   load_s; simulated: the service-time profile
     "cases": [{"name", "layers", "resolution", "image_px"}],
     "config": {...},                                  # server workers, max_batch, cache, mode, ...
     "stages": [{"name", "concurrency", "arrival_rate_per_s", "duration_s", "jobs_per_user",
                 "jobs": [JobRecord...], "summary": {...}}],
     "coldstart": {"stages_s": {...}, ...} | null,     # optional cold-start breakdown
     "extra": {...}}                                   # anything else, never read by comparisons

Times in a JobRecord are seconds; `submitted`/`started`/`finished` are on one clock per report
(wall-clock epoch seconds when measured, simulation seconds when simulated). Every figure is either
measured or simulated according to `kind`; model inputs go in `model`/`config`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import summarize

SCHEMA = "decomposer-loadlab/report/v1"
COMPLETED, FAILED, REJECTED = "completed", "failed", "rejected"


@dataclass
class Case:
    """A workload case. `resolution` is the pipeline bucket (640 or 1024); `image_px` the side of the
    uploaded image (the article's 512/1024/2048 px test images)."""

    name: str
    layers: int
    resolution: int
    image_px: int


@dataclass
class JobRecord:
    case: str
    status: str                      # completed | failed | rejected
    submitted: float
    finished: float | None = None
    started: float | None = None     # when the model began the job (None if unknown or rejected)
    queue_s: float | None = None     # waiting for the worker / a replica
    service_s: float | None = None   # model time (pipeline call, or batch share)
    e2e_s: float | None = None       # submit -> result in the client's hands
    error: str | None = None
    served_by: str | None = None     # client or replica that answered (fallback, replicas)
    cold_start: bool = False         # met a cold start (simulated replicas, first request measured)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage:
    name: str
    concurrency: int | None = None
    arrival_rate_per_s: float | None = None
    duration_s: float | None = None
    jobs_per_user: int | None = None
    jobs: list[JobRecord] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def summarize(self) -> dict[str, Any]:
        """Fill `summary` from the job records: e2e statistics of completed jobs, success rate and
        throughput (completed jobs per second of the stage's wall time)."""
        done = [j for j in self.jobs if j.status == COMPLETED and j.e2e_s is not None]
        summary: dict[str, Any] = summarize(j.e2e_s for j in done)
        # A stage held for a duration: throughput counts only jobs that finished inside it, or the
        # jobs a closed loop lets run on past the end would inflate it.
        in_window = done
        if self.duration_s and self.jobs:
            end = min(j.submitted for j in self.jobs) + self.duration_s
            in_window = [j for j in done if j.finished is not None and j.finished <= end]
        summary["jobs"] = len(self.jobs)
        summary["completed"] = len(done)
        summary["failed"] = sum(j.status == FAILED for j in self.jobs)
        summary["rejected"] = sum(j.status == REJECTED for j in self.jobs)
        summary["success_rate"] = len(done) / len(self.jobs) if self.jobs else None
        summary["queue_s"] = summarize(j.queue_s for j in done if j.queue_s is not None)
        summary["service_s"] = summarize(j.service_s for j in done if j.service_s is not None)
        summary["wall_s"] = self.wall_s()
        summary["throughput_per_s"] = (len(in_window) / summary["wall_s"]) if summary["wall_s"] else None
        self.summary = summary
        return summary

    def wall_s(self) -> float | None:
        """The stage's duration when it was held for one, else first submit -> last finish."""
        if self.duration_s:
            return self.duration_s
        ends = [j.finished for j in self.jobs if j.finished is not None]
        if not self.jobs or not ends:
            return None
        return max(ends) - min(j.submitted for j in self.jobs)


@dataclass
class Report:
    kind: str                        # measured | simulated
    name: str
    target: str
    cases: list[Case] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    coldstart: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    schema: str = SCHEMA

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"report {self.name!r} has no stage {name!r}")

    def to_dict(self) -> dict[str, Any]:
        for stage in self.stages:
            stage.summarize()
        return asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={data.get('schema')!r})")
        fields = dict(data)
        fields["cases"] = [Case(**c) for c in data.get("cases", [])]
        fields["stages"] = [
            Stage(**{**s, "jobs": [JobRecord(**j) for j in s.get("jobs", [])]}) for s in data.get("stages", [])
        ]
        return cls(**fields)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Report:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"report {path} does not exist") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"report {path} is not JSON: {err}") from None
        try:
            return cls.from_dict(data)
        except TypeError as err:
            raise ValueError(f"report {path} does not follow {SCHEMA}: {err}") from None


def environment() -> dict[str, Any]:
    """What a measured report records about the machine it ran on."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "diffusers", "transformers", "locust", "google-cloud-aiplatform", "simpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "versions": versions}
