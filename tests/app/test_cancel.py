"""``POST /api/jobs/{jobId}/cancel`` in every state: pending (its task deleted), processing
(stopped at the next progress report), a batch half made (charged for what it delivered),
finished (409), someone else's (404), and the races: cancel against a completion, and a task
delivered again after the cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.jobs.cancel import JobAlreadyFinished, cancel_job
from app.providers.base import ImageProvider
from app.providers.registry import build_providers
from app.services import SERVICES
from daygen_queue import TaskNotFound
from emulator import Event, EventKind
from tests.app.conftest import Service, StartService
from tests.app.fakes import with_images
from tests.app.test_duplicates import deliver

SMALL = {"width": 64, "height": 64, "model": "local"}


class HeldPrompts:
    """The local image provider, except that prompts in ``held`` wait until ``release``; each
    call's arrival is an event a test can wait on (no sleeping)."""

    def __init__(self, held: set[str]) -> None:
        self.inner: ImageProvider = build_providers(None).image["local"]
        self.held = held
        self.gate = asyncio.Event()
        self.calls: list[str] = []
        self.arrived = asyncio.Condition()

    async def generate_image(self, **kwargs: Any) -> bytes:
        prompt = kwargs["prompt"]
        async with self.arrived:
            self.calls.append(prompt)
            self.arrived.notify_all()
        if prompt in self.held:
            await self.gate.wait()
        return await self.inner.generate_image(**kwargs)

    async def wait_for(self, *prompts: str) -> None:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: all(p in self.calls for p in prompts)), 10
            )


def answered(service: Service, task: str) -> asyncio.Event:
    """Set once the queue records a successful attempt of ``task``."""
    done = asyncio.Event()

    def watch(event: Event) -> None:
        if event.task == task and event.kind == EventKind.ATTEMPT_SUCCEEDED:
            done.set()

    service.backend.events.subscribe(watch)
    return done


async def cancel(service: Service, user: str, job_id: str) -> tuple[int, Any]:
    return await service.request("POST", f"/api/jobs/{job_id}/cancel", user=user)


async def test_a_pending_job_is_cancelled_at_once_its_task_deleted_and_refunded(service: Service):
    job = await service.create("alice", "image-generation", {"prompt": "x", **SMALL})
    assert await service.credits("alice") == 99
    await service.backend.get_task("image-generation-queue", job["jobId"])  # queued

    status, cancelled = await cancel(service, "alice", job["jobId"])

    assert status == 200, cancelled
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["jobId"] == job["jobId"] and cancelled["resultUrl"] is None
    with pytest.raises(TaskNotFound):
        await service.backend.get_task("image-generation-queue", job["jobId"])
    assert await service.credits("alice") == 100
    assert service.events.statuses(job["jobId"]) == ["PENDING", "CANCELLED"]
    await service.run_until_idle()  # nothing left to run
    assert (await service.job("alice", job["jobId"]))["status"] == "CANCELLED"
    assert await service.store.usage_for(job["jobId"]) == []


async def test_a_pending_batch_deletes_every_chunk_task(service: Service):
    job = await service.create(
        "alice", "batch-generation", {"prompts": ["a", "b", "c"], "batchSize": 1, **SMALL}
    )
    status, cancelled = await cancel(service, "alice", job["jobId"])
    assert (status, cancelled["status"]) == (200, "CANCELLED")
    assert await service.backend.list_tasks("batch-generation-queue") == []
    assert await service.credits("alice") == 100
    chunks = await service.store.chunks(job["jobId"])
    assert [chunk.status for chunk in chunks] == ["CANCELLED"] * 3


