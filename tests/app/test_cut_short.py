"""An attempt cut short (its process died while it held the job) is handed to a new task once
it is older than the dispatch deadline, not failed two hours later; a batch keeps the chunks
it finished. On the virtual clock, with the queue's own copy of the task gone (what an
in-memory emulator loses when it restarts)."""

from __future__ import annotations

from datetime import timedelta

from app.jobs.types import JOB_TYPES
from tests.app.conftest import Service

IMAGE_DEADLINE = JOB_TYPES["image-generation"].dispatch_deadline
BATCH_DEADLINE = JOB_TYPES["batch-generation"].dispatch_deadline


async def lose_the_task(service: Service, queue: str, task: str) -> None:
    await service.backend.delete_task(queue, task)


async def test_a_job_cut_short_is_retried_after_the_dispatch_deadline(service: Service) -> None:
    job = await service.create("alice", "image-generation", {"prompt": "x", "width": 64})
    job_id = job["jobId"]
    # Attempt 1 took the job, then its process died along with the queue's copy of the task.
    assert (await service.store.claim(job_id, attempt=1)).won
    await lose_the_task(service, "image-generation-queue", job_id)

    service.clock.advance(IMAGE_DEADLINE - timedelta(seconds=1))
    assert await service.reconciler.retry_cut_short() == 0  # it may still be running
    service.clock.advance(timedelta(seconds=2))
    assert await service.reconciler.retry_cut_short() == 1
    assert await service.reconciler.retry_cut_short() == 0  # handed over once
    await service.run_until_idle()

    done = await service.job("alice", job_id)
    assert done["status"] == "COMPLETED" and done["resultUrl"]
    record = await service.store.get_job(job_id)
    assert record is not None and record.attempts == 2  # the lost attempt still counts
    assert await service.credits("alice") == 99
    assert [entry.credits for entry in await service.store.usage_for(job_id)] == [1]
    assert await service.reconciler.fail_stale() == 0


async def test_a_last_attempt_cut_short_fails_and_refunds(service: Service) -> None:
    job = await service.create("bob", "image-generation", {"prompt": "x", "width": 64})
    job_id = job["jobId"]
    last = JOB_TYPES["image-generation"].max_attempts
    assert (await service.store.claim(job_id, attempt=last)).won
    await lose_the_task(service, "image-generation-queue", job_id)

    service.clock.advance(IMAGE_DEADLINE + timedelta(seconds=1))
    assert await service.reconciler.retry_cut_short() == 1
    failed = await service.job("bob", job_id)
    assert failed["status"] == "FAILED"
    assert failed["error"] == f"processing stopped without a result (attempt {last} of {last} " + (
        "was cut short)"
    )
    assert await service.credits("bob") == 100
    assert service.events.statuses(job_id)[-1] == "FAILED"
    assert await service.backend.list_tasks("image-generation-queue") == []


async def test_a_batch_keeps_its_finished_chunks(service: Service) -> None:
    body = {"prompts": ["a", "b", "c"], "batchSize": 1, "width": 64, "height": 64}
    job = await service.create("carol", "batch-generation", body)
    job_id = job["jobId"]
    # Chunk 1's attempt dies; chunks 0 and 2 run to the end through the queue.
    assert (await service.store.claim_chunk(job_id, 1, 1, "batch-generation")).won
    await lose_the_task(service, "batch-generation-queue", f"{job_id}-chunk-1")
    await service.run_until_idle()
    chunks = await service.store.chunks(job_id)
    assert [(c.status, c.attempts) for c in chunks] == [
        ("COMPLETED", 1),
        ("PROCESSING", 1),
        ("COMPLETED", 1),
    ]
    kept = [c.urls for c in chunks]

    service.clock.advance(BATCH_DEADLINE + timedelta(seconds=1))
    assert await service.reconciler.retry_cut_short() == 1  # only the chunk cut short
    tasks = await service.backend.list_tasks("batch-generation-queue")
    assert [task.name.rsplit("/", 1)[-1] for task in tasks] == [f"{job_id}-chunk-1-retry-1"]
    await service.run_until_idle()

    done = await service.job("carol", job_id)
    assert done["status"] == "COMPLETED" and len(done["resultUrls"]) == 3
    chunks = await service.store.chunks(job_id)
    assert [(c.status, c.attempts) for c in chunks] == [
        ("COMPLETED", 1),
        ("COMPLETED", 2),
        ("COMPLETED", 1),
    ]
    assert chunks[0].urls == kept[0] and chunks[2].urls == kept[2]  # not redone
    assert await service.credits("carol") == 97
    assert [entry.credits for entry in await service.store.usage_for(job_id)] == [3]
