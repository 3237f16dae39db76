"""At-least-once delivery: the same task delivered twice (concurrently, and again after the
job finished) is processed once and charged once."""

from __future__ import annotations

import asyncio
import json

from tests.app.conftest import INTERNAL_KEY, Service, StartService
from tests.app.fakes import scripted, with_images


def delivery_headers(queue: str, task: str, retry_count: int = 0) -> dict[str, str]:
    """What Cloud Tasks sends (see daygen_queue.TaskDelivery)."""
    return {
        "Content-Type": "application/json",
        "X-Internal-Api-Key": INTERNAL_KEY,
        "User-Agent": "Google-Cloud-Tasks",
        "X-CloudTasks-QueueName": queue,
        "X-CloudTasks-TaskName": task,
        "X-CloudTasks-TaskRetryCount": str(retry_count),
        "X-CloudTasks-TaskExecutionCount": "0",
        "X-CloudTasks-TaskETA": "1767225600.0",
    }


async def deliver(
    service: Service, job_type: str, task: str, body: dict, retry_count: int = 0
) -> tuple[int, dict]:
    return await service.request(
        "POST",
        f"/internal/tasks/{job_type}",
        headers=delivery_headers(f"{job_type}-queue", task, retry_count),
        data=json.dumps(body).encode(),
    )


async def test_the_same_task_delivered_twice_concurrently_runs_once(start_service: StartService):
    images = scripted()
    images.gate = asyncio.Event()
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "alice", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    body = {"jobId": job["jobId"]}
    first = asyncio.create_task(deliver(service, "image-generation", job["jobId"], body))
    second = asyncio.create_task(deliver(service, "image-generation", job["jobId"], body))
    done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    loser = done.pop()
    # One delivery was turned away; the other holds the claim and reaches the provider (held
    # by the gate), possibly after the loser's answer.
    status, answer = loser.result()
    assert status == 409, answer
    await asyncio.wait_for(images.entered.wait(), 30)
    images.gate.set()
    winner = second if loser is first else first
    status, answer = await winner
    assert (status, answer["result"]) == (200, "completed")
    assert images.calls == 1

    # The queue's own delivery of the same task, after completion: acknowledged, not run.
    await service.run_until_idle()
    status, answer = await deliver(service, "image-generation", job["jobId"], body, 1)
    assert (status, answer["result"]) == (200, "already_finished")
    assert images.calls == 1
    assert (await service.job("alice", job["jobId"]))["status"] == "COMPLETED"
    assert await service.credits("alice") == 99
    assert [r.credits for r in await service.store.usage_for(job["jobId"])] == [1]


async def test_a_batch_chunk_delivered_again_after_completion_is_not_rerun(service: Service):
    job = await service.create(
        "bob",
        "batch-generation",
        {"prompts": ["a", "b", "c"], "batchSize": 2, "width": 64, "height": 64, "model": "local"},
    )
    await service.run_until_idle()
    done = await service.job("bob", job["jobId"])
    assert done["status"] == "COMPLETED"
    for chunk in (0, 1):
        status, answer = await deliver(
            service,
            "batch-generation",
            f"{job['jobId']}-chunk-{chunk}",
            {"jobId": job["jobId"], "chunk": chunk},
            retry_count=3,
        )
        assert (status, answer["result"]) == (200, "already_finished")
    assert await service.job("bob", job["jobId"]) == done
    assert await service.credits("bob") == 97
    assert [r.credits for r in await service.store.usage_for(job["jobId"])] == [3]


async def test_a_task_delivered_to_the_wrong_type_is_acknowledged_without_running(
    service: Service,
):
    job = await service.create(
        "carol", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    for job_type, body in [
        ("video-generation", {"jobId": job["jobId"]}),
        ("batch-generation", {"jobId": job["jobId"], "chunk": 0}),
    ]:
        status, answer = await deliver(service, job_type, job["jobId"], body)
        assert (status, answer["result"]) == (200, "wrong_type")
    assert (await service.job("carol", job["jobId"]))["status"] == "PENDING"
    await service.run_until_idle()
    assert (await service.job("carol", job["jobId"]))["status"] == "COMPLETED"
