"""The BFL adapter against the fake BFL: every status and HTTP failure it must tell apart, on
the virtual clock (deadlines, result links that expire after 10 minutes)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from PIL import Image
from pydantic import SecretStr

from app.outbound import OutboundHttp
from app.providers.base import (
    ErrorCode,
    ImageTaskRequest,
    PermanentProviderError,
    ProviderError,
    ProviderTask,
    RetryableProviderError,
    SourceImage,
    TaskReady,
    TaskRunning,
)
from app.providers.bfl import CAPABILITIES, BflProvider, aspect_ratio
from app.providers.http import HostPolicy
from daygen_queue import VirtualClock
from tests.providers.adapter_support import BFL_KEY, assert_no_secret
from tests.providers.fakes.bfl import OPENAPI_FIELDS, FakeBfl
from tests.providers.fakes.common import Canned, FakeServer

REQUEST = ImageTaskRequest(model="flux-1.1-pro", prompt="a red fox", width=512, height=384, seed=7)


async def run_to_ready(bfl: BflProvider, request: ImageTaskRequest = REQUEST) -> TaskReady:
    submitted = await bfl.submit(request)
    for _ in range(10):
        state = await bfl.poll(submitted.task)
        if isinstance(state, TaskReady):
            return state
    raise AssertionError("never ready")


async def test_submit_poll_ready_download(
    bfl: BflProvider, fake_bfl: FakeBfl, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bfl.script("Pending", "Pending", "Ready")
    submitted = await bfl.submit(REQUEST)
    task = submitted.task
    assert task.provider == "bfl" and task.task_id in fake_bfl.tasks
    assert task.poll_url == f"{fake_bfl.url}/v1/get_result?id={task.task_id}"
    assert isinstance(submitted.state, TaskRunning) and submitted.state.poll_after == 0.5
    [post] = fake_bfl.calls("POST")
    assert post.path == "/v1/flux-pro-1.1"
    assert post.headers["x-key"] == BFL_KEY
    assert post.body == {"prompt": "a red fox", "output_format": "png", "seed": 7,
                         "width": 512, "height": 384}  # fmt: skip
    first = await bfl.poll(task)
    assert isinstance(first, TaskRunning) and first.status == "Pending"
    assert first.progress == pytest.approx(0.3)
    await bfl.poll(task)
    ready = await bfl.poll(task)
    assert isinstance(ready, TaskReady)
    output = await bfl.download(ready)
    assert output.content_type == "image/png"
    assert Image.open(io.BytesIO(output.data)).format == "PNG"
    file_get = fake_bfl.calls("GET", "/files/")[-1]
    assert "x-key" not in {h.lower() for h in file_get.headers}  # result links get no key
    assert_no_secret(caplog.text)


async def test_other_models_use_bfl_field_names(bfl: BflProvider, fake_bfl: FakeBfl) -> None:
    source = SourceImage(url="https://media.example/x.png")
    await bfl.submit(
        ImageTaskRequest(model="flux-1.1-pro-ultra", prompt="p", width=1920, height=1080,
                         images=(source,), options={"raw": True, "imagePromptStrength": 0.3})
    )  # fmt: skip
    await bfl.submit(
        ImageTaskRequest(model="flux-kontext-pro", prompt="make it blue", width=1024,
                         height=1024, images=(source, SourceImage(data=b"\x89PNG")),
                         options={"safetyTolerance": 1})
    )  # fmt: skip
    ultra, kontext = (c for c in fake_bfl.calls("POST"))
    assert ultra.path == "/v1/flux-pro-1.1-ultra"
    assert ultra.body["aspect_ratio"] == "16:9"
    assert ultra.body["image_prompt"] == source.url and ultra.body["raw"] is True
    assert kontext.path == "/v1/flux-kontext-pro"
    assert kontext.body["input_image"] == source.url
    assert kontext.body["input_image_2"] == "iVBORw=="  # raw base64, as BFL documents
    assert kontext.body["safety_tolerance"] == 1
    for call in (ultra, kontext):
        assert set(call.body) <= OPENAPI_FIELDS[call.path]
    assert set(CAPABILITIES) == {"flux-1.1-pro", "flux-1.1-pro-ultra", "flux-kontext-pro"}


def test_aspect_ratio_is_reduced_and_clamped() -> None:
    assert aspect_ratio(1920, 1080) == "16:9"
    assert aspect_ratio(1024, 1024) == "1:1"
    assert aspect_ratio(4000, 100) == "21:9"
    assert aspect_ratio(100, 4000) == "9:21"


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        ("Request Moderated", ErrorCode.MODERATED, "refused this prompt"),
        ("Content Moderated", ErrorCode.MODERATED, "withheld the generated image"),
        ("Error", ErrorCode.TASK_FAILED, "failed to generate"),
    ],
)
async def test_final_statuses_fail_for_good_with_a_safe_message(
    bfl: BflProvider,
    fake_bfl: FakeBfl,
    caplog: pytest.LogCaptureFixture,
    status: str,
    code: ErrorCode,
    message: str,
) -> None:
    fake_bfl.script("Pending", status)
    submitted = await bfl.submit(REQUEST)
    await bfl.poll(submitted.task)
    with caplog.at_level(logging.WARNING), pytest.raises(PermanentProviderError) as raised:
        await bfl.poll(submitted.task)
    assert raised.value.code == code
    assert message in raised.value.message
    assert "flagged" not in raised.value.message  # the provider's own words are only logged
    if "Moderated" in status:
        assert "flagged by the fake" in caplog.text
    assert_no_secret(caplog.text, str(raised.value))


async def test_task_not_found(bfl: BflProvider, virtual_clock: VirtualClock) -> None:
    lost = ProviderTask("bfl", "no-such-task", None, virtual_clock.now())
    with pytest.raises(PermanentProviderError) as raised:
        await bfl.poll(lost)
    assert raised.value.code == ErrorCode.TASK_NOT_FOUND
    assert raised.value.message == "the image provider lost the task"


async def test_rate_limit_is_retryable_after_the_providers_delay(
    bfl: BflProvider, fake_bfl: FakeBfl
) -> None:
    fake_bfl.inject(
        "submit", Canned(429, {"detail": "Too many active tasks"}, {"Retry-After": "7"})
    )
    with pytest.raises(RetryableProviderError) as raised:
        await bfl.submit(REQUEST)
    assert raised.value.code == ErrorCode.RATE_LIMITED
    assert raised.value.retry_after == 7
    assert not raised.value.submission_unknown  # a 429 created nothing
    assert (await bfl.submit(REQUEST)).task.task_id in fake_bfl.tasks


async def test_out_of_credits_is_final(bfl: BflProvider, fake_bfl: FakeBfl) -> None:
    fake_bfl.inject("submit", Canned(402, {"detail": "Insufficient credits"}))
    with pytest.raises(PermanentProviderError) as raised:
        await bfl.submit(REQUEST)
    assert raised.value.code == ErrorCode.OUT_OF_CREDITS
    assert "provider out of credits" in raised.value.message


async def test_one_bad_gateway_on_a_poll_then_success(bfl: BflProvider, fake_bfl: FakeBfl) -> None:
    fake_bfl.script("Ready")
    submitted = await bfl.submit(REQUEST)
    fake_bfl.inject("poll", Canned(502, "<html>Bad Gateway</html>"))
    with pytest.raises(RetryableProviderError) as raised:
        await bfl.poll(submitted.task)
    assert raised.value.code == ErrorCode.UNAVAILABLE
    assert isinstance(await bfl.poll(submitted.task), TaskReady)


async def test_bad_gateway_on_submit_may_have_created_a_task(
    bfl: BflProvider, fake_bfl: FakeBfl
) -> None:
    fake_bfl.inject("submit", Canned(502, "Bad Gateway"))
    with pytest.raises(RetryableProviderError) as raised:
        await bfl.submit(REQUEST)
    assert raised.value.submission_unknown  # the caller decides; the adapter never resubmits
    assert len(fake_bfl.calls("POST")) == 1


async def test_invalid_parameters_name_the_field(bfl: BflProvider) -> None:
    with pytest.raises(PermanentProviderError) as raised:
        await bfl.submit(ImageTaskRequest(model="flux-1.1-pro", prompt="x", width=100, height=512))
    assert raised.value.code == ErrorCode.INVALID_REQUEST
    assert "width" in raised.value.message


async def test_a_refused_key_is_final(
    fake_bfl: FakeBfl, http: OutboundHttp, virtual_clock: VirtualClock
) -> None:
    wrong = BflProvider(
        api_key=SecretStr("bfl_wrong"), base_url=fake_bfl.url, outbound=http, clock=virtual_clock
    )
    with pytest.raises(PermanentProviderError) as raised:
        await wrong.submit(REQUEST)
    assert raised.value.code == ErrorCode.UNAUTHORIZED
    assert "bfl_wrong" not in str(raised.value)


async def test_unknown_statuses_run_until_the_deadline(
    bfl: BflProvider, fake_bfl: FakeBfl, virtual_clock: VirtualClock
) -> None:
    fake_bfl.script("Generating")
    submitted = await bfl.submit(REQUEST)
    virtual_clock.advance(timedelta(seconds=599))
    state = await bfl.poll(submitted.task)
    assert isinstance(state, TaskRunning) and state.status == "Generating"
    assert state.poll_after == 3.0  # polled less often as the wait grows
    virtual_clock.advance(timedelta(seconds=2))
    with pytest.raises(PermanentProviderError) as raised:
        await bfl.poll(submitted.task)
    assert raised.value.code == ErrorCode.DEADLINE


async def test_the_result_link_expires_after_ten_minutes(
    bfl: BflProvider, fake_bfl: FakeBfl, virtual_clock: VirtualClock
) -> None:
    fake_bfl.script("Ready")
    ready = await run_to_ready(bfl)
    virtual_clock.advance(timedelta(minutes=10))
    with pytest.raises(RetryableProviderError) as raised:
        await bfl.download(ready)
    assert raised.value.code == ErrorCode.RESULT_EXPIRED


@pytest.fixture
async def foreign() -> AsyncIterator[FakeServer]:
    """Another host, recording whatever reaches it."""
    server = FakeServer(result_ttl=timedelta(minutes=1))

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"status": "Ready", "result": {"sample": "https://x.test/"}})

    server.app.router.add_route("*", "/{tail:.*}", answer)
    await server.start(host="127.0.0.2")
    yield server
    await server.stop()


async def test_a_polling_url_on_a_foreign_host_gets_no_key(
    bfl: BflProvider, fake_bfl: FakeBfl, foreign: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bfl.polling_base = foreign.url
    fake_bfl.script("Pending", "Ready")
    submitted = await bfl.submit(REQUEST)
    assert submitted.task.poll_url is not None
    assert submitted.task.poll_url.startswith(foreign.url)
    with caplog.at_level(logging.WARNING):
        states = [await bfl.poll(submitted.task) for _ in range(2)]
    assert foreign.requests == []  # never contacted, so never sent the key
    # Polled at the configured host instead, and finished there.
    assert fake_bfl.tasks[submitted.task.task_id].polls == 2
    ready = states[-1]
    assert isinstance(ready, TaskReady) and ready.output_url.startswith(fake_bfl.url)
    assert "outside the allow-list" in caplog.text


def test_host_policy_keeps_the_key_on_bfl_hosts() -> None:
    policy = HostPolicy.of("https://api.bfl.ai", domains=("bfl.ai", "api.bfl.ml"))
    for allowed in ["https://api.bfl.ai/v1/x", "https://api.eu.bfl.ai/v1/get_result?id=1",
                    "https://api.us1.bfl.ai/v1/get_result", "https://api.bfl.ml/v1"]:  # fmt: skip
        assert policy.allows(allowed), allowed
    refused_urls = [
        "https://evilbfl.ai/v1",
        "https://bfl.ai.evil.test/",
        "http://api.eu.bfl.ai/",
        "https://api.bfl.ai:8443/",
        "ftp://api.bfl.ai/",
        "https://127.0.0.1/",
    ]
    for refused in refused_urls:
        assert not policy.allows(refused), refused


async def test_connection_refused_is_retryable_and_created_nothing(
    http: OutboundHttp, virtual_clock: VirtualClock
) -> None:
    server = FakeBfl()
    await server.start()
    url = server.url
    await server.stop()
    bfl = BflProvider(api_key=SecretStr(BFL_KEY), base_url=url, outbound=http, clock=virtual_clock)
    with pytest.raises(RetryableProviderError) as raised:
        await bfl.submit(REQUEST)
    assert raised.value.code == ErrorCode.UNAVAILABLE
    assert not raised.value.submission_unknown


async def test_provider_task_survives_a_json_column(bfl: BflProvider) -> None:
    submitted = await bfl.submit(REQUEST)
    assert ProviderTask.from_json(submitted.task.to_json()) == submitted.task
    assert isinstance(submitted.task, ProviderTask)
    assert not isinstance(ValueError(), ProviderError)
    assert await bfl.cancel(submitted.task) is False  # BFL has no cancel
