"""Server settings: one pydantic model, filled from DECOMPOSER_* environment variables and then from
the command line (the command line wins). pydantic-settings is not installed here, so the environment
is read by `Settings.from_env`; the field names are the env names without the prefix."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

ENV_PREFIX = "DECOMPOSER_"


def default_data_dir() -> Path:
    # Same root as the model cache (server.model.cache_dir), so one env var moves everything.
    from server.model import cache_dir

    return cache_dir() / "server"


class Settings(BaseModel):
    host: str = Field("127.0.0.1", description="bind address (loopback by default: no auth is on by default)")
    port: int = Field(8000, description="TCP port (AIP_HTTP_PORT, when set, is the default)")
    data_dir: Path = Field(default_factory=default_data_dir, description="job database, uploads and results")
    model: str = Field("tiny", description="'tiny', a local pipeline directory, or a hub id")
    device: str = Field("cpu", description="torch device of the pipeline (cpu, cuda, cuda:1 ...)")
    dtype: str = Field("float32", description="float32 | bfloat16 | float16")
    steps: int | None = Field(None, description="inference steps (default: the model's own)")
    workers: int = Field(1, ge=1, description="model replicas on the device, one worker thread each")
    max_batch: int = Field(1, ge=1, description="micro-batch queued jobs with equal (layers, resolution) up to N")
    queue_limit: int = Field(64, ge=1, description="queued jobs accepted before 429")
    api_key: str | None = Field(None, description="if set, required as X-API-Key or Bearer on all but health")
    cache_ttl: float = Field(86400.0, ge=0, description="seconds a result is reused for the same input (0: off)")
    max_upload_mb: float = Field(20.0, gt=0, description="largest accepted upload, MB")
    max_pixels: int = Field(40_000_000, gt=0, description="largest accepted image, width x height (bomb guard)")
    enable_fault_injection: bool = Field(False, description="expose POST /_test/faults (tests only)")
    shutdown_grace_s: float = Field(30.0, ge=0, description="on SIGTERM, how long to let the running batch finish")
    vertex_health_route: str = Field("/vertex/health", description="AIP_HEALTH_ROUTE")
    vertex_predict_route: str = Field("/vertex/predict", description="AIP_PREDICT_ROUTE")
    vertex_timeout_s: float = Field(3600.0, gt=0, description="how long a Vertex predict waits for its jobs")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        values: dict = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        # The fault switch also answers to the short name the brief promises.
        if env.get(ENV_PREFIX + "FAULT_INJECTION"):
            values["enable_fault_injection"] = env[ENV_PREFIX + "FAULT_INJECTION"] not in ("0", "false", "")
        # Vertex AI custom-container contract.
        if env.get("AIP_HTTP_PORT") and "port" not in values:
            values["port"] = env["AIP_HTTP_PORT"]
        if env.get("AIP_HEALTH_ROUTE"):
            values["vertex_health_route"] = env["AIP_HEALTH_ROUTE"]
        if env.get("AIP_PREDICT_ROUTE"):
            values["vertex_predict_route"] = env["AIP_PREDICT_ROUTE"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
