"""The local upscale provider, and the decoding of untrusted source images it shares with the
video provider: real Lanczos resizing with Pillow, in a worker thread."""

from __future__ import annotations

import asyncio
import io
from functools import lru_cache

from PIL import Image, ImageFilter, ImageOps

from app.providers.base import PermanentProviderError, StopsAtReports
from app.providers.local.capabilities import LOCAL_UPSCALE, LocalCapabilities
from app.providers.local.image import MAX_PIXELS, MAX_SIDE, check_size, encode_png

MAX_SOURCE_PIXELS = MAX_PIXELS
"""Largest source image we agree to decode (4096 x 4096), checked from the header before
any pixel is decoded. A decoded RGBA source of that size takes about 67 MB."""

# Pillow's own bomb guard, as a second line behind the header check below: it refuses
# (DecompressionBombError) an image of more than twice this many pixels wherever one is
# opened. Set above our limit so that our message (with the image's size) is the one seen.
Image.MAX_IMAGE_PIXELS = 4 * MAX_SOURCE_PIXELS


def decode_image(data: bytes, *, what: str = "source image", scale: int = 1) -> Image.Image:
    """Decode untrusted image bytes, refusing garbage and decompression bombs with a clear error.

    ``Image.open`` reads only the header; the size (and, for an upscale, the size ``scale``
    times larger) is checked against the limits before a single pixel is decoded, so a small
    file declaring a huge image costs nothing. EXIF rotation is applied so phone photos come
    out upright. Messages name the problem, never a Python object.
    """
    if not data:
        raise PermanentProviderError(f"{what} is empty")
    try:
        img: Image.Image = Image.open(io.BytesIO(data), formats=_source_formats())
    except Image.DecompressionBombError:
        raise PermanentProviderError(
            f"{what} is too large: more than {MAX_SOURCE_PIXELS} pixels"
            f" ({MAX_SIDE}x{MAX_SIDE}) are accepted"
        ) from None
    except Exception:  # Pillow raises several unrelated types for bad input
        raise PermanentProviderError(
            f"{what} is not a valid image (accepted: {', '.join(_source_formats())})"
        ) from None
    width, height = img.size
    if width < 1 or height < 1 or width * height > MAX_SOURCE_PIXELS:
        raise PermanentProviderError(
            f"{what} is {width}x{height}; at most {MAX_SOURCE_PIXELS} pixels"
            f" ({MAX_SIDE}x{MAX_SIDE}) are accepted"
        )
    if scale > 1:
        check_size(width * scale, height * scale, f"{what} upscaled x{scale}")
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except Exception as exc:
        reason = type(exc).__name__ if not str(exc) else str(exc).splitlines()[0][:200]
        raise PermanentProviderError(f"{what} could not be decoded ({reason})") from None
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


def upscale_image(data: bytes, scale: int, face_enhance: bool = False) -> bytes:
    """Decode, enlarge ``scale`` times per side with Lanczos, and return PNG bytes.

    ``face_enhance`` (the option real-esrgan's GFPGAN pass answers) sharpens the result with
    an unsharp mask: there is no face model offline, but the option visibly does something.
    """
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= 8:
        raise PermanentProviderError(f"upscale factor must be a whole number 1-8, got {scale!r}")
    img = decode_image(data, scale=scale)
    width, height = img.size
    img = normalise_mode(img).resize((width * scale, height * scale), Image.Resampling.LANCZOS)
    if face_enhance:
        img = img.filter(ImageFilter.UnsharpMask(radius=2, percent=120, threshold=2))
    return encode_png(img)


class LocalUpscaleProvider(StopsAtReports):
    """:class:`~app.providers.base.UpscaleProvider` that really resizes (Lanczos), offline."""

    capabilities = LocalCapabilities(LOCAL_UPSCALE)

    async def upscale(
        self, *, image: bytes, scale: int, model: str, face_enhance: bool = False
    ) -> bytes:
        """PNG of the image enlarged ``scale`` times per side; bad bytes fail permanently."""
        return await asyncio.to_thread(upscale_image, image, scale, face_enhance)
