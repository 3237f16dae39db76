"""Metrics of remote provider work and of cancels, through the app on the virtual clock: the
fake BFL behind the real adapter (calls timed per operation, errors counted by code, a task's
time at the provider), and a batch cancelled halfway (the refund is what it gave back)."""

from __future__ import annotations

import asyncio

from tests.app.conftest import StartService
from tests.app.fakes import with_images
from tests.app.remote_support import RemoteRig, rig_fixture  # noqa: F401  (fixtures)
from tests.app.test_cancel import SMALL, HeldPrompts, answered, cancel
from tests.app.test_metrics import samples, value
from tests.providers.fakes.common import Canned

IMAGE = {"prompt": "A beautiful sunset", "model": "flux-1.1-pro", "provider": "bfl"}


async def test_a_remote_job_times_each_call_and_its_task_at_the_provider(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Pending", "Ready")
    job = await service.create("u1", "image-generation", IMAGE)
    await service.run_until_idle()
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"

    found = await samples(service)
    calls = "daygen_provider_request_seconds_count"
    assert value(found, calls, provider="bfl", operation="submit") == 1
    assert value(found, calls, provider="bfl", operation="poll") == 3
    assert value(found, calls, provider="bfl", operation="download") == 1
    # Submitted when the job started, found ready by the poll that completed it: the task's
    # time at BFL is the job's processing time, to the virtual microsecond.
    task = value(found, "daygen_provider_task_seconds_sum", provider="bfl")
    done = {"type": "image-generation", "provider": "bfl", "status": "COMPLETED"}
    assert value(found, "daygen_provider_task_seconds_count", provider="bfl") == 1
    assert task > 0
    assert task == value(found, "daygen_job_processing_seconds_sum", **done)
    polls = {
        labels: count
        for (name, labels), count in found.items()
        if name == "daygen_provider_polls_total"
    }
    assert sum(polls.values()) == 3
    assert value(found, "daygen_provider_polls_total", type="image-generation", result="completed")


async def test_provider_errors_are_counted_by_code(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.inject("submit", Canned(402, {"detail": "Insufficient credits"}))
    failed = await service.create("u1", "image-generation", IMAGE)
    await service.run_until_idle()
    rig.bfl.script("Pending", "Request Moderated")
    moderated = await service.create("u1", "image-generation", IMAGE)
    await service.run_until_idle()
    for job in (failed, moderated):
        assert (await service.job("u1", job["jobId"]))["status"] == "FAILED"

    found = await samples(service)
    errors = "daygen_provider_errors_total"
    assert value(found, errors, provider="bfl", code="out_of_credits") == 1
    assert value(found, errors, provider="bfl", code="moderated") == 1
    labels = {"type": "image-generation", "provider": "bfl", "status": "FAILED"}
    assert value(found, "daygen_jobs_finished_total", **labels) == 2
    assert value(found, "daygen_credits_refunded_total", type="image-generation") == 2


async def test_a_cancel_counts_what_it_refunded(start_service: StartService) -> None:
    images = HeldPrompts({"b", "c", "d"})
    service = await start_service(providers=with_images(images))
    job = await service.create(
        "carol", "batch-generation", {"prompts": ["a", "b", "c", "d"], "batchSize": 1, **SMALL}
    )
    first_chunk = answered(service, f"{job['jobId']}-chunk-0")
    running = asyncio.create_task(service.run_until_idle())
    await images.wait_for("a", "b", "c", "d")
    await asyncio.wait_for(first_chunk.wait(), 10)
    status, _ = await cancel(service, "carol", job["jobId"])
    assert status == 200
    images.gate.set()
    await running

    found = await samples(service)
    labels = {"type": "batch-generation", "provider": "local"}
    assert value(found, "daygen_jobs_finished_total", **labels, status="CANCELLED") == 1
    assert value(found, "daygen_credits_charged_total", type="batch-generation") == 4
    # One image was delivered and paid for: three credits came back.
    assert value(found, "daygen_credits_refunded_total", type="batch-generation") == 3
    assert value(found, "daygen_job_processing_seconds_count", **labels, status="CANCELLED") == 1
