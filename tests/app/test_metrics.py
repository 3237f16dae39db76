"""``/metrics``: the counters and histograms move as jobs run through the app (emulator on the
virtual clock, SQLite and PostgreSQL), and only whoever the settings allow may read them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from app.events import JobUpdate, RecordingJobEvents
from app.jobs.records import JobRecord
from app.jobs.views import job_view
from app.main import METRICS
from app.metrics import AppMetrics, MeteredJobEvents, may_read
from app.models import JobStatus
from app.providers.base import (
    ErrorCode,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)
from app.settings import Settings
from tests.app.conftest import INTERNAL_KEY, Service, StartService
from tests.app.fakes import scripted, with_images

IMAGE = {"prompt": "a red kite", "width": 64, "height": 64}
QUEUE = "image-generation-queue"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: Service, **headers: str) -> tuple[int, str]:
    async with service.http.get(service.base_url + "/metrics", headers=headers) as response:
        return response.status, await response.text()


async def samples(service: Service) -> Samples:
    status, text = await scrape(service)
    assert status == 200, text
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """The sample ``name{labels}``; 0 when it has none yet (a counter never moved)."""
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_a_completed_job_moves_every_job_metric(start_service: StartService) -> None:
    service = await start_service()
    await service.backend.pause_queue(QUEUE)
    job = await service.create("alice", "image-generation", IMAGE)
    before = await samples(service)
    labels = {"type": "image-generation", "provider": "bfl"}
    assert value(before, "daygen_jobs_created_total", **labels) == 1
    assert value(before, "daygen_credits_charged_total", type="image-generation") == 1
    assert value(before, "daygen_jobs_finished_total", **labels, status="COMPLETED") == 0

    # Seven virtual seconds in the queue, then it runs.
    await service.backend.advance(timedelta(seconds=7))
    await service.backend.resume_queue(QUEUE)
    await service.run_until_idle()
    assert (await service.job("alice", job["jobId"]))["status"] == "COMPLETED"

    after = await samples(service)
    assert value(after, "daygen_jobs_finished_total", **labels, status="COMPLETED") == 1
    assert (
        value(after, "daygen_job_queue_seconds_count", type="image-generation", priority="normal")
        == 1
    )
    assert (
        value(after, "daygen_job_queue_seconds_sum", type="image-generation", priority="normal")
        == 7.0
    )
    assert (
        value(
            after,
            "daygen_job_queue_seconds_bucket",
            type="image-generation",
            priority="normal",
            le="5.0",
        )
        == 0
    )
    assert (
        value(
            after,
            "daygen_job_queue_seconds_bucket",
            type="image-generation",
            priority="normal",
            le="10.0",
        )
        == 1
    )
    done = {**labels, "status": "COMPLETED"}
    assert value(after, "daygen_job_processing_seconds_count", **done) == 1
    call = {"provider": "bfl", "operation": "generate_image"}
    assert value(after, "daygen_provider_request_seconds_count", **call) == 1
    assert value(after, "daygen_task_deliveries_total", type="image-generation", result="completed")
    assert value(after, "daygen_credits_refunded_total", type="image-generation") == 0


async def test_retries_time_processing_and_count_provider_errors_by_code(
    start_service: StartService,
) -> None:
    busy: list[ProviderError] = [
        RetryableProviderError("busy", code=ErrorCode.UNAVAILABLE) for _ in range(2)
    ]
    service = await start_service(providers=with_images(scripted(busy)))
    job = await service.create("alice", "image-generation", {**IMAGE, "model": "local"})
    await service.run_until_idle()
    assert (await service.job("alice", job["jobId"]))["status"] == "COMPLETED"

    found = await samples(service)
    errors = {"provider": "local", "code": "unavailable"}
    assert value(found, "daygen_provider_errors_total", **errors) == 2
    deliveries = {"type": "image-generation"}
    assert value(found, "daygen_task_deliveries_total", **deliveries, result="retryable") == 2
    assert value(found, "daygen_task_deliveries_total", **deliveries, result="completed") == 1
    # Attempts at t, t+1 s, t+3 s (backoff 1 s, doubling): processing took 3 virtual seconds,
    # and the job waited in the queue once, for no time.
    done = {"type": "image-generation", "provider": "local", "status": "COMPLETED"}
    assert value(found, "daygen_job_processing_seconds_sum", **done) == 3.0
    assert (
        value(found, "daygen_job_queue_seconds_count", type="image-generation", priority="normal")
        == 1
    )
    assert (
        value(found, "daygen_job_queue_seconds_sum", type="image-generation", priority="normal")
        == 0.0
    )
    calls = {"provider": "local", "operation": "generate_image"}
    assert value(found, "daygen_provider_request_seconds_count", **calls) == 3


async def test_a_failed_job_counts_its_refund_and_its_error(start_service: StartService) -> None:
    images = scripted([PermanentProviderError("refused", code=ErrorCode.MODERATED)])
    service = await start_service(providers=with_images(images))
    batch = {"prompts": ["a", "b", "c"], "width": 64, "height": 64, "model": "local"}
    job = await service.create("bob", "batch-generation", batch)
    await service.run_until_idle()
    assert (await service.job("bob", job["jobId"]))["status"] == "FAILED"
    assert await service.credits("bob") == 100

    found = await samples(service)
    labels = {"type": "batch-generation", "provider": "local"}
    assert value(found, "daygen_jobs_created_total", **labels) == 1
    assert value(found, "daygen_jobs_finished_total", **labels, status="FAILED") == 1
    assert value(found, "daygen_jobs_finished_total", **labels, status="COMPLETED") == 0
    assert value(found, "daygen_credits_charged_total", type="batch-generation") == 3
    assert value(found, "daygen_credits_refunded_total", type="batch-generation") == 3
    errors = {"provider": "local", "code": "moderated"}
    assert value(found, "daygen_provider_errors_total", **errors) == 1


async def test_a_batch_waits_in_the_queue_once_whatever_its_chunks(
    start_service: StartService,
) -> None:
    service = await start_service()
    batch = {"prompts": list("abcde"), "batchSize": 2, "width": 64, "height": 64, "model": "local"}
    job = await service.create("dan", "batch-generation", batch)
    await service.run_until_idle()
    assert (await service.job("dan", job["jobId"]))["status"] == "COMPLETED"

    found = await samples(service)
    assert (
        value(found, "daygen_job_queue_seconds_count", type="batch-generation", priority="normal")
        == 1
    )
    deliveries = {"type": "batch-generation", "result": "chunk_completed"}
    assert value(found, "daygen_task_deliveries_total", **deliveries) == 3
    calls = {"provider": "local", "operation": "generate_image"}
    assert value(found, "daygen_provider_request_seconds_count", **calls) == 5
    assert value(found, "daygen_credits_charged_total", type="batch-generation") == 5


async def test_a_duplicate_delivery_counts_nothing_twice(start_service: StartService) -> None:
    service = await start_service()
    job = await service.create("carol", "image-generation", {**IMAGE, "model": "local"})
    await service.run_until_idle()
    # The queue delivers the finished job's task again (at least once): acknowledged only.
    status, body = await deliver_again(service, job["jobId"])
    assert (status, body["result"]) == (200, "already_finished")

    found = await samples(service)
    labels = {"type": "image-generation", "provider": "local"}
    assert value(found, "daygen_jobs_finished_total", **labels, status="COMPLETED") == 1
    assert (
        value(found, "daygen_job_queue_seconds_count", type="image-generation", priority="normal")
        == 1
    )
    deliveries = {"type": "image-generation"}
    assert value(found, "daygen_task_deliveries_total", **deliveries, result="completed") == 1
    assert value(found, "daygen_task_deliveries_total", **deliveries, result="already_finished")


async def deliver_again(service: Service, job_id: str) -> tuple[int, Any]:
    headers = {
        "X-CloudTasks-QueueName": QUEUE,
        "X-CloudTasks-TaskName": job_id,
        "X-CloudTasks-TaskRetryCount": "0",
        "X-Internal-API-Key": INTERNAL_KEY,
    }
    return await service.request(
        "POST", "/internal/tasks/image-generation", headers=headers, json={"jobId": job_id}
    )


async def test_every_metric_is_exported_before_it_moves(service: Service) -> None:
    status, text = await scrape(service)
    assert status == 200
    families = {family.name for family in text_string_to_metric_families(text)}
    exported = service.app[METRICS].exported_names()
    for name in [
        "daygen_jobs_created",
        "daygen_jobs_finished",
        "daygen_job_queue_seconds",
        "daygen_job_processing_seconds",
        "daygen_provider_request_seconds",
        "daygen_provider_errors",
        "daygen_credits_charged",
        "daygen_credits_refunded",
        "daygen_task_deliveries",
        "daygen_webhook_deliveries",
        "daygen_live_connections",
    ]:
        assert any(series.startswith(name) for series in exported), name
    # Labelled metrics show their HELP and TYPE from the start; the gauge has its samples.
    assert "daygen_live_connections" in families
    assert 'daygen_live_connections{transport="sse"} 0.0' in text


# ------------------------------------------------------------------------------ who may read


async def test_metrics_are_open_outside_production(service: Service) -> None:
    status, _ = await scrape(service)
    assert status == 200


async def test_production_closes_metrics_unless_configured(start_service: StartService) -> None:
    service = await start_service(app_env="production")
    status, text = await scrape(service)
    assert status == 403
    assert "METRICS_TOKEN" in text


async def test_a_metrics_token_is_required_when_set(start_service: StartService) -> None:
    service = await start_service(app_env="production", metrics_token="scrape-secret-123")
    assert (await scrape(service))[0] == 401
    assert (await scrape(service, Authorization="Bearer wrong"))[0] == 401
    status, text = await scrape(service, Authorization="Bearer scrape-secret-123")
    assert status == 200 and "daygen_jobs_created" in text
    # A user's token is not a metrics token.
    assert (await scrape(service, **service.auth("alice")))[0] == 401


async def test_allowed_networks_admit_their_peers_only(start_service: StartService) -> None:
    loopback = await start_service(app_env="production", metrics_allowed_networks="127.0.0.0/8")
    assert (await scrape(loopback))[0] == 200
    elsewhere = await start_service(
        app_env="production", metrics_allowed_networks="10.0.0.0/8,192.168.0.0/16"
    )
    status, text = await scrape(elsewhere)
    assert status == 403 and "address" in text


def rule(remote: str | None, authorization: str | None = None, **settings: Any) -> bool:
    options: dict[str, Any] = {"jwt_secret": "x" * 32, "internal_api_key": "k", **settings}
    return may_read(Settings(**options), remote, authorization)


def test_the_access_rule() -> None:
    # Nothing configured: open in development and tests, closed in production.
    assert rule("203.0.113.9", app_env="development")
    assert rule("203.0.113.9", app_env="test")
    assert not rule("127.0.0.1", app_env="production")
    # A token: only "Bearer <token>" (the scheme in any case), compared in constant time.
    token = {"app_env": "production", "metrics_token": "s3cret-token"}
    assert rule("203.0.113.9", "Bearer s3cret-token", **token)
    assert rule("203.0.113.9", "bearer s3cret-token", **token)
    assert not rule("203.0.113.9", "Basic s3cret-token", **token)
    assert not rule("203.0.113.9", "Bearer s3cret-toke", **token)
    assert not rule("203.0.113.9", None, **token)
    # Set outside production, a token closes /metrics there too.
    assert not rule("127.0.0.1", None, app_env="development", metrics_token="s3cret-token")
    # Networks: the peer address, IPv4 seen through IPv6 included; either rule admits.
    nets = {"app_env": "production", "metrics_allowed_networks": "10.0.0.0/8, fd00::/8"}
    assert rule("10.1.2.3", **nets)
    assert rule("::ffff:10.1.2.3", **nets)
    assert rule("fd00::1", **nets)
    assert not rule("11.0.0.1", **nets)
    assert not rule(None, **nets)
    assert not rule("not-an-address", **nets)
    both = {**nets, "metrics_token": "s3cret-token"}
    assert rule("11.0.0.1", "Bearer s3cret-token", **both)
    assert rule("10.0.0.1", None, **both)
    # An empty token is no token: it never matches an empty bearer.
    assert not rule("127.0.0.1", "Bearer ", app_env="production", metrics_token="")


def test_metrics_settings_refuse_what_they_cannot_read() -> None:
    with pytest.raises(ValidationError, match="metrics_allowed_networks"):
        Settings(metrics_allowed_networks="10.0.0.1/8")
    with pytest.raises(ValidationError, match="metrics_allowed_networks"):
        Settings(metrics_allowed_networks="intranet")


async def test_two_apps_in_one_process_keep_their_own_counters(
    start_service: StartService,
) -> None:
    first, second = await start_service(), await start_service()
    await first.create("erin", "image-generation", {**IMAGE, "model": "local"})
    labels = {"type": "image-generation", "provider": "local"}
    assert value(await samples(first), "daygen_jobs_created_total", **labels) == 1
    assert value(await samples(second), "daygen_jobs_created_total", **labels) == 0


class _Store:
    """Answers ``get_job`` from a dict: the tee's only use of the store."""

    def __init__(self, *jobs: JobRecord) -> None:
        self.jobs = {job.id: job for job in jobs}
        self.reads = 0

    async def get_job(self, job_id: str) -> JobRecord | None:
        self.reads += 1
        return self.jobs.get(job_id)


