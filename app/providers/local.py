"""Offline providers: real pictures, animations and upscales made with Pillow.

They let every job type complete with no account and no network, and they produce genuine
files (decodable, of the requested size and length) so the full flow can be tested end to end.
Output is deterministic: the same prompt and seed always give the same bytes, which keeps tests
and duplicate deliveries reproducible.

All Pillow work is CPU-bound and runs in a worker thread (``asyncio.to_thread``) so the event
loop keeps serving requests and deliveries while an image renders. Size limits are checked
before any pixel is allocated, because a request for a 100k x 100k image must fail as a clear
job error, not as an out-of-memory kill of the whole service.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import math
import random
import textwrap
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps

from app.providers.base import PermanentProviderError

__all__ = [
    "MAX_PIXELS",
    "MAX_SIDE",
    "LocalImageProvider",
    "LocalUpscaleProvider",
    "LocalVideoProvider",
    "VideoPlan",
    "decode_image",
    "plan_video",
    "render_image",
    "render_video",
    "upscale_image",
]

MAX_SIDE = 4096
"""Largest width or height of any result, in pixels."""
MAX_PIXELS = 16_000_000
"""Largest area of any result (16 MP, about 48 MB as RGB)."""
MAX_SOURCE_PIXELS = 40_000_000
"""Largest source image we agree to decode (checked from the header, before decoding)."""
MAX_VIDEO_SECONDS = 60.0
"""Longest clip the local video provider makes."""
VIDEO_FPS = 10
"""Preferred frame rate of local clips."""
MIN_VIDEO_FPS = 2
"""The frame rate may drop this low to keep a large clip within the frame budget."""
VIDEO_PIXEL_BUDGET = 40_000_000
"""All frames of a clip are held in memory while encoding: width x height x frames <= this."""
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
            f"{what} size {width}x{height} exceeds the limit of"
            f" {MAX_PIXELS // 1_000_000} megapixels"
        )


# --------------------------------------------------------------------------- rendering


def _rng(prompt: str, seed: int | None) -> random.Random:
    """A generator seeded from prompt and seed, stable across runs and Python versions."""
    tag = "none" if seed is None else str(int(seed))
    digest = hashlib.sha256(f"{tag}\x00{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _colour(
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
    c1 = _colour(rng, sat=(0.5, 1.0), val=(0.25, 0.6))
    c2 = _colour(rng, sat=(0.4, 0.9), val=(0.7, 1.0))
    mid = _colour(rng, sat=(0.5, 1.0), val=(0.5, 0.9))
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
        fill = (*_colour(rng, sat=(0.3, 1.0), val=(0.4, 1.0)), rng.randint(70, 170))
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
    rng = _rng(prompt, seed)
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


def _normalise_mode(img: Image.Image) -> Image.Image:
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
    img = _normalise_mode(img)
    return encode_png(img.resize((width * scale, height * scale), Image.Resampling.LANCZOS))


# --------------------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoPlan:
    """How a clip is cut: ``len(frame_ms)`` frames whose durations add up to the clip length."""

    frame_ms: tuple[int, ...]

    @property
    def frames(self) -> int:
        """Number of frames."""
        return len(self.frame_ms)

    @property
    def total_ms(self) -> int:
        """Clip length in milliseconds (the sum of the frame durations)."""
        return sum(self.frame_ms)


def plan_video(duration_seconds: float, width: int, height: int) -> VideoPlan:
    """Choose frame count and per-frame durations for a clip.

    Frame durations are whole milliseconds, so they are spread (some frames 1 ms longer) to
    make the total exactly ``round(duration * 1000)``. The frame rate is :data:`VIDEO_FPS`,
    lowered for large sizes so all frames fit in :data:`VIDEO_PIXEL_BUDGET`. At least two
    frames are made: a one-frame WebP is a still image with no duration.
    """
    check_size(width, height, "video")
    if not isinstance(duration_seconds, int | float) or not math.isfinite(duration_seconds):
        raise PermanentProviderError(f"video duration must be a number, got {duration_seconds!r}")
    if not 0.1 <= duration_seconds <= MAX_VIDEO_SECONDS:
        raise PermanentProviderError(
            f"video duration must be between 0.1 and {MAX_VIDEO_SECONDS:g} seconds,"
            f" got {duration_seconds:g}"
        )
    max_frames = VIDEO_PIXEL_BUDGET // (width * height)
    fps = min(VIDEO_FPS, max_frames / duration_seconds)
    if fps < MIN_VIDEO_FPS or max_frames < 2:
        raise PermanentProviderError(
            f"video of {width}x{height} for {duration_seconds:g}s is too large for the local"
            " provider; use a smaller size or a shorter duration"
        )
    total_ms = round(duration_seconds * 1000)
    frames = max(2, round(duration_seconds * fps))
    ms = tuple((i + 1) * total_ms // frames - i * total_ms // frames for i in range(frames))
    return VideoPlan(ms)


def render_video(
    prompt: str, duration_seconds: float, width: int, height: int, image: bytes | None
) -> bytes:
    """An animated WebP: a slow zoom and pan over the source (or a rendered) picture.

    Every frame differs from the previous one (zoom step, colour drift, a progress bar along
    the bottom, and on images narrower than the frame count a blinking corner pixel), because
    the WebP encoder merges (near-)identical consecutive frames, which would change the frame
    count.
    """
    plan = plan_video(duration_seconds, width, height)
    if image is not None:
        base = ImageOps.fit(_normalise_mode(decode_image(image)).convert("RGB"), (width, height))
    else:
        base = render_image(prompt, width, height, seed=None)
    rng = _rng(prompt, None)
    tint = Image.new("RGB", (width, height), _colour(rng, sat=(0.6, 1.0), val=(0.8, 1.0)))
    dx, dy = rng.choice((-1, 1)), rng.choice((-1, 1))
    bar_h = max(1, height // 60)
    frames: list[Image.Image] = []
    last = max(plan.frames - 1, 1)
    for i in range(plan.frames):
        t = i / last
        zoom = 1.0 + 0.2 * t
        cw, ch = width / zoom, height / zoom
        cx = width / 2 + dx * (width - cw) / 2 * t
        cy = height / 2 + dy * (height - ch) / 2 * t
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
        frame = base.resize((width, height), Image.Resampling.BILINEAR, box=box)
        frame = Image.blend(frame, tint, 0.3 * math.sin(math.pi * t) ** 2)
        draw = ImageDraw.Draw(frame)
        draw.rectangle(
            (0, height - bar_h, max(0, round(width * (i + 1) / plan.frames) - 1), height - 1),
            fill=(255, 255, 255),
        )
        if width < plan.frames:  # the bar cannot grow every frame: blink a corner pixel too
            draw.point((width - 1, 0), fill=(255, 255, 255) if i % 2 else (0, 0, 0))
        frames.append(frame)
    buf = io.BytesIO()
    frames[0].save(
        buf,
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=list(plan.frame_ms),
        loop=0,
        quality=80,
        method=0,
    )
    return buf.getvalue()


# --------------------------------------------------------------------------- providers


class LocalImageProvider:
    """:class:`~app.providers.base.ImageProvider` that renders with Pillow, offline.

    ``model`` is accepted and ignored: every model name gets the same local renderer, so
    seed requests naming ``flux-1.1-pro`` work unchanged.
    """

    async def generate_image(
        self, *, prompt: str, width: int, height: int, seed: int | None, model: str
    ) -> bytes:
        """PNG of exactly ``width`` x ``height``, identical for identical (prompt, seed, size)."""
        check_size(width, height)
        return await asyncio.to_thread(_render_png, prompt, width, height, seed)


def _render_png(prompt: str, width: int, height: int, seed: int | None) -> bytes:
    return encode_png(render_image(prompt, width, height, seed))


class LocalVideoProvider:
    """:class:`~app.providers.base.VideoProvider` making animated WebP clips, offline."""

    mime_type = "image/webp"

    async def generate_video(
        self,
        *,
        prompt: str,
        duration_seconds: float,
        width: int,
        height: int,
        image: bytes | None,
        model: str,
    ) -> tuple[bytes, str]:
        """An animated WebP of ``duration_seconds`` (frame durations sum to it exactly)."""
        plan_video(duration_seconds, width, height)  # fail fast, before taking a thread
        data = await asyncio.to_thread(render_video, prompt, duration_seconds, width, height, image)
        return data, self.mime_type


class LocalUpscaleProvider:
    """:class:`~app.providers.base.UpscaleProvider` that really resizes (Lanczos), offline."""

    async def upscale(self, *, image: bytes, scale: int, model: str) -> bytes:
        """PNG of the image enlarged ``scale`` times per side; bad bytes fail permanently."""
        return await asyncio.to_thread(upscale_image, image, scale)
