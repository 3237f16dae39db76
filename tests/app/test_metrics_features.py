"""Metrics of the features built on the jobs: the priority on the queue-time histogram, a
scheduled job's wait counted from its ``runAt``, and webhook deliveries by outcome (a real
receiver on 127.0.0.1, the queue's retries on the virtual clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from app.jobs.views import iso
from tests.app.conftest import StartService
from tests.app.test_metrics import samples, value
from tests.support.receiver import Receiver

SMALL = {"prompt": "a lighthouse", "width": 64, "height": 64, "model": "local"}
QUEUE_SECONDS = "daygen_job_queue_seconds"


async def test_time_in_queue_is_labelled_with_the_priority(start_service: StartService) -> None:
    service = await start_service()
    await service.create("alice", "image-generation", {**SMALL, "priority": "high"})
    await service.create("alice", "image-generation", SMALL)
    await service.run_until_idle()
    found = await samples(service)
    for priority in ("high", "normal"):
        labels = {"type": "image-generation", "priority": priority}
        assert value(found, f"{QUEUE_SECONDS}_count", **labels) == 1
    low = {"type": "image-generation", "priority": "low"}
    assert value(found, f"{QUEUE_SECONDS}_count", **low) == 0


async def test_a_scheduled_job_waits_in_the_queue_from_its_run_at(
    start_service: StartService,
) -> None:
    service = await start_service()
    when = service.clock.now() + timedelta(days=3)
    job = await service.create("bob", "image-generation", {**SMALL, "runAt": iso(when)})
    await service.run_until_idle()
    assert (await service.job("bob", job["jobId"]))["status"] == "COMPLETED"
    assert service.clock.now() >= when
    found = await samples(service)
    labels = {"type": "image-generation", "priority": "normal"}
    assert value(found, f"{QUEUE_SECONDS}_count", **labels) == 1
    # Three days were the schedule, not time in the queue.
    assert value(found, f"{QUEUE_SECONDS}_sum", **labels) < 1


@pytest.fixture
async def flaky_receiver() -> AsyncIterator[Receiver]:
    answers = iter([500, 500, 200])
    receiver = Receiver(responder=lambda request: next(answers, 200))
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_webhook_deliveries_are_counted_by_outcome(
    start_service: StartService, flaky_receiver: Receiver
) -> None:
    service = await start_service(fetch_allow_hosts=["127.0.0.1"])
    body = {**SMALL, "webhookUrl": flaky_receiver.url("/hook")}
    await service.create("carol", "image-generation", body)
    await service.run_until_idle()
    assert len(flaky_receiver.for_path("/hook")) == 3
    found = await samples(service)
    assert value(found, "daygen_webhook_deliveries_total", outcome="retry") == 2
    assert value(found, "daygen_webhook_deliveries_total", outcome="delivered") == 1
