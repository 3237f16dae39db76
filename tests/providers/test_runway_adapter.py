"""The Runway adapter against the fake Runway: image-to-video and text-only routes, THROTTLED
first, failure codes, cancel, and creates that are never sent twice."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from app.providers.base import (
    ErrorCode,
    PermanentProviderError,
    RetryableProviderError,
    SourceImage,
    TaskReady,
    TaskRunning,
    VideoTaskRequest,
)
from app.providers.runway import CAPABILITIES, RunwayProvider, ratio_for
from daygen_queue import VirtualClock
from tests.providers.adapter_support import RUNWAY_SECRET, assert_no_secret
from tests.providers.fakes.common import Canned
from tests.providers.fakes.runway import FakeRunway

IMAGE = SourceImage(url="https://storage.example/signed/frame.png?X-Goog-Signature=ab")
REQUEST = VideoTaskRequest(
    model="runway-gen4", prompt="waves at sunset", duration_seconds=5, width=1280, height=720,
    image=IMAGE,
)  # fmt: skip


async def test_image_to_video_throttled_running_succeeded(
    runway: RunwayProvider, fake_runway: FakeRunway, caplog: pytest.LogCaptureFixture
) -> None:
    fake_runway.script("THROTTLED", "RUNNING", "RUNNING", "SUCCEEDED")
    submitted = await runway.submit(REQUEST)
    [create] = fake_runway.calls("POST")
    assert create.path == "/v1/image_to_video"
    assert create.headers["Authorization"] == f"Bearer {RUNWAY_SECRET}"
    assert create.headers["X-Runway-Version"] == "2024-11-06"
    assert create.body == {"model": "gen4_turbo", "promptImage": IMAGE.url, "ratio": "1280:720",
                           "duration": 5, "promptText": "waves at sunset"}  # fmt: skip
    states = [await runway.poll(submitted.task) for _ in range(4)]
    throttled, running, running2, done = states
    assert isinstance(throttled, TaskRunning) and throttled.status == "THROTTLED"
    assert throttled.queued
    assert isinstance(running, TaskRunning) and running.progress == 0.5 and not running.queued
    assert isinstance(running2, TaskRunning) and running2.progress == 0.75
    assert isinstance(done, TaskReady)
    output = await runway.download(done)
    assert output.content_type == "video/mp4" and output.data[4:8] == b"ftyp"
    assert_no_secret(caplog.text)


async def test_text_only_goes_to_gen4_5_text_to_video(
    runway: RunwayProvider, fake_runway: FakeRunway
) -> None:
    request = VideoTaskRequest(
        model="runway-gen4", prompt="a lighthouse", duration_seconds=5, width=512, height=900
    )
    await runway.submit(request)
    [create] = fake_runway.calls("POST")
    assert create.path == "/v1/text_to_video"
    assert create.body == {"model": "gen4.5", "promptText": "a lighthouse", "ratio": "720:1280",
                           "duration": 5}  # fmt: skip
    caps = CAPABILITIES["runway-gen4"]
    assert caps.accepts_text_only and not caps.requires_image
    assert caps.extra["text_only_model"] == "gen4.5"


async def test_image_bytes_go_inline_up_to_five_megabytes(
    runway: RunwayProvider, fake_runway: FakeRunway
) -> None:
    small = VideoTaskRequest(
        model="runway-gen4", prompt="", duration_seconds=10, width=960, height=960,
        image=SourceImage(data=b"\x89PNG\r\n", content_type="image/png"),
    )  # fmt: skip
    await runway.submit(small)
    body = fake_runway.calls("POST")[0].body
    assert body["promptImage"] == "data:image/png;base64,iVBORw0K"
    assert body["ratio"] == "960:960" and "promptText" not in body
    big = VideoTaskRequest(
        model="runway-gen4", prompt="x", duration_seconds=5, width=1280, height=720,
        image=SourceImage(data=b"0" * (5 * 1024 * 1024 + 1)),
    )  # fmt: skip
    with pytest.raises(PermanentProviderError) as raised:
        await runway.submit(big)
    assert raised.value.code == ErrorCode.INVALID_REQUEST
    assert len(fake_runway.calls("POST")) == 1  # refused before sending


def test_ratio_for_picks_the_closest_shape() -> None:
    ratios = ("1280:720", "720:1280", "960:960", "1584:672")
    assert ratio_for(1920, 1080, ratios) == "1280:720"
    assert ratio_for(1000, 1000, ratios) == "960:960"
    assert ratio_for(2400, 1000, ratios) == "1584:672"


@pytest.mark.parametrize(
    ("failure_code", "error", "code"),
    [
        ("SAFETY.INPUT.TEXT", PermanentProviderError, ErrorCode.MODERATED),
        ("SAFETY.OUTPUT.VIDEO", PermanentProviderError, ErrorCode.MODERATED),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", PermanentProviderError, ErrorCode.MODERATED),
        ("INTERNAL.BAD_OUTPUT.CODE01", RetryableProviderError, ErrorCode.TASK_FAILED),
        ("INPUT_PREPROCESSING.INTERNAL", RetryableProviderError, ErrorCode.TASK_FAILED),
        ("ASSET.INVALID", PermanentProviderError, ErrorCode.INVALID_REQUEST),
        ("", PermanentProviderError, ErrorCode.TASK_FAILED),
    ],
)
async def test_failure_codes_are_mapped(
    runway: RunwayProvider,
    fake_runway: FakeRunway,
    caplog: pytest.LogCaptureFixture,
    failure_code: str,
    error: type[Exception],
    code: ErrorCode,
) -> None:
    fake_runway.script("RUNNING", f"FAILED:{failure_code}" if failure_code else "FAILED")
    submitted = await runway.submit(REQUEST)
    await runway.poll(submitted.task)
    with caplog.at_level(logging.WARNING), pytest.raises(error) as raised:
        await runway.poll(submitted.task)
    assert getattr(raised.value, "code", None) == code
    assert "raw provider text" not in str(raised.value)  # Runway's words are only logged
    assert "raw provider text" in caplog.text
    assert_no_secret(caplog.text)


async def test_cancel_deletes_the_task(runway: RunwayProvider, fake_runway: FakeRunway) -> None:
    fake_runway.script("RUNNING")
    submitted = await runway.submit(REQUEST)
    await runway.poll(submitted.task)
    assert await runway.cancel(submitted.task) is True
    [delete] = fake_runway.calls("DELETE")
    assert delete.path == f"/v1/tasks/{submitted.task.task_id}"
    with pytest.raises(PermanentProviderError) as raised:
        await runway.poll(submitted.task)
    assert raised.value.code == ErrorCode.CANCELLED
    assert await runway.cancel(submitted.task) is True  # a finished task is deleted
    with pytest.raises(PermanentProviderError) as gone:
        await runway.poll(submitted.task)
    assert gone.value.code == ErrorCode.TASK_NOT_FOUND
    assert await runway.cancel(submitted.task) is True  # already gone counts as cancelled


async def test_a_failed_create_is_never_sent_twice(
    runway: RunwayProvider, fake_runway: FakeRunway
) -> None:
    fake_runway.inject("submit", Canned(502, "Bad Gateway"))
    with pytest.raises(RetryableProviderError) as raised:
        await runway.submit(REQUEST)
    assert raised.value.submission_unknown
    assert len(fake_runway.calls("POST")) == 1


async def test_rate_limit_and_credits(runway: RunwayProvider, fake_runway: FakeRunway) -> None:
    fake_runway.inject(
        "submit",
        Canned(429, {"error": "Daily task limit reached"}, {"Retry-After": "30"}),
        Canned(400, {"error": "You do not have enough credits to run this task."}),
        Canned(400, {"error": "Invalid promptImage"}),
    )
    with pytest.raises(RetryableProviderError) as limited:
        await runway.submit(REQUEST)
    assert limited.value.code == ErrorCode.RATE_LIMITED and limited.value.retry_after == 30
    with pytest.raises(PermanentProviderError) as broke:
        await runway.submit(REQUEST)
    assert broke.value.code == ErrorCode.OUT_OF_CREDITS
    with pytest.raises(PermanentProviderError) as invalid:
        await runway.submit(REQUEST)
    assert invalid.value.code == ErrorCode.INVALID_REQUEST


async def test_one_bad_gateway_on_a_poll_then_success(
    runway: RunwayProvider, fake_runway: FakeRunway
) -> None:
    fake_runway.script("SUCCEEDED")
    submitted = await runway.submit(REQUEST)
    fake_runway.inject("poll", Canned(502, "Bad Gateway"))
    with pytest.raises(RetryableProviderError):
        await runway.poll(submitted.task)
    assert isinstance(await runway.poll(submitted.task), TaskReady)


async def test_a_render_that_never_ends_hits_the_deadline(
    runway: RunwayProvider, fake_runway: FakeRunway, virtual_clock: VirtualClock
) -> None:
    """Thirty polls of a long render, driven on the virtual clock at the adapter's pace."""
    fake_runway.script("THROTTLED", "RUNNING")
    submitted = await runway.submit(REQUEST)
    waits: list[float] = []
    for _ in range(30):
        state = await runway.poll(submitted.task)
        assert isinstance(state, TaskRunning)
        waits.append(state.poll_after)
        virtual_clock.advance(timedelta(seconds=state.poll_after))
    assert waits[0] == 5.0 and waits[-1] == 15.0 and waits == sorted(waits)
    virtual_clock.advance(timedelta(minutes=30))
    with pytest.raises(PermanentProviderError) as raised:
        await runway.poll(submitted.task)
    assert raised.value.code == ErrorCode.DEADLINE


async def test_output_links_expire(
    runway: RunwayProvider, fake_runway: FakeRunway, virtual_clock: VirtualClock
) -> None:
    fake_runway.script("SUCCEEDED")
    submitted = await runway.submit(REQUEST)
    ready = await runway.poll(submitted.task)
    assert isinstance(ready, TaskReady)
    virtual_clock.advance(timedelta(hours=25))
    with pytest.raises(RetryableProviderError) as raised:
        await runway.download(ready)
    assert raised.value.code == ErrorCode.RESULT_EXPIRED
