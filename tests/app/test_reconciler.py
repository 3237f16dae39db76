"""A job whose enqueue failed is not lost: the reconciler re-creates its task, once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from daygen_queue import BackendUnavailable, NewTask, QueueError, Task, TaskQueue
from daygen_queue.backends.emulator import EmulatorBackend
from tests.app.conftest import StartService


class FlakyQueue:
    """The emulator backend, except ``create_task`` and ``create_tasks`` fail while
    ``broken``."""

    def __init__(self, backend: EmulatorBackend) -> None:
        self.backend = backend
        self.broken = True

    async def create_task(self, queue: str, task: NewTask) -> Task:
        if self.broken:
            raise BackendUnavailable("connection reset")
        return await self.backend.create_task(queue, task)

    async def create_tasks(self, queue: str, tasks: Sequence[NewTask]) -> list[Task | QueueError]:
        if self.broken:
            raise BackendUnavailable("connection reset")
        return await self.backend.create_tasks(queue, tasks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


@pytest.fixture
def flaky() -> dict[str, FlakyQueue]:
    return {}


def flaky_queue(holder: dict[str, FlakyQueue]):
    def wrap(backend: EmulatorBackend) -> TaskQueue:
        holder["queue"] = FlakyQueue(backend)
        return holder["queue"]  # type: ignore[return-value]

    return wrap


async def test_jobs_whose_enqueue_failed_are_re_enqueued_once(start_service: StartService):
    holder: dict[str, FlakyQueue] = {}
    service = await start_service(queue=flaky_queue(holder), reconcile_after_seconds=60)
    image = await service.create(
        "alice", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    batch = await service.create(
        "alice",
        "batch-generation",
        {"prompts": ["a", "b", "c"], "batchSize": 2, "width": 64, "height": 64},
    )
    await service.run_until_idle()
    assert (await service.job("alice", image["jobId"]))["status"] == "PENDING"
    assert await service.backend.list_tasks("image-generation-queue") == []

    holder["queue"].broken = False
    assert await service.reconciler.run_once() == 0  # too recent: maybe still being enqueued
    service.clock.advance(timedelta(seconds=61))
    assert await service.reconciler.run_once() == 3  # one image task + two batch chunks
    assert await service.reconciler.run_once() == 0  # task names dedupe
    await service.run_until_idle()
    assert (await service.job("alice", image["jobId"]))["status"] == "COMPLETED"
    assert (await service.job("alice", batch["jobId"]))["status"] == "COMPLETED"
    assert await service.credits("alice") == 100 - 1 - 3
    assert await service.reconciler.run_once() == 0


async def test_the_reconciler_leaves_queued_and_finished_jobs_alone(service):
    job = await service.create(
        "bob", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    service.clock.advance(timedelta(hours=1))
    assert await service.reconciler.run_once() == 0  # its task is waiting in the queue
    await service.run_until_idle()
    assert (await service.job("bob", job["jobId"]))["status"] == "COMPLETED"
    service.clock.advance(timedelta(hours=1))
    assert await service.reconciler.run_once() == 0


async def test_a_job_stuck_in_processing_is_failed_and_refunded(service):
    job = await service.create("carol", "image-generation", {"prompt": "x"})
    # A delivery took the job, then its instance died: nothing will ever finish it.
    claim = await service.store.claim(job["jobId"], attempt=1)
    assert claim.won
    await service.backend.delete_task("image-generation-queue", job["jobId"])
    assert await service.credits("carol") == 99
    service.clock.advance(timedelta(seconds=service.settings.stale_processing_seconds - 1))
    assert await service.reconciler.fail_stale() == 0  # might still be running
    service.clock.advance(timedelta(seconds=2))
    assert await service.reconciler.fail_stale() == 1
    failed = await service.job("carol", job["jobId"])
    assert failed["status"] == "FAILED" and failed["error"] == "processing stopped without a result"
    assert await service.credits("carol") == 100
    assert service.events.statuses(job["jobId"])[-1] == "FAILED"
    assert await service.reconciler.fail_stale() == 0
