"""The local video provider makes animated WebP clips of the requested length and size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.providers import LocalVideoProvider, PermanentProviderError
from app.providers.local import VIDEO_FPS, plan_video
from tests.providers.conftest import png_bytes


def frames_of(data: bytes) -> tuple[Image.Image, list[int]]:
    """The decoded animation and each frame's duration in ms."""
    img = Image.open(io.BytesIO(data))
    durations = []
    for index in range(getattr(img, "n_frames", 1)):
        img.seek(index)
        img.load()
        durations.append(int(img.info["duration"]))
    return img, durations


async def generate(
    duration: float = 2.0, width: int = 96, height: int = 64, image: bytes | None = None
) -> tuple[bytes, str]:
    return await LocalVideoProvider().generate_video(
        prompt="a fox running",
        duration_seconds=duration,
        width=width,
        height=height,
        image=image,
        model="runway-gen4",
    )


@pytest.mark.parametrize("duration", [0.5, 1.0, 2.0, 2.35])
async def test_clip_lasts_the_requested_duration_at_the_requested_size(duration: float) -> None:
    data, mime = await generate(duration)
    assert mime == "image/webp"
    img, durations = frames_of(data)
    assert img.format == "WEBP"
    assert img.size == (96, 64)
    assert getattr(img, "is_animated", False)
    assert len(durations) == max(2, round(duration * VIDEO_FPS))
    assert sum(durations) == round(duration * 1000)


@pytest.mark.parametrize("size", [(1, 1), (4, 4), (8, 8), (33, 17)])
async def test_tiny_clips_keep_every_frame(size: tuple[int, int]) -> None:
    data, _ = await generate(2.0, width=size[0], height=size[1])
    img, durations = frames_of(data)
    assert img.size == size
    assert len(durations) == 2 * VIDEO_FPS
    assert sum(durations) == 2000


async def test_clip_starts_from_the_source_image_cropped_to_the_requested_size() -> None:
    source = png_bytes(200, 100, colour=(250, 10, 10))
    data, _ = await generate(1.0, width=64, height=64, image=source)
    img, durations = frames_of(data)
    assert img.size == (64, 64)
    assert len(durations) == VIDEO_FPS
    img.seek(0)
    r, g, b = img.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60  # still the red source, give or take the bar


async def test_same_request_gives_the_same_clip() -> None:
    assert (await generate(1.0))[0] == (await generate(1.0))[0]


async def test_bad_source_image_is_a_permanent_error() -> None:
    with pytest.raises(PermanentProviderError, match="not a valid image"):
        await generate(image=b"definitely not an image")


@pytest.mark.parametrize("duration", [0.0, -1.0, 61.0, float("nan")])
async def test_out_of_range_durations_are_refused(duration: float) -> None:
    with pytest.raises(PermanentProviderError, match="duration"):
        await generate(duration)


async def test_clips_too_large_for_memory_are_refused() -> None:
    with pytest.raises(PermanentProviderError, match="too large"):
        await generate(60.0, width=4000, height=4000)


@pytest.mark.parametrize("duration", [0.1, 0.33, 1.0, 4.999, 10.0])
def test_plan_frame_durations_add_up_exactly(duration: float) -> None:
    plan = plan_video(duration, 1280, 720)
    assert plan.total_ms == round(duration * 1000)
    assert plan.frames >= 2
    assert max(plan.frame_ms) - min(plan.frame_ms) <= 1
    assert plan.frames * 1280 * 720 <= 40_000_000
