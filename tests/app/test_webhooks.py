"""Webhooks end to end: a real receiver on 127.0.0.1, deliveries through
``webhook-delivery-queue`` on the virtual clock, every one verified with the
``standardwebhooks`` package against the secret ``GET /api/webhooks/secret`` gives."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.events import JobUpdate
from app.providers.base import PermanentProviderError
from app.services import SERVICES
from app.webhooks.delivery import MAX_ATTEMPTS, QUEUE
from emulator import EventKind
from tests.app.conftest import Service, StartService
from tests.app.fakes import scripted, with_images
from tests.support.receiver import Received, Receiver

SMALL = {"prompt": "a lighthouse", "width": 64, "height": 64, "model": "local"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def hooked(start_service: StartService, **overrides: Any) -> Service:
    """The app, allowed to call the receiver on 127.0.0.1 (``FETCH_ALLOW_HOSTS``)."""
    return await start_service(fetch_allow_hosts=["127.0.0.1"], **overrides)


async def secret(service: Service, user: str) -> str:
    status, body = await service.request("GET", "/api/webhooks/secret", user=user)
    assert status == 200, body
    return str(body["key"])


def verified(key: str, request: Received) -> dict[str, Any]:
    """The payload, if ``key`` verifies the request's Standard Webhooks signature."""
    payload = Webhook(key).verify(request.body, request.headers)
    assert isinstance(payload, dict)
    return payload


def delivery_attempts(service: Service) -> list[tuple[Any, int | None]]:
    """(virtual time, status) of each finished attempt on the webhook queue."""
    return [
        (event.time, event.status)
        for event in service.backend.events
        if event.queue == QUEUE
        and event.kind in (EventKind.ATTEMPT_SUCCEEDED, EventKind.ATTEMPT_FAILED)
    ]


async def test_a_completed_job_calls_back_signed_with_the_job_as_get_returns_it(
    start_service: StartService, receiver: Receiver
):
    service = await hooked(start_service)
    job = await service.create(
        "alice", "image-generation", {**SMALL, "webhookUrl": receiver.url("/hook")}
    )
    await service.run_until_idle()

    [request] = receiver.for_path("/hook")
    assert request.method == "POST"
    assert request.header("content-type") == "application/json"
    assert request.header("webhook-id") == f"msg_{job['jobId']}_completed"
    assert request.header("webhook-signature").startswith("v1,")
    payload = verified(await secret(service, "alice"), request)
    assert payload["type"] == "job.completed"
    assert payload["data"] == await service.job("alice", job["jobId"])
    assert payload["data"]["status"] == "COMPLETED"
    assert payload["timestamp"].endswith("Z")
    with pytest.raises(WebhookVerificationError):  # another user's secret does not verify it
        verified(await secret(service, "bob"), request)


async def test_a_receiver_answering_500_gets_the_same_message_again_with_backoff(
    start_service: StartService,
):
    answers = iter([500, 500, 200])
    receiver = Receiver(responder=lambda request: next(answers))
    await receiver.start()
    try:
        service = await hooked(start_service)
        job = await service.create(
            "carol", "image-generation", {**SMALL, "webhookUrl": receiver.url()}
        )
        await service.run_until_idle()
    finally:
        await receiver.stop()

    requests = receiver.for_path("/task")
    assert len(requests) == 3
    assert {r.header("webhook-id") for r in requests} == {f"msg_{job['jobId']}_completed"}
    assert len({r.body for r in requests}) == 1  # the same bytes every time
    key = await secret(service, "carol")
    for request in requests:
        assert verified(key, request)["type"] == "job.completed"
    attempts = delivery_attempts(service)
    assert [status for _, status in attempts] == [503, 503, 200]
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(attempts)]
    assert gaps == [timedelta(seconds=30), timedelta(seconds=60)]  # the queue's backoff


async def test_a_receiver_that_never_accepts_is_dropped_after_the_last_attempt(
    start_service: StartService,
):
    receiver = Receiver(responder=lambda request: 500)
    await receiver.start()
    try:
        service = await hooked(start_service)
        await service.create("dave", "image-generation", {**SMALL, "webhookUrl": receiver.url()})
        await service.run_until_idle()
    finally:
        await receiver.stop()
    assert len(receiver.requests) == MAX_ATTEMPTS
    statuses = [status for _, status in delivery_attempts(service)]
    assert statuses == [503] * (MAX_ATTEMPTS - 1) + [200]  # the app tells the queue to stop
    first, last = delivery_attempts(service)[0][0], delivery_attempts(service)[-1][0]
    assert timedelta(hours=7) < last - first < timedelta(hours=9)


async def test_410_gone_is_not_retried(start_service: StartService):
    receiver = Receiver(responder=lambda request: 410)
    await receiver.start()
    try:
        service = await hooked(start_service)
        await service.create("erin", "image-generation", {**SMALL, "webhookUrl": receiver.url()})
        await service.run_until_idle()
    finally:
        await receiver.stop()
    assert len(receiver.requests) == 1


async def test_chosen_events_arrive_for_each_change(
    start_service: StartService, receiver: Receiver
):
    service = await hooked(start_service)
    events = ["job.processing", "job.progress", "job.completed"]
    job = await service.create(
        "frank",
        "image-generation",
        {**SMALL, "webhookUrl": receiver.url(), "webhookEvents": events},
    )
    await service.run_until_idle()
    key = await secret(service, "frank")
    payloads = [verified(key, request) for request in receiver.requests]
    assert sorted(p["type"] for p in payloads) == sorted(events)
    progress = next(p for p in payloads if p["type"] == "job.progress")
    assert (progress["data"]["status"], progress["data"]["progress"]) == ("PROCESSING", 90)
    ids = {request.header("webhook-id") for request in receiver.requests}
    assert len(ids) == 3 and f"msg_{job['jobId']}_progress_90" in ids


