"""Attempts on the virtual clock: the app's own limit of 3 attempts per job, whatever the
queue's retry window, and failures that refund."""

from __future__ import annotations

import pytest

from app.providers.base import PermanentProviderError, RetryableProviderError
from daygen_queue import TaskNotFound
from emulator import EventKind
from tests.app.conftest import Service, StartService
from tests.app.fakes import scripted, with_images


def dispatches(service: Service, task: str) -> list[tuple[int | None, int | None]]:
    """(attempt, status) of every finished attempt of ``task``."""
    return [
        (event.attempt, event.status)
        for event in service.backend.events.for_task(task)
        if event.kind in (EventKind.ATTEMPT_SUCCEEDED, EventKind.ATTEMPT_FAILED)
    ]


async def test_a_provider_failing_twice_then_succeeding_completes_on_attempt_3(
    start_service: StartService,
):
    images = scripted([RetryableProviderError("busy"), RetryableProviderError("busy again")])
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "alice", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    await service.run_until_idle()
    done = await service.job("alice", job["jobId"])
    assert done["status"] == "COMPLETED"
    assert images.calls == 3
    assert dispatches(service, job["jobId"]) == [(1, 503), (2, 503), (3, 200)]
    assert await service.credits("alice") == 99
    row = await service.store.get_job(job["jobId"])
    assert row is not None and row.attempts == 3


async def test_a_provider_failing_always_fails_the_job_after_3_attempts_and_refunds(
    start_service: StartService,
):
    images = scripted([RetryableProviderError(f"overloaded #{n}") for n in range(1, 10)])
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "bob", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    assert await service.credits("bob") == 99
    await service.run_until_idle()
    failed = await service.job("bob", job["jobId"])
    assert failed["status"] == "FAILED"
    assert failed["error"] == "overloaded #3"
    assert images.calls == 3
    # The third answer is a 2xx, so the queue stops although its own window (1 h) is open.
    assert dispatches(service, job["jobId"]) == [(1, 503), (2, 503), (3, 200)]
    with pytest.raises(TaskNotFound):
        await service.backend.get_task("image-generation-queue", job["jobId"])
    assert await service.credits("bob") == 100
    assert await service.store.usage_for(job["jobId"]) == []
    assert service.events.statuses(job["jobId"])[-1] == "FAILED"
    assert service.events.for_job(job["jobId"])[-1].payload["error"] == "overloaded #3"


async def test_a_non_retryable_error_fails_at_once(start_service: StartService):
    images = scripted([PermanentProviderError("prompt refused by the provider")])
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "carol", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    await service.run_until_idle()
    failed = await service.job("carol", job["jobId"])
    assert failed["status"] == "FAILED"
    assert failed["error"] == "prompt refused by the provider"
    assert dispatches(service, job["jobId"]) == [(1, 200)]
    assert await service.credits("carol") == 100


async def test_a_batch_chunk_failing_for_good_fails_the_batch_and_refunds_it(
    start_service: StartService,
):
    images = scripted([PermanentProviderError("bad prompt")])
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "dave",
        "batch-generation",
        {"prompts": ["a", "b", "c"], "batchSize": 1, "width": 64, "height": 64},
    )
    assert await service.credits("dave") == 97
    await service.run_until_idle()
    failed = await service.job("dave", job["jobId"])
    assert failed["status"] == "FAILED"
    assert failed["error"] == "bad prompt"
    assert await service.credits("dave") == 100
    assert await service.store.usage_for(job["jobId"]) == []


async def test_a_retried_batch_chunk_still_completes_the_batch_once(start_service: StartService):
    images = scripted([RetryableProviderError("blip")])
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "erin",
        "batch-generation",
        {"prompts": ["a", "b", "c", "d"], "batchSize": 2, "width": 64, "height": 64},
    )
    await service.run_until_idle()
    done = await service.job("erin", job["jobId"])
    assert done["status"] == "COMPLETED"
    assert len(done["resultUrls"]) == 4
    assert await service.credits("erin") == 96
    assert [r.credits for r in await service.store.usage_for(job["jobId"])] == [4]
