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

from app.providers.local.image import (
    MAX_PIXELS,
    MAX_SIDE,
    LocalImageProvider,
    check_size,
    encode_png,
    render_image,
)
from app.providers.local.upscale import LocalUpscaleProvider, decode_image, upscale_image
from app.providers.local.video import (
    VIDEO_FPS,
    LocalVideoProvider,
    VideoPlan,
    plan_video,
    render_video,
)

__all__ = [
    "MAX_PIXELS",
    "MAX_SIDE",
    "VIDEO_FPS",
    "LocalImageProvider",
    "LocalUpscaleProvider",
    "LocalVideoProvider",
    "VideoPlan",
    "check_size",
    "decode_image",
    "encode_png",
    "plan_video",
    "render_image",
    "render_video",
    "upscale_image",
]
