"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by tests/test_server_schemathesis.py): real
images for what the schema says is an image, since JSON Schema cannot say "a decodable PNG" and random
bytes would be refused (415) as they should be. Registered through schemathesis' public API."""

from __future__ import annotations

import base64
import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image


@st.composite
def png_images(draw) -> bytes:
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    mode = draw(st.sampled_from(["RGB", "RGBA", "L"]))
    color = draw(st.integers(0, 255))
    buf = io.BytesIO()
    Image.new(mode, (width, height), (color,) * len(mode)).save(buf, "PNG")
    return buf.getvalue()


# The upload's multipart `file` part (encoding contentType image/png) and the Vertex instance's
# `image` (format byte: base64).
schemathesis.openapi.media_type("image/png", png_images())
schemathesis.openapi.format("byte", png_images().map(lambda data: base64.b64encode(data).decode("ascii")))
