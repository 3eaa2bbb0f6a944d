"""Request and response bodies of the job API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.model import MAX_LAYERS, MIN_LAYERS, RESOLUTION_BUCKETS

FILE_ID_PATTERN = r"^[0-9a-f]{64}$"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"


class UploadResponse(BaseModel):
    file_id: str = Field(description="sha256 of the uploaded bytes")
    width: int
    height: int
    size_bytes: int


class DecomposeRequest(BaseModel):
    # Integers may arrive as floats (5.0) from clients that pass through protobuf Struct; pydantic's lax
    # int accepts 5.0 and refuses 5.5.
    model_config = ConfigDict(extra="forbid")
    file_id: str = Field(pattern=FILE_ID_PATTERN, description="from POST /api/upload")
    num_layers: int = Field(ge=MIN_LAYERS, le=MAX_LAYERS)
    resolution: int = Field(description=f"one of {list(RESOLUTION_BUCKETS)} (the pipeline's buckets)")

    @field_validator("resolution")
    @classmethod
    def _bucket(cls, value: int) -> int:
        if value not in RESOLUTION_BUCKETS:
            raise ValueError(f"must be one of {list(RESOLUTION_BUCKETS)} (QwenImageLayeredPipeline's buckets)")
        return value


class DecomposeAccepted(BaseModel):
    job_id: str
    status: str
    cached: bool


class JobStatus(BaseModel):
    job_id: str
    status: Literal["queued", "running", "completed", "failed"]
    queue_position: int | None = Field(None, description="jobs ahead of this one while queued (0 = next)")
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    queue_s: float | None
    inference_s: float | None
    batch_size: int | None
    cached: bool
    error: str | None
    file_id: str
    num_layers: int
    resolution: int
