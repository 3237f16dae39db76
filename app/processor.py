"""``POST /internal/tasks/{type}``: where the queue delivers jobs.

The answer code is the whole conversation with the queue: 2xx stops it (done, failed for good,
or nothing to do), 5xx makes it retry with backoff. The app decides "for good" itself, from
``X-CloudTasks-TaskRetryCount`` and the type's attempt limit, because Cloud Tasks'
``max_attempts`` and ``max_retry_duration`` combine and would keep retrying for an hour.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import Row

from app.context import SERVICES, Services
from app.events import JobUpdate
from app.jobs.handlers import SINGLE_HANDLERS, HandlerContext, run_batch_chunk
from app.jobs.schemas import TaskPayload
from app.jobs.types import BATCH, JOB_TYPES, JobType
from app.jobs.views import job_view
from app.logs import JobLogger, job_logger
from app.models import FINISHED
from app.providers.base import ProviderError
from daygen_queue import InvalidDelivery, TaskDelivery

log = logging.getLogger("app.processor")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to answer the queue."""

    status: int
    body: dict[str, Any]

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status)


def _ack(result: str, **details: Any) -> Outcome:
    return Outcome(200, {"result": result, **details})


class Processor:
    """Runs one delivery of one job (or batch chunk) to a transition and an answer."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.ctx = HandlerContext(services.settings, services.providers, services.storage)

    async def publish(self, row: Row[Any] | None) -> None:
        if row is None:
            return
        try:
            await self.services.events.publish(JobUpdate(row.user_id, job_view(row)))
        except Exception:  # a lost live update must never fail the job
            log.exception("publishing a job update failed", extra={"job_id": row.id})

    async def process(
        self, job_type: JobType, delivery: TaskDelivery, payload: TaskPayload
    ) -> Outcome:
        if job_type.name == BATCH:
            if payload.chunk is None:
                return Outcome(400, {"error": "invalid_task", "message": "chunk is required"})
            return await self._process_chunk(job_type, delivery, payload.job_id, payload.chunk)
        return await self._process_job(job_type, delivery, payload.job_id)

    def _logger(self, job: Row[Any], delivery: TaskDelivery, **extra: Any) -> JobLogger:
        return job_logger(
            "app.processor",
            job_id=job.id,
            user_id=job.user_id,
            job_type=job.type,
            attempt=delivery.attempt,
            **extra,
        )

    def _unclaimed(self, job_type: JobType, job: Row[Any] | None, job_id: str) -> Outcome:
        """Why a delivery did not get the job, as an answer."""
        if job is None:
            # Nothing will ever make this job appear: stop the queue instead of retrying.
            log.warning("task for an unknown job acknowledged", extra={"job_id": job_id})
            return _ack("unknown_job")
        if job.type != job_type.name:
            log.error("task delivered to the wrong job type", extra={"job_id": job_id})
            return _ack("wrong_type")
        if job.status in FINISHED:
            return _ack("already_finished", status=job.status)
        # Another delivery of this task holds the job right now (a duplicate): let the queue
        # come back later rather than run it twice.
        return Outcome(409, {"error": "in_progress", "message": "another delivery holds this job"})

    async def _process_job(self, job_type: JobType, delivery: TaskDelivery, job_id: str) -> Outcome:
        attempt = delivery.attempt
        claim = await self.store.claim(job_id, attempt, job_type.name)
        if not claim.won or claim.job is None:
            return self._unclaimed(job_type, claim.job, job_id)
        job = claim.job
        logger = self._logger(job, delivery)
        logger.info("job started")
        await self.publish(job)

        async def report(progress: int) -> None:
            await self.publish(await self.store.set_progress(job_id, attempt, progress))

        handler = SINGLE_HANDLERS[job_type.name]
        try:
            async with asyncio.timeout(job_type.run_timeout.total_seconds()):
                result = await handler(self.ctx, job_id, dict(job.params), report)
        except Exception as error:
            message, retryable = _describe(error, job_type, logger)
            return await self._failed(
                job_type,
                delivery,
                logger,
                message,
                retryable,
                fail=lambda: self.store.fail(job_id, message, attempt=attempt),
            )
        row = await self.store.complete(job_id, attempt, result)
        if row is None:
            logger.info("result discarded: a newer attempt owns the job")
            return _ack("superseded")
        logger.info("job completed")
        await self.publish(row)
        return _ack("completed")

    async def _process_chunk(
        self, job_type: JobType, delivery: TaskDelivery, job_id: str, index: int
    ) -> Outcome:
        attempt = delivery.attempt
        claim = await self.store.claim_chunk(job_id, index, attempt)
        if not claim.won or claim.job is None:
            job = claim.job
            if job is not None and job.type == job_type.name and job.status not in FINISHED:
                chunks = await self.store.chunks(job_id)
                if not any(chunk.position == index for chunk in chunks):
                    return _ack("unknown_chunk")
                if any(chunk.position == index and chunk.status in FINISHED for chunk in chunks):
                    return _ack("already_finished")
            return self._unclaimed(job_type, claim.job, job_id)
        job = claim.job
        logger = self._logger(job, delivery, chunk=index)
        logger.info("batch chunk started")
        if claim.job_changed:
            await self.publish(job)

        async def report_done(done: int) -> None:
            await self.publish(await self.store.chunk_progress(job_id, index, attempt, done))

        try:
            async with asyncio.timeout(job_type.run_timeout.total_seconds()):
                urls = await run_batch_chunk(self.ctx, job_id, dict(job.params), index, report_done)
        except Exception as error:
            message, retryable = _describe(error, job_type, logger)
            return await self._failed(
                job_type,
                delivery,
                logger,
                message,
                retryable,
                fail=lambda: self.store.fail_chunk(job_id, index, attempt, message),
            )
        row = await self.store.complete_chunk(job_id, index, attempt, urls)
        if row is not None:
            if row.status == "COMPLETED":
                logger.info("batch completed")
            await self.publish(row)
        return _ack("chunk_completed")

    async def _failed(
        self,
        job_type: JobType,
        delivery: TaskDelivery,
        logger: JobLogger,
        message: str,
        retryable: bool,
        *,
        fail: Callable[[], Awaitable[Row[Any] | None]],
    ) -> Outcome:
        """Retry (5xx) while attempts remain and the error is transient; else fail for good
        (refunded) and answer 2xx so the queue stops."""
        attempt = delivery.attempt
        if retryable and attempt < job_type.max_attempts:
            logger.warning(
                "attempt %d/%d failed, will retry: %s", attempt, job_type.max_attempts, message
            )
            return Outcome(503, {"error": "retryable", "message": message, "attempt": attempt})
        logger.warning("job failed for good on attempt %d: %s", attempt, message)
        await self.publish(await fail())
        return _ack("failed", error=message)


def _describe(error: Exception, job_type: JobType, logger: JobLogger) -> tuple[str, bool]:
    """(message for the job's ``error`` field, retryable?)."""
    if isinstance(error, ProviderError):
        return error.message, error.retryable
    if isinstance(error, TimeoutError):
        return f"timed out after {job_type.run_timeout.total_seconds():g}s", True
    logger.exception("unexpected error while running the job")
    return f"internal error ({type(error).__name__})", True


async def handle_task(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    denied = await services.internal.check(
        request.headers.get("X-Internal-Api-Key"), request.headers.get("Authorization")
    )
    if denied is not None:
        message = "missing credentials" if denied == 401 else "invalid credentials"
        return web.json_response({"error": "unauthorized", "message": message}, status=denied)
    job_type = JOB_TYPES.get(request.match_info["type"])
    if job_type is None:
        return web.json_response(
            {"error": "not_found", "message": f"unknown job type {request.match_info['type']!r}"},
            status=404,
        )
    try:
        delivery = TaskDelivery.from_headers(request.headers)
    except InvalidDelivery as exc:
        return web.json_response({"error": "invalid_delivery", "message": str(exc)}, status=400)
    try:
        payload = TaskPayload.model_validate_json(await request.read())
    except ValidationError as exc:
        fields = [".".join(str(part) for part in error["loc"]) for error in exc.errors()]
        return web.json_response(
            {"error": "invalid_task", "message": f"invalid task body: {', '.join(fields)}"},
            status=400,
        )
    outcome = await Processor(services).process(job_type, delivery, payload)
    return outcome.response()
