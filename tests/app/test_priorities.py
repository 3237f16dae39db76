"""Priorities end to end: a ``high`` job goes to its type's high queue, which has a share of
the provider budget of its own, so it completes while a ``normal`` backlog holds every normal
slot of a saturated provider."""

from __future__ import annotations

import asyncio
from typing import Any

from app.jobs.priorities import split_budget
from app.providers.registry import build_providers
from emulator import EventKind
from emulator.events import Event
from tests.app.conftest import StartService


class SaturatedImages:
    """A provider whose ``backlog`` renders are held until ``release`` opens: they keep every
    slot of their queue busy, as a saturated provider does."""

    def __init__(self) -> None:
        self.inner = build_providers(None).image["local"]
        self.release = asyncio.Event()
        self.held = 0

    async def generate_image(self, **kwargs: Any) -> bytes:
        if kwargs["prompt"] == "backlog":
            self.held += 1
            await self.release.wait()
        return await self.inner.generate_image(**kwargs)


def test_the_budget_is_split_in_shares_that_add_up():
    shares = {share.priority: share for share in split_budget(10, 100)}
    assert shares["high"].max_concurrent_dispatches == 25
    assert shares["normal"].max_concurrent_dispatches == 60
    assert shares["low"].max_concurrent_dispatches == 15
    assert shares["high"].max_dispatches_per_second == 2.5
    tiny = split_budget(1, 4)  # every priority keeps at least one slot
    assert [share.max_concurrent_dispatches for share in tiny] == [1, 2, 1]


async def test_a_high_job_completes_while_a_normal_backlog_saturates_the_provider(
    start_service: StartService,
):
    images = SaturatedImages()
    providers = build_providers(None)
    for name in list(providers.image):
        providers.image[name] = images
    service = await start_service(providers=providers, queue_max_concurrent_dispatches=4)
    body = {"width": 64, "height": 64}
    backlog = [
        await service.create("alice", "image-generation", {"prompt": "backlog", **body})
        for _ in range(12)
    ]
    urgent = await service.create(
        "alice", "image-generation", {"prompt": "urgent", "priority": "high", **body}
    )
    assert urgent["priority"] == "high" and backlog[0]["priority"] == "normal"
    assert [event.queue for event in service.backend.events.for_task(urgent["jobId"])] == [
        "image-generation-high-queue"
    ]

    done = asyncio.Event()

    def watch(event: Event) -> None:
        if event.task == urgent["jobId"] and event.kind == EventKind.ATTEMPT_SUCCEEDED:
            done.set()

    unsubscribe = service.backend.events.subscribe(watch)
    drive = asyncio.create_task(service.run_until_idle())
    try:
        await asyncio.wait_for(done.wait(), 30)
        assert (await service.job("alice", urgent["jobId"]))["status"] == "COMPLETED"
        # Every normal slot (2 of the 4) is still held by the backlog; none has finished.
        assert images.held == 2
        statuses = [(await service.job("alice", job["jobId"]))["status"] for job in backlog]
        assert statuses.count("PROCESSING") == 2 and statuses.count("PENDING") == 10
    finally:
        images.release.set()
        await drive
        unsubscribe()
    for job in backlog:
        assert (await service.job("alice", job["jobId"]))["status"] == "COMPLETED"


async def test_a_low_job_goes_to_the_low_queue_and_completes(start_service: StartService):
    service = await start_service()
    job = await service.create(
        "bob", "image-generation", {"prompt": "later", "priority": "low", "width": 64, "height": 64}
    )
    await service.run_until_idle()
    assert (await service.job("bob", job["jobId"]))["status"] == "COMPLETED"
    queues = {event.queue for event in service.backend.events.for_task(job["jobId"])}
    assert queues == {"image-generation-low-queue"}


async def test_an_unknown_priority_is_refused_naming_the_field(start_service: StartService):
    service = await start_service()
    status, body = await service.request(
        "POST",
        "/api/jobs/image-generation",
        user="carol",
        json={"prompt": "x", "priority": "urgent"},
    )
    assert status == 422
    assert body["fields"][0]["field"] == "priority"
    assert await service.credits("carol") == 100
