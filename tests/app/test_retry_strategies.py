"""Retry strategies per job type on the virtual clock: each type's policy gives exactly its
attempts at its backoff timings, every task carries that policy as its own ``retry_config``,
and ``retry_on`` decides which provider failures are tried again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.jobs.retry_policy import DEFAULT_POLICIES, RetryPolicy, failure_kind
from app.providers.base import ProviderError, RetryableProviderError
from app.providers.registry import build_providers
from daygen_queue import RetryConfig
from emulator import EventKind
from tests.app.conftest import Service, StartService
from tests.app.fakes import scripted, with_images


class FailingVideos:
    """A video provider that raises ``errors`` in turn (the last one for ever)."""

    def __init__(self, *errors: ProviderError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def generate_video(self, **kwargs: Any) -> tuple[bytes, str]:
        self.calls += 1
        raise self.errors.pop(0) if len(self.errors) > 1 else self.errors[0]


def dispatch_offsets(service: Service, task: str, start: datetime) -> list[float]:
    return [
        (event.time - start).total_seconds()
        for event in service.backend.events.for_task(task)
        if event.kind == EventKind.TASK_DISPATCHED
    ]


async def test_images_are_tried_3_times_1s_then_2s_apart(start_service: StartService):
    images = scripted([RetryableProviderError(f"busy {n}", code="unavailable") for n in range(9)])
    service = await start_service(providers=with_images(images))
    start = service.clock.now()
    job = await service.create("al", "image-generation", {"prompt": "x", "width": 64, "height": 64})
    task = await service.backend.get_task("image-generation-queue", job["jobId"])
    assert task.retry_config == DEFAULT_POLICIES["image-generation"].retry_config()
    await service.run_until_idle()
    assert dispatch_offsets(service, job["jobId"], start) == [0.0, 1.0, 3.0]
    assert (await service.job("al", job["jobId"]))["status"] == "FAILED"
    assert images.calls == 3


async def test_videos_are_tried_3_times_10s_then_20s_apart(start_service: StartService):
    videos = FailingVideos(RetryableProviderError("overloaded", code="unavailable"))
    providers = build_providers(None)
    for name in list(providers.video):
        providers.video[name] = videos
    service = await start_service(providers=providers)
    start = service.clock.now()
    job = await service.create("bo", "video-generation", {"prompt": "w", "duration": 1})
    task = await service.backend.get_task("video-generation-queue", job["jobId"])
    assert task.retry_config is not None
    assert task.retry_config.min_backoff == timedelta(seconds=10)
    assert task.retry_config.max_backoff == timedelta(seconds=300)
    assert task.retry_config.max_doublings == 3
    await service.run_until_idle()
    assert dispatch_offsets(service, job["jobId"], start) == [0.0, 10.0, 30.0]
    failed = await service.job("bo", job["jobId"])
    assert failed["status"] == "FAILED" and failed["error"] == "overloaded"
    assert await service.credits("bo") == 100


async def test_a_video_past_its_model_deadline_is_not_started_again(start_service: StartService):
    videos = FailingVideos(RetryableProviderError("still rendering", code="deadline"))
    providers = build_providers(None)
    for name in list(providers.video):
        providers.video[name] = videos
    service = await start_service(providers=providers)
    job = await service.create("cy", "video-generation", {"prompt": "w", "duration": 1})
    await service.run_until_idle()
    assert videos.calls == 1
    assert (await service.job("cy", job["jobId"]))["status"] == "FAILED"


async def test_retry_policies_from_settings_reach_the_queue_the_task_and_the_app(
    start_service: StartService,
):
    images = scripted(
        [RetryableProviderError("rate limited", code="rate_limited") for _ in range(9)]
    )
    service = await start_service(
        providers=with_images(images),
        retry_policies={
            "image-generation": {"max_attempts": 5, "min_backoff": "2s", "max_backoff": "10s"}
        },
    )
    start = service.clock.now()
    queue = await service.backend.get_queue("image-generation-high-queue")
    assert queue.config.retry_config.max_attempts == 5
    job = await service.create(
        "di", "image-generation", {"prompt": "x", "priority": "high", "width": 64, "height": 64}
    )
    task = await service.backend.get_task("image-generation-high-queue", job["jobId"])
    assert task.retry_config is not None and task.retry_config.max_attempts == 5
    await service.run_until_idle()
    # 2 s doubling, capped at 10 s: 2, 4, 8, 10.
    assert dispatch_offsets(service, job["jobId"], start) == [0.0, 2.0, 6.0, 14.0, 24.0]
    assert images.calls == 5


async def test_retry_on_limits_which_failures_are_retried(start_service: StartService):
    images = scripted([RetryableProviderError("gone", code="task_not_found")])
    service = await start_service(
        providers=with_images(images),
        retry_policies={"image-generation": {"retry_on": ["unavailable", "rate_limited"]}},
    )
    job = await service.create("ed", "image-generation", {"prompt": "x", "width": 64, "height": 64})
    await service.run_until_idle()
    assert images.calls == 1
    assert (await service.job("ed", job["jobId"]))["error"] == "gone"


def test_policy_rules_without_io():
    policy = RetryPolicy(min_backoff="10s", max_backoff="300s", max_doublings=3, max_attempts=9)
    assert [policy.backoff(n).total_seconds() for n in range(1, 9)] == [
        10,
        20,
        40,
        80,
        160,
        240,
        300,
        300,
    ]
    assert policy.retries("unavailable", 8) and not policy.retries("unavailable", 9)
    assert failure_kind(RetryableProviderError("x", code="rate_limited")) == "rate_limited"
    assert failure_kind(RetryableProviderError("x")) == "unclassified"
    assert failure_kind(TimeoutError()) == "timeout"
    assert failure_kind(RuntimeError()) == "internal"


def test_a_bad_retry_policy_setting_is_refused_naming_the_type_and_field():
    import pytest
    from pydantic import ValidationError

    from app.settings import Settings

    with pytest.raises(
        ValidationError, match=r"(?s)RETRY_POLICIES\['video-generation'\].*max_attempts"
    ):
        Settings(retry_policies={"video-generation": {"max_attempts": 0}})
    with pytest.raises(ValidationError, match="unknown job type"):
        Settings(retry_policies={"audio": {}})
    with pytest.raises(ValidationError, match="unknown failure kind"):
        Settings(retry_policies={"image-generation": {"retry_on": ["sunspots"]}})


async def test_the_task_carries_its_own_policy_whatever_the_queue_says(
    start_service: StartService,
):
    """Someone edits the queue (the console, gcloud) to 10 attempts 30 s apart: the type's
    tasks still follow their own retry_config, and the app still stops at 3."""
    images = scripted([RetryableProviderError(f"busy {n}", code="unavailable") for n in range(9)])
    service = await start_service(providers=with_images(images))
    queue = await service.backend.get_queue("image-generation-queue")
    edited = queue.config.model_copy(
        update={
            "retry_config": RetryConfig(
                max_attempts=10,
                min_backoff=timedelta(seconds=30),
                max_backoff=timedelta(seconds=60),
            )
        }
    )
    await service.backend.update_queue(edited)
    start = service.clock.now()
    job = await service.create("fi", "image-generation", {"prompt": "x", "width": 64, "height": 64})
    await service.run_until_idle()
    assert dispatch_offsets(service, job["jobId"], start) == [0.0, 1.0, 3.0]
    assert images.calls == 3
