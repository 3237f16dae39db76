"""The fakes checked against the vendors' own clients: the official ``runwayml`` and
``replicate`` SDKs complete round trips against them, so the fakes speak those vendors' field
names, headers and shapes (not ours). The SDKs are test-only dependencies.

BFL's official SDK (``blackforest`` 0.1.3) pins Pillow 10.4 and is not installed here; the fake
BFL checks requests against the field names of BFL's published OpenAPI instead
(``tests/providers/fakes/bfl.py``), and the adapter tests prove our requests pass it. (Run once
by hand from a throwaway virtualenv against ``python -m tests.providers.fakes``, the SDK's
``generate(..., ClientConfig(sync=True))`` completed for flux-pro-1.1, -ultra and
kontext-pro, its explicit defaults all accepted.)
"""

from __future__ import annotations

import pydantic
import pytest
import replicate
import runwayml
from runwayml.lib import polling

from app.providers.replicate import DEFAULT_UPSCALE_VERSION
from tests.providers.fakes.replicate import FakeReplicate
from tests.providers.fakes.runway import FakeRunway


@pytest.fixture
def fast_runway_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK polls every 6 +- 1.5 s of real time; its module constants say so."""
    monkeypatch.setattr(polling, "POLL_TIME", 0.01)
    monkeypatch.setattr(polling, "POLL_JITTER", 0)


def runway_client(fake: FakeRunway) -> runwayml.AsyncRunwayML:
    return runwayml.AsyncRunwayML(api_key=fake.api_secret, base_url=fake.url, max_retries=0)


async def test_runway_sdk_image_to_video_throttled_first(
    fake_runway: FakeRunway, fast_runway_polls: None
) -> None:
    fake_runway.script("THROTTLED", "PENDING", "RUNNING", "SUCCEEDED")
    async with runway_client(fake_runway) as client:
        task = await client.image_to_video.create(
            model="gen4_turbo",
            prompt_image="https://example.test/frame.png",
            prompt_text="waves",
            ratio="1280:720",
            duration=5,
        )
        finished = await task.wait_for_task_output(timeout=10)
        assert finished.status == "SUCCEEDED"
        assert finished.output and finished.output[0].startswith(fake_runway.url + "/files/")
        await client.tasks.delete(task.id)
        with pytest.raises(runwayml.NotFoundError):
            await client.tasks.retrieve(task.id)
    [create] = fake_runway.calls("POST")
    assert create.headers["X-Runway-Version"] == "2024-11-06"  # the SDK's own header
    assert create.body["promptImage"] == "https://example.test/frame.png"  # its field names
    assert len(fake_runway.calls("GET", "/v1/tasks/")) >= 4


async def test_runway_sdk_text_to_video_and_failure(
    fake_runway: FakeRunway, fast_runway_polls: None
) -> None:
    fake_runway.script("RUNNING", "FAILED:SAFETY.INPUT.TEXT")
    async with runway_client(fake_runway) as client:
        task = await client.text_to_video.create(
            model="gen4.5", prompt_text="a lighthouse", ratio="720:1280", duration=5
        )
        with pytest.raises(runwayml.TaskFailedError) as raised:
            await task.wait_for_task_output(timeout=10)
    assert raised.value.task_details.failure_code == "SAFETY.INPUT.TEXT"  # type: ignore[union-attr]
    assert fake_runway.calls("POST")[0].path == "/v1/text_to_video"


async def test_runway_fake_refuses_what_runway_refuses(fake_runway: FakeRunway) -> None:
    async with runway_client(fake_runway) as client:
        with pytest.raises(runwayml.BadRequestError):
            await client.image_to_video.create(
                model="gen4_turbo",
                prompt_image="https://example.test/frame.png",
                ratio="1920:1080",  # type: ignore[arg-type]
                duration=5,
            )
    async with runwayml.AsyncRunwayML(
        api_key="wrong", base_url=fake_runway.url, max_retries=0
    ) as client:
        with pytest.raises(runwayml.AuthenticationError):
            await client.tasks.retrieve("anything")


def replicate_client(fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch) -> replicate.Client:
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.01")  # read when the client is built
    return replicate.Client(api_token=fake.api_token, base_url=fake.url)


async def test_replicate_sdk_create_wait_and_cancel(
    fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = replicate_client(fake_replicate, monkeypatch)
    fake_replicate.script("processing", "processing", "succeeded")
    prediction = await client.predictions.async_create(
        version=DEFAULT_UPSCALE_VERSION,
        input={"image": "https://example.test/a.png", "scale": 2, "face_enhance": False},
        wait=5,
    )
    assert prediction.status == "processing"  # Prefer: wait returned early
    assert fake_replicate.calls("POST")[0].headers["Prefer"] == "wait=5"
    await prediction.async_wait()
    assert prediction.status == "succeeded"
    assert isinstance(prediction.output, str) and prediction.output.startswith(fake_replicate.url)

    fake_replicate.script("succeeded")
    quick = await client.predictions.async_create(
        version=DEFAULT_UPSCALE_VERSION, input={"image": "https://example.test/b.png"}, wait=5
    )
    assert quick.status == "succeeded"  # finished within the wait

    fake_replicate.script("starting")
    slow = await client.predictions.async_create(
        version=DEFAULT_UPSCALE_VERSION, input={"image": "https://example.test/c.png"}
    )
    await client.predictions.async_cancel(slow.id)
    assert (await client.predictions.async_get(slow.id)).status == "canceled"


async def test_replicate_sdk_rejects_aborted_which_is_why_the_adapter_speaks_http(
    fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = replicate_client(fake_replicate, monkeypatch)
    fake_replicate.script("aborted")
    created = await client.predictions.async_create(
        version=DEFAULT_UPSCALE_VERSION, input={"image": "https://example.test/a.png"}
    )
    with pytest.raises((pydantic.ValidationError, pydantic.v1.ValidationError), match="aborted"):
        await client.predictions.async_get(created.id)
