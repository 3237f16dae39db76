"""The local image provider: a deterministic picture for a prompt, rendered with Pillow.

The composition (gradient, shapes, texture, the prompt as a caption) depends only on the prompt
and the seed, and scales with the size. Rendering is CPU-bound and runs in a worker thread; the
size is checked before any pixel is allocated.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import math
import random
import textwrap
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps

from app.providers.base import PermanentProviderError, StopsAtReports
from app.providers.local.capabilities import LOCAL_IMAGE, LocalCapabilities

MAX_SIDE = 4096
"""Largest width or height of any result, in pixels."""
MAX_PIXELS = MAX_SIDE * MAX_SIDE
"""Largest area of any result: 4096 x 4096 (16.8 MP, about 50 MB as RGB), so that a 4x
upscale of a 1024 x 1024 image fits."""
PNG_COMPRESS_LEVEL = 3
"""zlib level for results: close to level 6 in size at a fraction of the time."""


def check_size(width: int, height: int, what: str = "image") -> None:
    """Refuse sizes that are nonsensical or would exhaust memory, before allocating anything."""
    if not isinstance(width, int) or not isinstance(height, int):
        raise PermanentProviderError(f"{what} size must be whole pixels, got {width!r}x{height!r}")
    if width < 1 or height < 1:
        raise PermanentProviderError(f"{what} size must be positive, got {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise PermanentProviderError(
            f"{what} size {width}x{height} exceeds the limit of {MAX_SIDE} pixels per side"
        )
    if width * height > MAX_PIXELS:
        raise PermanentProviderError(
            f"{what} size {width}x{height} exceeds the limit of {MAX_PIXELS} pixels"
            f" ({MAX_SIDE}x{MAX_SIDE})"
        )


def seeded_rng(prompt: str, seed: int | None) -> random.Random:
    """A generator seeded from prompt and seed, stable across runs and Python versions."""
    tag = "none" if seed is None else str(int(seed))
    digest = hashlib.sha256(f"{tag}\x00{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def colour(
    rng: random.Random, *, sat: tuple[float, float], val: tuple[float, float]
) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return round(r * 255), round(g * 255), round(b * 255)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` (cached: loading it costs more than drawing)."""
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):  # Pillow built without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _background(rng: random.Random, width: int, height: int) -> Image.Image:
    """A three-colour linear gradient at a prompt-dependent angle."""
    angle = rng.uniform(0, 360)
    grad = Image.linear_gradient("L").resize((363, 363), Image.Resampling.BILINEAR)
    grad = grad.rotate(angle, resample=Image.Resampling.BILINEAR).crop((53, 53, 309, 309))
    grad = grad.resize((width, height), Image.Resampling.BILINEAR)
    c1 = colour(rng, sat=(0.5, 1.0), val=(0.25, 0.6))
    c2 = colour(rng, sat=(0.4, 0.9), val=(0.7, 1.0))
    mid = colour(rng, sat=(0.5, 1.0), val=(0.5, 0.9))
    return ImageOps.colorize(grad, c1, c2, mid=mid)


def _shapes(rng: random.Random, img: Image.Image) -> None:
    """Translucent ellipses, rectangles and triangles placed relative to the image size."""
    width, height = img.size
    draw = ImageDraw.Draw(img, "RGBA")
    scale = min(width, height)
    for _ in range(rng.randint(5, 11)):
        kind = rng.choice(("ellipse", "rectangle", "triangle"))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.08, 0.45) * scale
        fill = (*colour(rng, sat=(0.3, 1.0), val=(0.4, 1.0)), rng.randint(70, 170))
        if kind == "ellipse":
            rx, ry = r, r * rng.uniform(0.5, 1.5)
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
        elif kind == "rectangle":
            draw.rectangle((cx - r, cy - r * 0.6, cx + r, cy + r * 0.6), fill=fill)
        else:
            start = rng.uniform(0, math.tau)
            angles = [start + k * math.tau / 3 for k in range(3)]
            points = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]
            draw.polygon(points, fill=fill)


def _texture(rng: random.Random, img: Image.Image) -> Image.Image:
    """Soft value noise (upscaled random grid), so results look like pictures, not flat art."""
    width, height = img.size
    coarse = _noise_layer(rng, width, height, 6)
    fine = _noise_layer(rng, width, height, 20)
    noise = ImageChops.overlay(coarse, fine).convert("RGB")
    return Image.blend(img, ImageChops.soft_light(img, noise), 0.5)


