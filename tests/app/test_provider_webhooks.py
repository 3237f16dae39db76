"""Provider webhooks finish a job early: BFL's proven with the per-job secret we sent,
Replicate's verified with Standard Webhooks and deduplicated by ``webhook-id``. A webhook only
makes a poll happen now; the provider's own answer to that poll decides (polling stays the
source of truth), so a forged or replayed webhook changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp

from tests.app.conftest import database, db_kind  # noqa: F401  (fixtures)
from tests.app.remote_support import (  # noqa: F401  (fixtures)
    REPLICATE_WEBHOOK_SECRET,
    RemoteRig,
    rig_fixture,
)

IMAGE = {"prompt": "A beautiful sunset", "model": "flux-1.1-pro", "provider": "bfl"}
UPSCALE = {"imageUrl": "https://example.com/image.jpg", "model": "real-esrgan", "scale": 2}


async def test_bfl_webhook_completes_the_job_before_its_first_poll(rig: RemoteRig) -> None:
    service = await rig.start(provider_webhooks=True)
    rig.bfl.script("Pending")
    job = await service.create("u1", "image-generation", IMAGE)
    await rig.backend.advance(timedelta(0))
    (task,) = rig.bfl.tasks.values()
    assert task.body["webhook_url"] == f"{service.base_url}/internal/providers/bfl/webhook"
    assert len(task.body["webhook_secret"]) == 64

    rig.bfl.finish(task.id)
    assert await rig.bfl.send_webhook(task.id) == 200
    assert await rig.bfl.send_webhook(task.id) == 200  # BFL retries: one poll all the same
    await rig.backend.advance(timedelta(0))  # only what is due now: the webhook's poll
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"
    assert len(rig.bfl.calls("GET", "/v1/get_result")) == 1
    await service.run_until_idle()  # the scheduled poll finds the job done and stops
    assert len(rig.bfl.calls("GET", "/v1/get_result")) == 1


async def test_bfl_webhook_with_a_wrong_secret_is_refused_and_changes_nothing(
    rig: RemoteRig,
) -> None:
    service = await rig.start(provider_webhooks=True)
    rig.bfl.script("Pending", "Pending", "Ready")
    job = await service.create("u1", "image-generation", IMAGE)
    await rig.backend.advance(timedelta(0))
    (task,) = rig.bfl.tasks.values()
    assert await rig.bfl.send_webhook(task.id, secret="not-the-secret") == 401
    await rig.backend.advance(timedelta(0))
    assert (await service.job("u1", job["jobId"]))["status"] == "PROCESSING"
    await service.run_until_idle()
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"


async def test_a_webhook_claiming_success_does_not_override_the_provider(rig: RemoteRig) -> None:
    """A genuine-looking call saying Ready while BFL itself still says Pending: the poll it
    triggers asks BFL, which decides."""
    service = await rig.start(provider_webhooks=True)
    rig.bfl.script("Pending", "Pending", "Ready")
    job = await service.create("u1", "image-generation", IMAGE)
    await rig.backend.advance(timedelta(0))
    (task,) = rig.bfl.tasks.values()
    assert await rig.bfl.send_webhook(task.id) == 200  # reports "Pending": its script head
    await rig.backend.advance(timedelta(0))
    assert (await service.job("u1", job["jobId"]))["status"] == "PROCESSING"
    await service.run_until_idle()
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"
    assert len(rig.bfl.calls("POST", "/v1/")) == 1


async def test_replicate_webhook_verified_and_deduplicated_by_webhook_id(rig: RemoteRig) -> None:
    service = await rig.start(
        provider_webhooks=True, replicate_webhook_secret=REPLICATE_WEBHOOK_SECRET
    )
    rig.replicate.script("starting", "processing")
    job = await service.create("u1", "image-upscale", UPSCALE)
    await rig.backend.advance(timedelta(0))
    (prediction,) = rig.replicate.predictions.values()
    assert prediction.webhook == f"{service.base_url}/internal/providers/replicate/webhook"
    submitted = rig.replicate.calls("POST", "/v1/predictions")[0].body
    assert submitted["webhook_events_filter"] == ["completed"]

    rig.replicate.finish(prediction.id)
    secret = REPLICATE_WEBHOOK_SECRET
    assert await rig.replicate.send_webhook(prediction.id, secret, webhook_id="msg_1") == 200
    assert await rig.replicate.send_webhook(prediction.id, secret, webhook_id="msg_1") == 200
    polls_before = len(rig.replicate.calls("GET", "/v1/predictions/"))
    await rig.backend.advance(timedelta(0))
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"
    assert len(rig.replicate.calls("GET", "/v1/predictions/")) == polls_before + 1


async def test_replicate_webhook_forged_or_stale_is_refused(rig: RemoteRig) -> None:
    service = await rig.start(
        provider_webhooks=True, replicate_webhook_secret=REPLICATE_WEBHOOK_SECRET
    )
    rig.replicate.script("starting", "processing")
    await service.create("u1", "image-upscale", UPSCALE)
    await rig.backend.advance(timedelta(0))
    (prediction,) = rig.replicate.predictions.values()
    other = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    assert await rig.replicate.send_webhook(prediction.id, other) == 401
    stale = datetime.now(UTC) - timedelta(minutes=10)
    status = await rig.replicate.send_webhook(
        prediction.id, REPLICATE_WEBHOOK_SECRET, timestamp=stale
    )
    assert status == 401
    async with aiohttp.ClientSession() as http:
        url = f"{service.base_url}/internal/providers/replicate/webhook"
        async with http.post(url, data=json.dumps({"id": prediction.id})) as response:
            assert response.status == 401  # no signature headers at all


async def test_webhooks_are_off_unless_enabled(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Ready")
    await service.create("u1", "image-generation", IMAGE)
    await rig.backend.advance(timedelta(0))
    (task,) = rig.bfl.tasks.values()
    assert "webhook_url" not in task.body
    async with aiohttp.ClientSession() as http:
        url = f"{service.base_url}/internal/providers/bfl/webhook"
        async with http.post(url, data=json.dumps({"id": task.id})) as response:
            assert response.status == 404


async def test_no_bfl_webhook_without_a_key_to_derive_its_secret(rig: RemoteRig) -> None:
    """With OIDC deliveries only (no INTERNAL_API_KEY, no PROVIDER_WEBHOOK_KEY) nothing could
    make the secret unguessable: BFL webhooks are not requested, polling does the work."""
    from app.jobs.provider_requests import webhook_secret
    from app.services import SERVICES

    service = await rig.start(provider_webhooks=True, provider_webhook_key="k" * 32)
    services = service.app[SERVICES]
    with_key = webhook_secret(services, "job-1")
    assert with_key is not None and with_key != webhook_secret(services, "job-2")
    services.settings.provider_webhook_key = None
    services.settings.internal_api_key = None
    assert webhook_secret(services, "job-1") is None
