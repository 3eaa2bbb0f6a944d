"""Checking an uploaded image before it is stored: pixel count (decompression bombs, 413), format
(415), completeness (422)."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from server.errors import APIError


def inspect_image(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) of a whole, decodable image, or an APIError saying what is wrong with it.
    The pixel count is checked from the header, before any pixel is decoded."""
    if not data:
        raise APIError(422, "empty_upload", "the uploaded file is empty")
    with warnings.catch_warnings():
        # Our own max_pixels is the guard; Pillow's bomb warning/error would only say less.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as err:
            # Pillow's own hard limit (2 x Image.MAX_IMAGE_PIXELS) fires in open(), before our check can:
            # the same answer as ours, a too-large image, not "not an image".
            raise APIError(413, "too_many_pixels", f"image is above the limit of {max_pixels} pixels "
                           f"(decompression-bomb guard): {err}") from None
        except UnidentifiedImageError:
            raise APIError(415, "not_an_image", "the uploaded file is not an image Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as err:  # a known format whose header is cut short
            raise APIError(422, "corrupt_image", f"the image cannot be decoded (truncated or corrupt): {err}") from None
        width, height = im.size
        if width * height > max_pixels:
            raise APIError(413, "too_many_pixels", f"image is {width}x{height} = {width * height} pixels, "
                           f"above the limit of {max_pixels} (decompression-bomb guard)")
        try:
            im.load()
        except (OSError, SyntaxError, ValueError) as err:
            raise APIError(422, "corrupt_image", f"the image cannot be decoded (truncated or corrupt): {err}") from None
    return width, height