async def test_a_processing_job_stops_at_its_next_report_and_is_refunded(
    start_service: StartService,
):
    images = HeldPrompts({"slow"})
    service = await start_service(providers=with_images(images))
    job = await service.create("bob", "image-generation", {"prompt": "slow", **SMALL})
    running = asyncio.create_task(service.run_until_idle())
    await images.wait_for("slow")
    assert (await service.job("bob", job["jobId"]))["status"] == "PROCESSING"

    status, cancelled = await cancel(service, "bob", job["jobId"])
    assert (status, cancelled["status"]) == (200, "CANCELLED")
    assert await service.credits("bob") == 100

    images.gate.set()  # the provider returns; the handler reports progress and stops there
    await running
    done = await service.job("bob", job["jobId"])
    assert done["status"] == "CANCELLED" and done["resultUrl"] is None
    assert await service.credits("bob") == 100
    assert await service.store.usage_for(job["jobId"]) == []
    assert not list((service.settings.storage_dir / "jobs").glob(f"{job['jobId']}/*"))
    answers = [e.status for e in service.backend.events.for_task(job["jobId"]) if e.status]
    assert answers == [200]  # acknowledged ("cancelled"), never retried
    assert service.events.statuses(job["jobId"])[-1] == "CANCELLED"


async def test_a_batch_cancelled_halfway_keeps_and_charges_only_the_images_made(
    start_service: StartService,
):
    images = HeldPrompts({"b", "c", "d"})
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "carol", "batch-generation", {"prompts": ["a", "b", "c", "d"], "batchSize": 1, **SMALL}
    )
    assert await service.credits("carol") == 96
    first_chunk = answered(service, f"{job['jobId']}-chunk-0")
    running = asyncio.create_task(service.run_until_idle())
    await images.wait_for("a", "b", "c", "d")
    await asyncio.wait_for(first_chunk.wait(), 10)

    status, cancelled = await cancel(service, "carol", job["jobId"])
    assert (status, cancelled["status"]) == (200, "CANCELLED")
    assert len(cancelled["resultUrls"]) == 1 and cancelled["resultUrls"][0].endswith("/000.png")
    assert await service.credits("carol") == 99  # 3 images not delivered: 3 credits back
    images.gate.set()
    await running
    done = await service.job("carol", job["jobId"])
    assert done == cancelled
    assert await service.credits("carol") == 99
    assert [entry.credits for entry in await service.store.usage_for(job["jobId"])] == [1]
    assert await service.download(done["resultUrl"])


async def test_a_finished_job_answers_409_naming_its_status(service: Service):
    job = await service.create("dave", "image-generation", {"prompt": "x", **SMALL})
    await service.run_until_idle()
    status, answer = await cancel(service, "dave", job["jobId"])
    assert status == 409
    assert answer["error"] == "job_finished" and answer["status"] == "COMPLETED"
    assert "COMPLETED" in answer["message"]
    assert await service.credits("dave") == 99

    other = await service.create("dave", "image-generation", {"prompt": "y", **SMALL})
    assert (await cancel(service, "dave", other["jobId"]))[0] == 200
    status, answer = await cancel(service, "dave", other["jobId"])  # twice
    assert (status, answer["status"]) == (409, "CANCELLED")
    assert await service.credits("dave") == 99  # refunded once


async def test_another_users_job_and_an_unknown_job_answer_404(service: Service):
    job = await service.create("erin", "image-generation", {"prompt": "x", **SMALL})
    status, answer = await cancel(service, "mallory", job["jobId"])
    assert (status, answer["error"]) == (404, "not_found")
    assert (await cancel(service, "erin", "no-such-job"))[0] == 404
    assert (await cancel(service, "erin", "x" * 300))[0] == 404
    assert (await service.request("POST", f"/api/jobs/{job['jobId']}/cancel"))[0] == 401
    assert (await service.job("erin", job["jobId"]))["status"] == "PENDING"


async def test_a_task_delivered_after_the_cancel_is_acknowledged_without_running(
    start_service: StartService,
):
    images = HeldPrompts(set())
    service = await start_service(providers=with_images(images))
    job = await service.create("frank", "image-generation", {"prompt": "x", **SMALL})
    assert (await cancel(service, "frank", job["jobId"]))[0] == 200
    for retry in (0, 1):
        status, answer = await deliver(
            service, "image-generation", job["jobId"], {"jobId": job["jobId"]}, retry
        )
        assert (status, answer["result"], answer["status"]) == (
            200,
            "already_finished",
            "CANCELLED",
        )
    assert images.calls == []
    assert await service.credits("frank") == 100


