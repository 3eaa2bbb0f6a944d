"""Uploads: content-addressed, so the same bytes are stored once and get the same id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from server.deps import ServicesDep, require_api_key
from server.errors import APIError, doc
from server.images import inspect_image
from server.schemas import UploadResponse

router = APIRouter(prefix="/api", tags=["files"], dependencies=[Depends(require_api_key)])

CHUNK = 1 << 20


@router.post("/upload", status_code=201, response_model=UploadResponse, responses=doc(401, 413, 415, 422))
async def upload(file: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP ...)")], svc: ServicesDep):
    limit = svc.settings.max_upload_bytes
    chunks, size = [], 0
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise APIError(413, "upload_too_large", f"upload is over the limit of {svc.settings.max_upload_mb:g} MB")
        chunks.append(chunk)
    data = b"".join(chunks)
    width, height = inspect_image(data, svc.settings.max_pixels)
    file_id = svc.files.content_id(data)
    svc.files.put_upload(file_id, data)
    svc.store.add_file(file_id, width, height, len(data))
    return UploadResponse(file_id=file_id, width=width, height=height, size_bytes=len(data))
