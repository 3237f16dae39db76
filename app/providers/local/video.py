"""The local video provider: an animated WebP (a slow zoom and pan over a source or a rendered
picture), of exactly the requested length, rendered with Pillow in a worker thread."""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps

from app.providers.base import PermanentProviderError, StopsAtReports
from app.providers.local.capabilities import LOCAL_VIDEO, LocalCapabilities
from app.providers.local.image import check_size, colour, render_image, seeded_rng
from app.providers.local.upscale import decode_image, normalise_mode

MAX_VIDEO_SECONDS = 60.0
"""Longest clip the local video provider makes."""
VIDEO_FPS = 10
"""Preferred frame rate of local clips."""
MIN_VIDEO_FPS = 2
"""The frame rate may drop this low to keep a large clip within the frame budget."""
VIDEO_PIXEL_BUDGET = 40_000_000
"""All frames of a clip are held in memory while encoding: width x height x frames <= this."""


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
    prompt: str,
    duration_seconds: float,
    width: int,
    height: int,
    image: bytes | None,
    seed: int | None = None,
    last_image: bytes | None = None,
) -> bytes:
    """An animated WebP: a slow zoom and pan over the source (or a rendered) picture.

    Every frame differs from the previous one (zoom step, colour drift, a progress bar along
    the bottom, and on images narrower than the frame count a blinking corner pixel), because
    the WebP encoder merges (near-)identical consecutive frames, which would change the frame
    count.
    """
    plan = plan_video(duration_seconds, width, height)
    if image is not None:
        base = _fit(image, width, height, "first image")
    else:
        base = render_image(prompt, width, height, seed=seed)
    end = _fit(last_image, width, height, "last image") if last_image is not None else None
    rng = seeded_rng(prompt, seed)
    tint = Image.new("RGB", (width, height), colour(rng, sat=(0.6, 1.0), val=(0.8, 1.0)))
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
        if end is not None:  # cross-fade to the last image, reached on the last frame
            frame = Image.blend(frame, end, t)
        else:
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


def _fit(data: bytes, width: int, height: int, what: str) -> Image.Image:
    """A source image cropped and scaled to fill the frame (centred)."""
    return ImageOps.fit(
        normalise_mode(decode_image(data, what=what)).convert("RGB"), (width, height)
    )


class LocalVideoProvider(StopsAtReports):
    """:class:`~app.providers.base.VideoProvider` making animated WebP clips, offline."""

    mime_type = "image/webp"
    capabilities = LocalCapabilities(LOCAL_VIDEO)

    async def generate_video(
        self,
        *,
        prompt: str,
        duration_seconds: float,
        width: int,
        height: int,
        image: bytes | None,
        model: str,
        seed: int | None = None,
        last_image: bytes | None = None,
    ) -> tuple[bytes, str]:
        """An animated WebP of ``duration_seconds`` (frame durations sum to it exactly),
        starting on ``image`` and, with ``last_image``, cross-fading to it."""
        plan_video(duration_seconds, width, height)  # fail fast, before taking a thread
        data = await asyncio.to_thread(
            render_video, prompt, duration_seconds, width, height, image, seed, last_image
        )
        return data, self.mime_type