async def test_cancel_racing_completion_ends_in_one_final_state_with_the_credits_right(
    start_service: StartService,
):
    """Twenty jobs held in the provider; the gate opens and twenty cancels go at once. Each
    job ends COMPLETED (charged, one usage record) or CANCELLED (refunded, none), and the
    balance adds up."""
    images = HeldPrompts({f"p{n}" for n in range(20)})
    service = await start_service(
        providers=with_images(images),
        queue_max_dispatches_per_second=100,  # all twenty in flight at once
    )
    jobs = [
        await service.create("gina", "image-generation", {"prompt": f"p{n}", **SMALL})
        for n in range(20)
    ]
    running = asyncio.create_task(service.run_until_idle())
    await images.wait_for(*(f"p{n}" for n in range(20)))
    images.gate.set()
    answers = await asyncio.gather(*(cancel(service, "gina", job["jobId"]) for job in jobs))
    await running

    completed = 0
    for job, (status, answer) in zip(jobs, answers, strict=True):
        final = await service.job("gina", job["jobId"])
        usage = await service.store.usage_for(job["jobId"])
        if final["status"] == "COMPLETED":
            completed += 1
            assert (status, answer["status"]) == (409, "COMPLETED")
            assert [entry.credits for entry in usage] == [1]
        else:
            assert final["status"] == "CANCELLED"
            assert (status, answer["status"]) == (200, "CANCELLED")
            assert usage == []
        finals = [
            s for s in service.events.statuses(job["jobId"]) if s in ("COMPLETED", "CANCELLED")
        ]
        assert finals == [final["status"]]
    assert await service.credits("gina") == 100 - completed


async def test_cancel_job_is_a_function_other_code_calls(service: Service):
    """The scheduler's entry point: no user check, a reason kept as the job's error."""
    job = await service.create("hana", "image-generation", {"prompt": "x", **SMALL})
    services = service.app[SERVICES]
    cancelled = await cancel_job(services, job["jobId"], reason="dependency failed")
    assert (cancelled.status, cancelled.error) == ("CANCELLED", "dependency failed")
    with pytest.raises(JobAlreadyFinished) as raised:
        await cancel_job(services, job["jobId"])
    assert raised.value.status == "CANCELLED"
    assert await service.credits("hana") == 100


async def test_the_transitions_race_in_the_database_and_one_wins(service: Service):
    """The two UPDATEs themselves, at once, with nothing in between: a claimed job, its
    completion and a cancel sent together (in both orders), twenty times over."""
    services = service.app[SERVICES]
    store = service.store
    outcomes = []
    for n in range(20):
        job = await service.create("ivan", "image-generation", {"prompt": f"r{n}", **SMALL})
        claim = await store.claim(job["jobId"], 1, "image-generation")
        assert claim.won
        complete = store.complete(job["jobId"], 1, {"url": "http://x/y.png"})
        cancelling = cancel_job(services, job["jobId"], user_id="ivan")
        pair = (complete, cancelling) if n % 2 else (cancelling, complete)
        results = await asyncio.gather(*pair, return_exceptions=True)
        final = await store.get_job(job["jobId"])
        assert final is not None
        usage = await store.usage_for(job["jobId"])
        finished = [r for r in results if not isinstance(r, BaseException) and r is not None]
        assert len(finished) == 1 and finished[0].status == final.status  # one winner
        if final.status == "COMPLETED":
            assert [entry.credits for entry in usage] == [1]
            assert any(isinstance(r, JobAlreadyFinished) for r in results)
        else:
            assert final.status == "CANCELLED" and usage == []
        outcomes.append(final.status)
    assert await service.credits("ivan") == 100 - outcomes.count("COMPLETED")


async def test_a_completion_after_the_cancel_changes_nothing(service: Service):
    services = service.app[SERVICES]
    job = await service.create("judy", "image-generation", {"prompt": "x", **SMALL})
    assert (await service.store.claim(job["jobId"], 1, "image-generation")).won
    await cancel_job(services, job["jobId"], user_id="judy")
    assert await service.store.complete(job["jobId"], 1, {"url": "http://x/y.png"}) is None
    assert await service.store.fail(job["jobId"], "late", attempt=1) is None
    assert (await service.job("judy", job["jobId"]))["status"] == "CANCELLED"
    assert await service.credits("judy") == 100