async def test_failed_and_cancelled_jobs_call_back(start_service: StartService, receiver: Receiver):
    images = scripted([PermanentProviderError("the prompt was refused")])
    service = await hooked(start_service, providers=with_images(images))
    failed = await service.create(
        "gina", "image-generation", {**SMALL, "webhookUrl": receiver.url("/f")}
    )
    await service.run_until_idle()
    cancelled = await service.create(
        "gina", "image-generation", {**SMALL, "webhookUrl": receiver.url("/c")}
    )
    status, _ = await service.request("POST", f"/api/jobs/{cancelled['jobId']}/cancel", user="gina")
    assert status == 200
    await service.run_until_idle()
    key = await secret(service, "gina")
    [on_failure] = [verified(key, r) for r in receiver.for_path("/f")]
    assert (on_failure["type"], on_failure["data"]["error"]) == (
        "job.failed",
        "the prompt was refused",
    )
    [on_cancel] = [verified(key, r) for r in receiver.for_path("/c")]
    assert (on_cancel["type"], on_cancel["data"]["jobId"]) == ("job.cancelled", cancelled["jobId"])
    assert failed["jobId"] != cancelled["jobId"]


async def test_the_same_change_published_twice_is_delivered_once(
    start_service: StartService, receiver: Receiver
):
    service = await hooked(start_service)
    job = await service.create("hana", "image-generation", {**SMALL, "webhookUrl": receiver.url()})
    await service.run_until_idle()
    view = await service.job("hana", job["jobId"])
    await service.app[SERVICES].events.publish(JobUpdate("hana", view))  # a duplicate
    await service.run_until_idle()
    assert len(receiver.requests) == 1


async def test_rotation_signs_with_both_secrets_for_a_day(
    start_service: StartService, receiver: Receiver
):
    service = await hooked(start_service)
    old = await secret(service, "ivan")
    assert old.startswith("whsec_") and old == await secret(service, "ivan")
    status, rotated = await service.request("POST", "/api/webhooks/secret/rotate", user="ivan")
    assert status == 200 and rotated["key"] != old and rotated["key"].startswith("whsec_")
    assert await secret(service, "ivan") == rotated["key"]

    await service.create("ivan", "image-generation", {**SMALL, "webhookUrl": receiver.url("/1")})
    await service.run_until_idle()
    [request] = receiver.for_path("/1")
    assert len(request.header("webhook-signature").split(" ")) == 2
    verified(old, request)
    verified(rotated["key"], request)

    service.clock.advance(timedelta(hours=25))
    await service.create("ivan", "image-generation", {**SMALL, "webhookUrl": receiver.url("/2")})
    await service.run_until_idle()
    [later] = receiver.for_path("/2")
    verified(rotated["key"], later)
    with pytest.raises(WebhookVerificationError):
        verified(old, later)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"webhookUrl": "http://127.0.0.1:9/hook"}, "webhookUrl"),
        ({"webhookUrl": "http://169.254.169.254/latest"}, "webhookUrl"),
        ({"webhookUrl": "ftp://example.com/hook"}, "webhookUrl"),
        ({"webhookUrl": "https://user:pw@example.com/hook"}, "webhookUrl"),
        ({"webhookEvents": ["job.completed"]}, "webhookEvents"),
        (
            {"webhookUrl": "https://example.com/h", "webhookEvents": ["job.done"]},
            "webhookEvents[0]",
        ),
        ({"webhookUrl": "https://example.com/h", "webhookEvents": []}, "webhookEvents"),
        (
            {"webhookUrl": "https://example.com/h", "webhookEvents": ["job.failed", "job.failed"]},
            "webhookEvents",
        ),
    ],
)
async def test_a_bad_webhook_is_refused_at_creation_at_no_charge(
    service: Service, body: dict[str, Any], field: str
):
    status, answer = await service.request(
        "POST", "/api/jobs/image-generation", user="judy", json={**SMALL, **body}
    )
    assert status == 422, answer
    assert [f["field"] for f in answer["fields"]] == [field]
    assert await service.credits("judy") == 100


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    start_service: StartService, receiver: Receiver
):
    service = await hooked(start_service)  # 127.0.0.1 is allowed, "localhost" is not
    url = receiver.url().replace("127.0.0.1", "localhost")
    job = await service.create("kim", "image-generation", {**SMALL, "webhookUrl": url})
    await service.run_until_idle()
    assert receiver.requests == []
    assert (await service.job("kim", job["jobId"]))["status"] == "COMPLETED"
    assert [status for _, status in delivery_attempts(service)] == [200]  # not retried


async def test_secrets_are_never_logged(
    start_service: StartService, receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    answers = iter([500, 200])
    receiver.responder = lambda request: next(answers)
    service = await hooked(start_service)
    key = await secret(service, "lee")
    await service.create(
        "lee", "image-generation", {**SMALL, "webhookUrl": receiver.url("/s?token=abc")}
    )
    await service.run_until_idle()
    assert len(receiver.requests) == 2
    raw = key.removeprefix("whsec_")
    text = "\n".join(
        record.getMessage() + json.dumps(record.__dict__, default=str) for record in caplog.records
    )
    assert raw not in text and "token=abc" not in text
    assert "webhook delivered" in text
