"""Request and response bodies of the job API and the job server's Vertex answers, with the one `Resolution` and
`NumLayers` types both validate with (what the schema says is what the server enforces)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from server.model import MAX_LAYERS, MIN_LAYERS, RESOLUTION_BUCKETS

FILE_ID_PATTERN = r"^[0-9a-f]{64}$"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
# Examples in the schema (for readers, and schemathesis' examples phase): an 8x8 red PNG.
EXAMPLE_PNG_BASE64 = ("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFElEQVR4nGM8ISfHgA0wYRUdtBIA0MoBFD5jqJkAAAAAS"
                      "UVORK5CYII=")
EXAMPLE_FILE_ID = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
EXAMPLE_JOB_ID = "0123456789abcdef0123456789abcdef"


def _json_number(value: Any) -> Any:
    """Integers may arrive as floats (5.0) from clients that pass through protobuf Struct, and 5.0 is an
    integer in JSON Schema; strings and booleans are not numbers there, so they are refused here instead
    of being coerced by pydantic's lax mode."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON number")
    return value


# The pipeline's two buckets (it asserts on anything else): an enum in the schema, 640.0 accepted.
Resolution = Annotated[Literal[RESOLUTION_BUCKETS], BeforeValidator(_json_number)]
NumLayers = Annotated[int, Field(ge=MIN_LAYERS, le=MAX_LAYERS), BeforeValidator(_json_number)]


# --- job API -----------------------------------------------------------------------------------------

class UploadResponse(BaseModel):
    file_id: str = Field(pattern=FILE_ID_PATTERN, description="sha256 of the uploaded bytes")
    width: int
    height: int
    size_bytes: int


class DecomposeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"file_id": EXAMPLE_FILE_ID, "num_layers": 3, "resolution": 640}]})
    file_id: str = Field(pattern=FILE_ID_PATTERN, description="from POST /api/upload")
    num_layers: NumLayers
    resolution: Resolution = Field(description="the pipeline's resolution bucket")


JobStatusName = Literal["queued", "running", "completed", "failed"]


class DecomposeAccepted(BaseModel):
    job_id: str = Field(pattern=JOB_ID_PATTERN)
    status: JobStatusName
    cached: bool


class JobStatus(BaseModel):
    job_id: str = Field(pattern=JOB_ID_PATTERN)
    status: JobStatusName
    queue_position: int | None = Field(None, description="jobs ahead of this one while queued (0 = next)")
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    queue_s: float | None
    inference_s: float | None
    batch_size: int | None
    cached: bool
    error: str | None
    file_id: str = Field(pattern=FILE_ID_PATTERN)
    num_layers: int
    resolution: int


# --- Vertex AI -----------------------------------------------------------------------------------------

class Prediction(BaseModel):
    layers: list[str] = Field(description="base64 RGBA PNGs, one per layer")
    timings: dict[str, float | None] = Field(description="queue_s and inference_s of the job")
    cached: bool
    job_id: str = Field(pattern=JOB_ID_PATTERN)


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    deployedModelId: str


class Readiness(BaseModel):
    ready: bool
    process_started_at: float
    draining: bool = False
    error: str | None = None
    model: dict[str, Any] | None = None
    ready_at: float | None = None
    queue_depth: int | None = None
