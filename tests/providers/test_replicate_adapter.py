"""The Replicate adapter against the fake Replicate: ``Prefer: wait`` finishing in the create's
answer or returning early, ``aborted``, failures, cancel, and the host allow-list."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

import pytest
from PIL import Image
from pydantic import SecretStr

from app.outbound import OutboundHttp
from app.providers.base import (
    ErrorCode,
    PermanentProviderError,
    RetryableProviderError,
    SourceImage,
    TaskReady,
    TaskRunning,
    UpscaleTaskRequest,
)
from app.providers.replicate import DEFAULT_UPSCALE_VERSION, ReplicateProvider
from daygen_queue import VirtualClock
from tests.providers.adapter_support import REPLICATE_TOKEN, assert_no_secret
from tests.providers.fakes.common import Canned
from tests.providers.fakes.replicate import FakeReplicate

REQUEST = UpscaleTaskRequest(
    model="real-esrgan", image=SourceImage(url="https://storage.example/a.png"), scale=2
)


async def test_prefer_wait_finishes_in_the_create_answer(
    replicate: ReplicateProvider, fake_replicate: FakeReplicate, caplog: pytest.LogCaptureFixture
) -> None:
    fake_replicate.script("succeeded")
    submitted = await replicate.submit(REQUEST)
    [create] = fake_replicate.calls("POST")
    assert create.path == "/v1/predictions"
    assert create.headers["Prefer"] == "wait=5"
    assert create.headers["Authorization"] == f"Bearer {REPLICATE_TOKEN}"
    assert create.body == {
        "version": DEFAULT_UPSCALE_VERSION,
        "input": {"image": "https://storage.example/a.png", "scale": 2, "face_enhance": False},
    }
    assert isinstance(submitted.state, TaskReady)  # no poll needed
    output = await replicate.download(submitted.state)
    assert Image.open(io.BytesIO(output.data)).size == (16, 16)
    assert fake_replicate.calls("GET", "/v1/") == []
    assert_no_secret(caplog.text)


async def test_prefer_wait_returning_early_is_polled(
    replicate: ReplicateProvider, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.script("processing", "processing", "succeeded")
    submitted = await replicate.submit(replace(REQUEST, face_enhance=True, scale=4))
    assert isinstance(submitted.state, TaskRunning) and submitted.state.status == "processing"
    task = submitted.task
    assert task.poll_url == f"{fake_replicate.url}/v1/predictions/{task.task_id}"
    assert task.cancel_url == f"{task.poll_url}/cancel"
    assert isinstance(await replicate.poll(task), TaskRunning)
    ready = await replicate.poll(task)
    assert isinstance(ready, TaskReady)
    assert Image.open(io.BytesIO((await replicate.download(ready)).data)).size == (32, 32)


async def test_without_prefer_wait_a_prediction_starts(
    fake_replicate: FakeReplicate, http: OutboundHttp, virtual_clock: VirtualClock
) -> None:
    adapter = ReplicateProvider(
        api_token=SecretStr(REPLICATE_TOKEN), base_url=fake_replicate.url, outbound=http,
        clock=virtual_clock, prefer_wait_seconds=0,
    )  # fmt: skip
    submitted = await adapter.submit(REQUEST)
    assert "Prefer" not in fake_replicate.calls("POST")[0].headers
    assert isinstance(submitted.state, TaskRunning) and submitted.state.status == "starting"
    assert submitted.state.queued


async def test_inline_image_is_a_data_uri(
    replicate: ReplicateProvider, fake_replicate: FakeReplicate
) -> None:
    await replicate.submit(
        replace(REQUEST, image=SourceImage(data=b"abc", content_type="image/jpeg"))
    )
    assert fake_replicate.calls("POST")[0].body["input"]["image"] == "data:image/jpeg;base64,YWJj"


async def test_aborted_is_retryable(
    replicate: ReplicateProvider, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.script("starting", "aborted")
    submitted = await replicate.submit(REQUEST)
    with pytest.raises(RetryableProviderError) as raised:
        await replicate.poll(submitted.task)
    assert raised.value.code == ErrorCode.ABORTED


async def test_failed_is_final_and_the_raw_error_is_only_logged(
    replicate: ReplicateProvider, fake_replicate: FakeReplicate, caplog: pytest.LogCaptureFixture
) -> None:
    fake_replicate.script("processing", "failed")
    submitted = await replicate.submit(REQUEST)
    with caplog.at_level(logging.WARNING), pytest.raises(PermanentProviderError) as raised:
        await replicate.poll(submitted.task)
    assert raised.value.code == ErrorCode.TASK_FAILED
    assert "CUDA" not in raised.value.message
    assert "CUDA out of memory" in caplog.text
    assert_no_secret(caplog.text)


async def test_cancel(replicate: ReplicateProvider, fake_replicate: FakeReplicate) -> None:
    fake_replicate.script("processing")
    submitted = await replicate.submit(REQUEST)
    assert await replicate.cancel(submitted.task) is True
    assert fake_replicate.calls("POST", "/v1/predictions/")[0].path.endswith("/cancel")
    with pytest.raises(PermanentProviderError) as raised:
        await replicate.poll(submitted.task)
    assert raised.value.code == ErrorCode.CANCELLED


async def test_a_get_url_on_a_foreign_host_is_not_followed(
    replicate: ReplicateProvider, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.script("processing", "succeeded")
    submitted = await replicate.submit(REQUEST)
    moved = replace(submitted.task, poll_url="https://attacker.test/v1/predictions/x",
                    cancel_url="https://attacker.test/cancel")  # fmt: skip
    assert isinstance(await replicate.poll(moved), TaskReady)
    assert fake_replicate.calls("GET")[-1].path == f"/v1/predictions/{moved.task_id}"
    assert await replicate.cancel(moved) is True
    assert fake_replicate.calls("POST")[-1].path == f"/v1/predictions/{moved.task_id}/cancel"


async def test_http_failures(replicate: ReplicateProvider, fake_replicate: FakeReplicate) -> None:
    fake_replicate.inject(
        "submit",
        Canned(429, {"detail": "Request was throttled. Your rate limit resets in ~30s."},
               {"Retry-After": "30"}),
        Canned(402, {"detail": "Insufficient credit"}),
    )  # fmt: skip
    with pytest.raises(RetryableProviderError) as limited:
        await replicate.submit(REQUEST)
    assert limited.value.code == ErrorCode.RATE_LIMITED and limited.value.retry_after == 30
    with pytest.raises(PermanentProviderError) as broke:
        await replicate.submit(REQUEST)
    assert broke.value.code == ErrorCode.OUT_OF_CREDITS
    fake_replicate.script("processing", "succeeded")
    submitted = await replicate.submit(REQUEST)
    fake_replicate.inject("poll", Canned(502, "Bad Gateway"))
    with pytest.raises(RetryableProviderError):
        await replicate.poll(submitted.task)
    assert isinstance(await replicate.poll(submitted.task), TaskReady)


async def test_an_unpinned_version_is_refused(
    fake_replicate: FakeReplicate, http: OutboundHttp, virtual_clock: VirtualClock
) -> None:
    adapter = ReplicateProvider(
        api_token=SecretStr(REPLICATE_TOKEN), base_url=fake_replicate.url, outbound=http,
        clock=virtual_clock, version="0" * 64,
    )  # fmt: skip
    with pytest.raises(PermanentProviderError) as raised:
        await adapter.submit(REQUEST)
    assert raised.value.code == ErrorCode.INVALID_REQUEST
