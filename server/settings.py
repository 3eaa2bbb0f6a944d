"""Server settings: DECOMPOSER_* environment variables (pydantic-settings), then the command line, which
wins (`python -m server` passes its flags as init arguments). The Vertex AI custom-container variables
AIP_HTTP_PORT, AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE are read too."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "DECOMPOSER_"
MB = 1024 * 1024
# Vertex AI's request size limits (online prediction): public shared endpoints 1.5 MB, dedicated 10 MB.
VERTEX_BODY_LIMIT_MB = {"shared": 1.5, "dedicated": 10.0}


def vertex_body_bytes(endpoint_type: str, max_body_mb: float | None = None) -> int:
    """The predict body limit of that endpoint type, or `max_body_mb` when given (both servers')."""
    return int((max_body_mb or VERTEX_BODY_LIMIT_MB[endpoint_type]) * MB)


def default_data_dir() -> Path:
    # Same root as the model cache (server.model.cache_dir), so one env var moves everything.
    from server.model import cache_dir

    return cache_dir() / "server"


def _env(*names: str) -> AliasChoices:
    """The environment names of a field, first found wins (the field name itself stays an init argument)."""
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, validate_by_name=True,
                                      extra="ignore")

    host: str = Field("127.0.0.1", description="bind address (loopback by default: no auth is on by default)")
    port: int = Field(8000, validation_alias=_env("DECOMPOSER_PORT", "AIP_HTTP_PORT"),
                      description="TCP port (AIP_HTTP_PORT, when set, is the default)")
    data_dir: Path = Field(default_factory=default_data_dir, description="job database, uploads and results")
    model: str = Field("tiny", description="'tiny', a local pipeline directory, or a hub id")
    device: str = Field("cpu", description="torch device of the pipeline (cpu, cuda, cuda:1 ...)")
    dtype: str = Field("float32", description="float32 | bfloat16 | float16")
    steps: int | None = Field(None, description="inference steps (default: the model's own)")
    workers: int = Field(1, ge=1, description="model replicas on the device, one worker thread each")
    max_batch: int = Field(1, ge=1, description="micro-batch queued jobs with equal (layers, resolution) up to N")
    queue_limit: int = Field(64, ge=1, description="queued jobs accepted before 429")
    api_key: str | None = Field(None, description="if set, required as X-API-Key or Bearer on all but health "
                                "(pass it through the environment: a command line is visible to every local user)")
    cache_ttl: float = Field(86400.0, ge=0, description="seconds a result is reused for the same input (0: off)")
    max_upload_mb: float = Field(20.0, gt=0, description="largest accepted upload, MB")
    max_pixels: int = Field(40_000_000, gt=0, description="largest accepted image, width x height (bomb guard)")
    min_free_mb: float = Field(64.0, ge=0, description="free space the data directory needs at start, MB")
    enable_fault_injection: bool = Field(
        False, validation_alias=_env("DECOMPOSER_FAULT_INJECTION", "DECOMPOSER_ENABLE_FAULT_INJECTION"),
        description="expose POST /_test/faults (tests only)")
    shutdown_grace_s: float = Field(30.0, ge=0, description="on SIGTERM, how long to let the running batch finish")
    header_timeout_s: float = Field(10.0, gt=0, description="seconds a connection has to send a whole request "
                                    "head (request line and headers); a slower one is closed (slowloris guard)")
    max_connections: int = Field(1000, ge=1, description="open connections (or requests in progress) beyond "
                                 "which a new request is answered 503 at once (uvicorn's limit_concurrency)")
    vertex_health_route: str = Field("/vertex/health",
                                     validation_alias=_env("AIP_HEALTH_ROUTE", "DECOMPOSER_VERTEX_HEALTH_ROUTE"),
                                     description="AIP_HEALTH_ROUTE: answers readiness")
    vertex_predict_route: str = Field("/vertex/predict",
                                      validation_alias=_env("AIP_PREDICT_ROUTE", "DECOMPOSER_VERTEX_PREDICT_ROUTE"),
                                      description="AIP_PREDICT_ROUTE")
    vertex_timeout_s: float = Field(3600.0, gt=0, description="how long a Vertex predict waits for its jobs")
    vertex_endpoint_type: Literal["shared", "dedicated"] = Field(
        "shared", description="the Vertex endpoint this server stands for: its request size limit "
        "(shared 1.5 MB, dedicated 10 MB)")
    vertex_max_body_mb: float | None = Field(None, gt=0, description="largest predict request body, MB "
                                             "(default: the endpoint type's limit)")
    vertex_max_instances: int = Field(8, ge=1, description="most instances in one predict request")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def vertex_max_body_bytes(self) -> int:
        return vertex_body_bytes(self.vertex_endpoint_type, self.vertex_max_body_mb)
