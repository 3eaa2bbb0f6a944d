"""Image bytes in and out of the clients: RGBA layers from PNG bytes, and the re-encoding that keeps a
Vertex request under its payload limit."""

from __future__ import annotations

import io
import zipfile
from typing import Any


def decode_layer(png: bytes) -> Any:
    """One layer as a loaded PIL image in mode RGBA."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        img.load()
        return img if img.mode == "RGBA" else img.convert("RGBA")


def layers_from_zip(data: bytes) -> list[Any]:
    """The layers of a result zip (`layer_0.png`, `layer_1.png`, ...) in index order."""

    def index(name: str) -> tuple[int, str]:
        stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        digits = stem.rsplit("_", 1)[-1]
        return (int(digits), name) if digits.isdigit() else (10**9, name)

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted((n for n in zf.namelist() if n.lower().endswith(".png")), key=index)
        return [decode_layer(zf.read(n)) for n in names]


def reencode_to_fit(data: bytes, resolution: int, fits, qualities=(90, 80, 70, 60, 50, 40)) -> tuple[bytes, dict]:
    """Re-encode `data` as JPEG until `fits(candidate_bytes)` is true.

    First downscale so the longer side is at most `resolution` (the pipeline resizes its input to about
    resolution^2 anyway, so pixels beyond it are wasted bytes), then lower the JPEG quality, then halve the
    size. Returns (bytes, info) where info says what was done; raises ValueError when nothing fits."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        original_size = img.size
        rgb = img.convert("RGB")  # JPEG has no alpha; the pipeline converts to RGB itself
    if max(rgb.size) > resolution:
        scale = resolution / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                         Image.Resampling.LANCZOS)
    while True:
        for quality in qualities:
            buf = io.BytesIO()
            rgb.save(buf, "JPEG", quality=quality, optimize=True)
            candidate = buf.getvalue()
            if fits(candidate):
                return candidate, {"reencoded": True, "format": "JPEG", "quality": quality,
                                   "size_px": list(rgb.size), "original_px": list(original_size)}
        if max(rgb.size) <= 64:
            raise ValueError("image does not fit the payload limit even at 64 px JPEG")
        rgb = rgb.resize((max(1, rgb.width // 2), max(1, rgb.height // 2)), Image.Resampling.LANCZOS)
