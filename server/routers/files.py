"""Uploads: content-addressed, so the same bytes are stored once and get the same id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from server.deps import IntakeDep, require_api_key, require_storage
from server.errors import doc
from server.links import UPLOAD_LINKS
from server.schemas import UploadResponse

# Room for the multipart framing around the file (boundaries, part headers, a filename).
MULTIPART_OVERHEAD = 64 * 1024


def build_router(max_upload_bytes: int) -> APIRouter:
    """The upload route. Its body limit (max upload + MULTIPART_OVERHEAD) is enforced by server.limits
    before the body is read; here the file itself is held to the max upload size."""
    router = APIRouter(prefix="/api", tags=["files"], dependencies=[Depends(require_api_key), Depends(require_storage)])

    @router.post("/upload", operation_id="upload", status_code=201, response_model=UploadResponse,
                 responses={201: {"links": UPLOAD_LINKS}, **doc(400, 401, 413, 415, 422, 503)},
                 openapi_extra={"requestBody": {"content": {"multipart/form-data": {
                     "encoding": {"file": {"contentType": "image/png, image/jpeg, image/webp, image/gif"}}}}}})
    async def upload(file: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP ...); not empty",
                                                      json_schema_extra={"minLength": 1})],
                     intake: IntakeDep) -> UploadResponse:
        # Starlette has spooled the part to a temporary file as it arrived; reading, decoding, hashing
        # and storing it all happen on the intake's threads, so other requests are answered meanwhile.
        return await intake.upload_file_async(file.file)

    return router
