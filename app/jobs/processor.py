"""The processor: one delivery of a task, run to a job transition and an answer for the queue.

The answer's status is the whole conversation with the queue: 2xx stops it (done, failed for
good, or nothing to do), 5xx makes it retry with backoff, 409 tells it another delivery holds
the job. The app decides "for good" itself, from ``X-CloudTasks-TaskRetryCount`` and the type's
attempt limit, because Cloud Tasks' ``max_attempts`` and ``max_retry_duration`` combine and
would keep retrying for an hour.

Every delivery follows the same steps (claim, run the handler under the type's timeout,
complete or fail); what a step writes depends on whether the task is a whole job or one chunk
of a job made of chunks, which ``WholeJob`` and ``OneChunk`` say.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from app.events import JobUpdate
from app.jobs.cancel import JobCancelled, raise_if_cancelled
from app.jobs.dependencies import settle_dependents
from app.jobs.handlers import HandlerContext, HandlerTask
from app.jobs.outcome import Outcome, ack
from app.jobs.provider_batches import RemoteBatches
from app.jobs.provider_polling import AwaitingProvider, RemoteJobs, retry_after_headers
from app.jobs.records import Claim, JobRecord
from app.jobs.retry_policy import failure_kind
from app.jobs.schemas import TaskPayload
from app.jobs.store import JobStore
from app.jobs.types import JobType
from app.jobs.views import signed_job_view
from app.logs import JobLogger, job_logger
from app.metrics import outcome_word
from app.models import FINISHED, JobStatus
from app.providers.base import ProviderError
from app.services import Services
from daygen_queue import TaskDelivery

log = logging.getLogger("app.processor")


class Work(Protocol):
    """What one delivery claims, reports and finishes: a whole job or one of its chunks."""

    @property
    def job_id(self) -> str: ...

    @property
    def chunk(self) -> int | None: ...

    @property
    def started(self) -> str:
        """The log line when the work starts."""
        ...

    async def claim(self) -> Claim: ...

    async def refused(self, job: JobRecord) -> Outcome | None:
        """A more precise answer than the common ones for a claim lost on ``job``."""
        ...

    async def progress(self, value: int) -> JobRecord | None: ...

    async def complete(self, result: dict[str, Any]) -> JobRecord | None: ...

    async def fail(self, message: str) -> JobRecord | None: ...

    def completed(self, job: JobRecord | None, logger: JobLogger) -> Outcome:
        """The answer once ``complete`` returned ``job`` (None: nothing changed)."""
        ...


@dataclass(frozen=True, slots=True)
class WholeJob:
    store: JobStore
    job_type: str
    job_id: str
    attempt: int
    chunk: None = None
    started: str = "job started"

    async def claim(self) -> Claim:
        return await self.store.claim(self.job_id, self.attempt, self.job_type)

    async def refused(self, job: JobRecord) -> Outcome | None:
        return None

    async def progress(self, value: int) -> JobRecord | None:
        return await self.store.set_progress(self.job_id, self.attempt, value)

    async def complete(self, result: dict[str, Any]) -> JobRecord | None:
        return await self.store.complete(self.job_id, self.attempt, result)

    async def fail(self, message: str) -> JobRecord | None:
        return await self.store.fail(self.job_id, message, attempt=self.attempt)

    def completed(self, job: JobRecord | None, logger: JobLogger) -> Outcome:
        if job is None:
            logger.info("result discarded: a newer attempt owns the job")
            return ack("superseded")
        logger.info("job completed")
        return ack("completed")


@dataclass(frozen=True, slots=True)
class OneChunk:
    store: JobStore
    job_type: str
    job_id: str
    attempt: int
    chunk: int
    started: str = "batch chunk started"

    async def claim(self) -> Claim:
        return await self.store.claim_chunk(self.job_id, self.chunk, self.attempt, self.job_type)

    async def refused(self, job: JobRecord) -> Outcome | None:
        if job.type != self.job_type or job.status in FINISHED:
            return None
        mine = [
            chunk for chunk in await self.store.chunks(self.job_id) if chunk.position == self.chunk
        ]
        if not mine:
            return ack("unknown_chunk")
        if mine[0].status in FINISHED:
            return ack("already_finished")
        return None

    async def progress(self, value: int) -> JobRecord | None:
        return await self.store.chunk_progress(self.job_id, self.chunk, self.attempt, value)

    async def complete(self, result: dict[str, Any]) -> JobRecord | None:
        return await self.store.complete_chunk(
            self.job_id, self.chunk, self.attempt, result["urls"]
        )

    async def fail(self, message: str) -> JobRecord | None:
        return await self.store.fail_chunk(self.job_id, self.chunk, self.attempt, message)

    def completed(self, job: JobRecord | None, logger: JobLogger) -> Outcome:
        if job is not None and job.status == JobStatus.COMPLETED:
            logger.info("batch completed")
        return ack("chunk_completed")


class Processor:
    """Runs one delivery of one job (or chunk) to a transition and an answer."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.ctx = HandlerContext(services.settings, services.providers, services.storage)
        self.remote = RemoteJobs(services)
        self.batches = RemoteBatches(services)

    async def publish(self, job: JobRecord | None) -> None:
        if job is not None:
            view = await signed_job_view(job, self.services.storage)
            await self.services.events.publish(JobUpdate(job.user_id, view, job))

    async def process(
        self, job_type: JobType[Any], delivery: TaskDelivery, payload: TaskPayload
    ) -> Outcome:
        work: Work
        # The job's attempt: this task's, after those of the tasks it took over from.
        attempt = payload.attempts_before + delivery.attempt
        if not job_type.chunked:
            work = WholeJob(self.store, job_type.name, payload.job_id, attempt)
        elif payload.chunk is None:
            return Outcome(400, {"error": "invalid_task", "message": "chunk is required"})
        else:
            work = OneChunk(self.store, job_type.name, payload.job_id, attempt, payload.chunk)
        outcome = await self._run(job_type, attempt, work)
        self.services.metrics.delivery(job_type.name, outcome_word(outcome.status, outcome.body))
        return outcome

    async def _run(self, job_type: JobType[Any], attempt: int, work: Work) -> Outcome:
        claim = await work.claim()
        job = claim.job
        if job is None:
            # Nothing will ever make this job appear: stop the queue instead of retrying.
            log.warning("task for an unknown job acknowledged", extra={"job_id": work.job_id})
            return ack("unknown_job")
        if not claim.won:
            return await work.refused(job) or self._unclaimed(job_type, job)
        extra = {} if work.chunk is None else {"chunk": work.chunk}
        logger = job_logger(
            "app.processor",
            job_id=job.id,
            user_id=job.user_id,
            job_type=job.type,
            attempt=attempt,
            **extra,
        )
        logger.info(work.started)
        if claim.job_changed:
            self.services.metrics.job_started(job)
            await self.publish(job)

        async def report(value: int) -> None:
            moved = await work.progress(value)
            if moved is None:  # no longer this attempt's: a safe point to stop if cancelled
                await raise_if_cancelled(self.services, job.id)
            await self.publish(moved)

        task = HandlerTask(job.id, dict(job.params), work.chunk, report)
        remote = work.chunk is None and self.remote.adapter_for(job.type, job.params) is not None
        remote_chunk = work.chunk is not None and self.batches.adapter_for(job.type, job.params)
        try:
            async with asyncio.timeout(job_type.run_timeout.total_seconds()):
                if remote:
                    # Submits (or adopts) the provider task; poll tasks finish the job.
                    result = await self.remote.start(job_type, job, attempt)
                elif remote_chunk and work.chunk is not None:
                    result = await self.batches.start(job_type, job, work.chunk, attempt)
                else:
                    result = await job_type.handler(self.ctx, task)
        except JobCancelled:
            logger.info("stopped: the job was cancelled")
            return ack("cancelled")
        except AwaitingProvider as waiting:
            logger.info("provider task %s: polling on the queue", waiting.task_id)
            return ack("awaiting_provider", adopted=waiting.adopted)
        except Exception as error:
            message, retryable = _describe(error, job_type, logger)
            policy = job_type.retry_policy(self.services.settings.retry_policies)
            if retryable and policy.retries(failure_kind(error), attempt):
                logger.warning(
                    "attempt %d/%d failed, will retry: %s", attempt, policy.max_attempts, message
                )
                body = {"error": "retryable", "message": message, "attempt": attempt}
                headers = retry_after_headers(error) if isinstance(error, ProviderError) else {}
                return Outcome(503, body, headers)
            logger.warning("job failed for good on attempt %d: %s", attempt, message)
            failed = await work.fail(message)
            await self.publish(failed)
            await settle_dependents(self.services, failed)
            return ack("failed", error=message)
        finished = await work.complete(result)
        await self.publish(finished)
        await settle_dependents(self.services, finished)
        return work.completed(finished, logger)

    def _unclaimed(self, job_type: JobType[Any], job: JobRecord) -> Outcome:
        """Why a delivery did not get the job, as an answer."""
        if job.type != job_type.name:
            log.error("task delivered to the wrong job type", extra={"job_id": job.id})
            return ack("wrong_type")
        if job.status in FINISHED:
            return ack("already_finished", status=job.status)
        # Another delivery of this task holds the job right now (a duplicate): let the queue
        # come back later rather than run it twice.
        return Outcome(409, {"error": "in_progress", "message": "another delivery holds this job"})


def _describe(error: Exception, job_type: JobType[Any], logger: JobLogger) -> tuple[str, bool]:
    """(message for the job's ``error`` field, retryable?)."""
    if isinstance(error, ProviderError):
        return error.message, error.retryable
    if isinstance(error, TimeoutError):
        return f"timed out after {job_type.run_timeout.total_seconds():g}s", True
    logger.exception("unexpected error while running the job")
    return f"internal error ({type(error).__name__})", True