def _record(status: JobStatus, **changes: Any) -> JobRecord:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    job = JobRecord(
        id="job-1",
        user_id="frank",
        type="video-generation",
        status=status,
        progress=0,
        params={"provider": "runway"},
        result=None,
        error=None,
        attempts=1,
        cost=5,
        created_at=start,
        updated_at=start + timedelta(seconds=30),
        started_at=start + timedelta(seconds=10),
        completed_at=start + timedelta(seconds=30),
    )
    return replace(job, **changes)


async def test_the_tee_counts_final_states_and_passes_every_update_on() -> None:
    cancelled = _record(JobStatus.CANCELLED)
    store, inner, metrics = _Store(cancelled), RecordingJobEvents(), AppMetrics()
    tee = MeteredJobEvents(inner, metrics, store)  # type: ignore[arg-type]
    running = _record(JobStatus.PROCESSING, completed_at=None)
    await tee.publish(JobUpdate("frank", job_view(running), running))
    # Published without its record (as a new caller might): read from the store.
    await tee.publish(JobUpdate("frank", job_view(cancelled)))
    assert inner.statuses("job-1") == ["PROCESSING", "CANCELLED"]
    assert store.reads == 1
    labels = {"type": "video-generation", "provider": "runway", "status": "CANCELLED"}
    registry = metrics.registry
    assert registry.get_sample_value("daygen_jobs_finished_total", labels) == 1
    assert registry.get_sample_value("daygen_job_processing_seconds_sum", labels) == 20.0
    refunded = {"type": "video-generation"}
    assert registry.get_sample_value("daygen_credits_refunded_total", refunded) == 5
    # A cancelled job that never started has no processing time.
    never = replace(cancelled, id="job-2", started_at=None)
    await tee.publish(JobUpdate("frank", job_view(never), never))
    assert registry.get_sample_value("daygen_jobs_finished_total", labels) == 2
    assert registry.get_sample_value("daygen_job_processing_seconds_count", labels) == 1
    assert registry.get_sample_value("daygen_credits_refunded_total", refunded) == 10


async def test_counting_never_fails_a_publish() -> None:
    class Broken:
        async def get_job(self, job_id: str) -> JobRecord | None:
            raise ConnectionError("database down")

    inner = RecordingJobEvents()
    tee = MeteredJobEvents(inner, AppMetrics(), Broken())  # type: ignore[arg-type]
    await tee.publish(JobUpdate("frank", job_view(_record(JobStatus.FAILED))))
    assert inner.statuses("job-1") == ["FAILED"]