def _noise_layer(rng: random.Random, width: int, height: int, cells: int) -> Image.Image:
    """Random values on a ``cells``-wide grid, smoothly interpolated up to the image size."""
    gw = max(2, min(cells, width // 4))
    gh = max(2, min(cells, height // 4, round(gw * height / width) + 1))
    grid = Image.frombytes("L", (gw, gh), rng.randbytes(gw * gh))
    return grid.resize((width, height), Image.Resampling.BILINEAR)


def _caption(img: Image.Image, prompt: str) -> None:
    """Write the prompt on the image when there is room to read it."""
    width, height = img.size
    text = " ".join(prompt.split())
    if width < 96 or height < 48 or not text:
        return
    size = max(10, min(width // 22, height // 10, 48))
    font = _font(size)
    draw = ImageDraw.Draw(img, "RGBA")
    margin = max(4, size // 2)
    avg = max(1.0, draw.textlength("abcdefghijklmnopqrstuvwxyz", font=font) / 26)
    chars = max(4, int((width - 2 * margin) / avg))
    lines = textwrap.wrap(text, width=chars, max_lines=3, placeholder=" …")
    if not lines:
        return
    line_h = int(size * 1.25)
    band = line_h * len(lines) + margin
    if band > height // 2:
        lines = lines[:1]
        band = line_h + margin
    top = height - band
    draw.rectangle((0, top, width, height), fill=(0, 0, 0, 120))
    y = top + margin // 2
    for line in lines:
        while len(line) > 1 and draw.textlength(line, font=font) > width - 2 * margin:
            line = line[:-2] + "…"
        draw.text((margin, y), line, font=font, fill=(255, 255, 255, 235))
        y += line_h


def render_image(prompt: str, width: int, height: int, seed: int | None = None) -> Image.Image:
    """Render the RGB picture for (prompt, seed) at exactly ``width`` x ``height``.

    Pure and synchronous (call it in a thread); the composition depends only on prompt and
    seed, and scales with the requested size.
    """
    check_size(width, height)
    rng = seeded_rng(prompt, seed)
    img = _background(rng, width, height)
    _shapes(rng, img)
    img = _texture(rng, img)
    _caption(img, prompt)
    return img


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of ``img`` (no timestamps or other varying chunks, so output is reproducible)."""
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


_FORMATS = {"png": ("PNG", "image/png", ".png"), "jpeg": ("JPEG", "image/jpeg", ".jpg"),
            "webp": ("WEBP", "image/webp", ".webp")}  # fmt: skip
_MAGIC = {"png": (b"\x89PNG",), "jpeg": (b"\xff\xd8\xff",), "webp": (b"RIFF",)}


def reencode(data: bytes, output_format: str) -> tuple[bytes, str, str]:
    """``(bytes, mime type, extension)`` of an image in ``output_format`` (``png``, ``jpeg``,
    ``webp``): the bytes as they are when already in that format, else re-encoded (JPEG
    has no alpha: transparency is flattened on white)."""
    pillow_name, mime, extension = _FORMATS[output_format]
    if data.startswith(_MAGIC[output_format]) and (
        output_format != "webp" or data[8:12] == b"WEBP"
    ):
        return data, mime, extension
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        frame: Image.Image = img
        if output_format == "jpeg" and img.mode not in ("RGB", "L"):
            rgba = img.convert("RGBA")
            frame = Image.new("RGB", img.size, (255, 255, 255))
            frame.paste(rgba, mask=rgba.getchannel("A"))
        buf = io.BytesIO()
        if output_format == "png":
            frame.save(buf, pillow_name, compress_level=PNG_COMPRESS_LEVEL)
        else:
            frame.save(buf, pillow_name, quality=90)
    return buf.getvalue(), mime, extension


class LocalImageProvider(StopsAtReports):
    """:class:`~app.providers.base.ImageProvider` that renders with Pillow, offline.

    ``model`` is accepted and ignored: every model name gets the same local renderer, so
    seed requests naming ``flux-1.1-pro`` work unchanged.
    """

    capabilities = LocalCapabilities(LOCAL_IMAGE)

    async def generate_image(
        self, *, prompt: str, width: int, height: int, seed: int | None, model: str
    ) -> bytes:
        """PNG of exactly ``width`` x ``height``, identical for identical (prompt, seed, size)."""
        check_size(width, height)
        return await asyncio.to_thread(_render_png, prompt, width, height, seed)


def _render_png(prompt: str, width: int, height: int, seed: int | None) -> bytes:
    return encode_png(render_image(prompt, width, height, seed))
