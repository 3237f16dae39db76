"""The local upscale provider, and the decoding of untrusted source images it shares with the
video provider: real Lanczos resizing with Pillow, in a worker thread."""

from __future__ import annotations

import asyncio
import io
from functools import lru_cache

from PIL import Image, ImageOps

from app.providers.base import PermanentProviderError, StopsAtReports
from app.providers.local.image import check_size, encode_png

MAX_SOURCE_PIXELS = 40_000_000
"""Largest source image we agree to decode (checked from the header, before decoding)."""


def decode_image(data: bytes, *, what: str = "source image") -> Image.Image:
    """Decode untrusted image bytes, refusing garbage and decompression bombs with a clear error.

    The size is read from the header and checked before pixels are decoded. EXIF rotation is
    applied so phone photos come out upright.
    """
    if not data:
        raise PermanentProviderError(f"{what} is empty")
    try:
        img: Image.Image = Image.open(io.BytesIO(data), formats=_source_formats())
    except Image.DecompressionBombError as exc:
        raise PermanentProviderError(f"{what} is too large: {exc}") from exc
    except Exception as exc:  # Pillow raises several unrelated types for bad input
        raise PermanentProviderError(f"{what} is not a valid image: {exc}") from exc
    width, height = img.size
    if width < 1 or height < 1 or width * height > MAX_SOURCE_PIXELS:
        raise PermanentProviderError(
            f"{what} is {width}x{height}; at most {MAX_SOURCE_PIXELS // 1_000_000} megapixels"
            " are accepted"
        )
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except Exception as exc:
        raise PermanentProviderError(f"{what} could not be decoded: {exc}") from exc
    return img


@lru_cache(maxsize=1)
def _source_formats() -> tuple[str, ...]:
    """Raster formats accepted as sources.

    An allow-list, because Pillow can open formats that hand the data to external programs
    (EPS goes to Ghostscript) or that few clients produce; users only need these.
    """
    Image.init()
    wanted = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
    return tuple(name for name in wanted if name in Image.OPEN)


def normalise_mode(img: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency worth keeping."""
    if img.mode in ("RGB", "RGBA"):
        return img
    if img.mode in ("LA", "PA") or "transparency" in img.info:
        return img.convert("RGBA")
    return img.convert("RGB")


def upscale_image(data: bytes, scale: int) -> bytes:
    """Decode, enlarge ``scale`` times per side with Lanczos, and return PNG bytes."""
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= 8:
        raise PermanentProviderError(f"upscale factor must be a whole number 1-8, got {scale!r}")
    img = decode_image(data)
    width, height = img.size
    check_size(width * scale, height * scale, "upscaled image")
    img = normalise_mode(img)
    return encode_png(img.resize((width * scale, height * scale), Image.Resampling.LANCZOS))


class LocalUpscaleProvider(StopsAtReports):
    """:class:`~app.providers.base.UpscaleProvider` that really resizes (Lanczos), offline."""

    async def upscale(self, *, image: bytes, scale: int, model: str) -> bytes:
        """PNG of the image enlarged ``scale`` times per side; bad bytes fail permanently."""
        return await asyncio.to_thread(upscale_image, image, scale)
