"""Cancelling a job: ``cancel_job``, the one function the API, the scheduler and anything else
that stops a job call.

A cancel is one conditional UPDATE, like every other transition (``app.jobs.transitions``):
the job becomes ``CANCELLED`` at once if it is still ``PENDING`` or ``PROCESSING``, in the same
transaction as the refund. A completion racing it is the same kind of UPDATE on the same row
(``status = PROCESSING`` in its WHERE clause), so exactly one of them wins and the credits
follow the winner: a completed job keeps its charge, a cancelled one is refunded.

What is already running learns about it at its next safe point: the processor's progress
callback finds the job no longer its own, reads ``CANCELLED`` and raises :class:`JobCancelled`
out of the handler, so the local providers (which report between frames and chunks) stop
without knowing about cancels. A provider doing remote work is told through
:class:`~app.providers.base.CancellableProvider`.

Billing is honest about work delivered: a single job delivers nothing once cancelled, so its
whole cost is refunded; a batch keeps the images of its completed chunks (its ``resultUrls``)
and is charged for those alone, every image not yet made (or made by a chunk that had not
finished) is refunded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from app.events import JobUpdate
from app.jobs import credits
from app.jobs.dependencies import settle_dependents
from app.jobs.enqueue import task_name
from app.jobs.provider_polling import cancel_provider_task
from app.jobs.records import JobRecord
from app.jobs.transitions import UNFINISHED, read_job, update_job
from app.jobs.types import JOB_TYPES
from app.jobs.views import signed_job_view
from app.logs import JobLogger, job_logger
from app.models import FINISHED, BatchChunk, Job, JobStatus, UsageRecord
from app.providers.base import CancellableProvider, PermanentProviderError
from app.providers.registry import REMOTE_NAMES
from app.services import Services
from daygen_queue import QueueError

log = logging.getLogger("app.jobs.cancel")

CANCELLABLE = (JobStatus.WAITING, *UNFINISHED)
"""A WAITING job (``dependsOn``) has no task yet: cancelling it is the UPDATE and the refund."""

__all__ = [
    "CancelOutcome",
    "JobAlreadyFinished",
    "JobCancelled",
    "JobNotFound",
    "cancel_job",
    "cancel_transition",
    "raise_if_cancelled",
]


class JobNotFound(Exception):
    """No such job (or not the caller's)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class JobAlreadyFinished(Exception):
    """The job reached a final state before the cancel: nothing to stop."""

    def __init__(self, job: JobRecord) -> None:
        super().__init__(f"job {job.id!r} is already {job.status}")
        self.job = job

    @property
    def status(self) -> str:
        return self.job.status


class JobCancelled(Exception):
    """Raised inside a running handler (from its progress callback) once its job was
    cancelled: the work stops there and the delivery is acknowledged."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} was cancelled")
        self.job_id = job_id


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What the cancel transaction did."""

    job: JobRecord | None
    """The job after the cancel (None: no such job for this user)."""
    before: JobRecord | None = None
    """The job as it was (what a provider needs to find its remote task)."""
    won: bool = False
    """False: the job was already finished; ``job`` shows how."""
    refunded: int = 0
    pending_tasks: list[str | None] = field(default_factory=list)
    """Tasks that had not started, to delete from the queue: None for the job's own task,
    else a chunk's task name."""


def cancel_transition(
    conn: Connection,
    job_id: str,
    user_id: str | None,
    now: datetime,
    reason: str | None = None,
) -> CancelOutcome:
    """CANCELLED with the refund of the work not delivered, if the job is unfinished (and
    ``user_id``'s, when given). The job row is locked first, as the batch transitions do, so
    a chunk completing at the same moment is settled before or after, never half."""
    job = read_job(conn, job_id, lock=True)
    if job is None or (user_id is not None and job.user_id != user_id):
        return CancelOutcome(None)
    if job.status in FINISHED:
        return CancelOutcome(job, job)
    chunks = conn.execute(
        select(BatchChunk.position, BatchChunk.status, BatchChunk.size, BatchChunk.urls)
        .where(BatchChunk.job_id == job_id)
        .order_by(BatchChunk.position)
    ).all()
    result: dict[str, list[str]] | None = None
    charged = 0
    pending: list[str | None] = []
    if chunks:
        total = sum(chunk.size for chunk in chunks)
        made = [chunk for chunk in chunks if chunk.status == JobStatus.COMPLETED]
        urls = [url for chunk in made for url in (chunk.urls or [])]
        result = {"urls": urls} if urls else None
        charged = job.cost * sum(chunk.size for chunk in made) // total if total else 0
        pending = [
            task_name(job_id, chunk.position)
            for chunk in chunks
            if chunk.status == JobStatus.PENDING
        ]
        conn.execute(
            update(BatchChunk)
            .where(BatchChunk.job_id == job_id, BatchChunk.status.in_(UNFINISHED))
            .values(status=JobStatus.CANCELLED, updated_at=now)
        )
    elif job.status == JobStatus.PENDING:
        pending = [None]
    if job.status == JobStatus.WAITING:
        pending = []  # its tasks are created only when its parents complete
    cancelled = update_job(
        conn,
        Job.id == job_id,
        Job.status.in_(CANCELLABLE),
        status=JobStatus.CANCELLED,
        result=result,
        error=reason,
        completed_at=now,
        updated_at=now,
    )
    assert cancelled is not None  # the row is locked and was unfinished
    refund = job.cost - charged
    if refund:
        credits.refund(conn, job.user_id, refund, now)
    if charged:
        conn.execute(
            insert(UsageRecord).values(
                job_id=job.id, user_id=job.user_id, type=job.type, credits=charged, created_at=now
            )
        )
    return CancelOutcome(cancelled, job, won=True, refunded=refund, pending_tasks=pending)


async def cancel_job(
    services: Services, job_id: str, *, user_id: str | None = None, reason: str | None = None
) -> JobRecord:
    """Cancel ``job_id`` (only ``user_id``'s, when given) and return it ``CANCELLED``.

    Raises :class:`JobNotFound` or :class:`JobAlreadyFinished`. After the commit: tasks not
    yet started are deleted from the queue (a delivery that still comes finds the job
    finished and is acknowledged), the provider is asked to stop remote work, and the update
    is published. ``reason`` becomes the job's ``error`` (None for a user's own cancel).
    """
    store = services.store
    outcome = await store.db.write(cancel_transition, job_id, user_id, store.clock.now(), reason)
    if outcome.job is None:
        raise JobNotFound(job_id)
    if not outcome.won:
        raise JobAlreadyFinished(outcome.job)
    job = outcome.job
    logger = job_logger("app.jobs.cancel", job_id=job.id, user_id=job.user_id, job_type=job.type)
    logger.info("job cancelled (%d credits refunded)", outcome.refunded)
    job_type = JOB_TYPES.get(job.type)
    if job_type is not None:
        for name in outcome.pending_tasks:
            try:
                queue = job_type.queue_for(job.priority)
                await services.queue.delete_task(queue, name or task_name(job.id))
            except QueueError as error:  # already dispatched or gone: the delivery acks
                logger.info("task not deleted (%s): %s", type(error).__name__, error)
            except Exception:
                logger.exception("task not deleted; its delivery will find the job cancelled")
    if outcome.before is not None and outcome.before.status == JobStatus.PROCESSING:
        await _cancel_remote(services, outcome.before, logger)
    view = await signed_job_view(job, services.storage)
    await services.events.publish(JobUpdate(job.user_id, view, job))
    await settle_dependents(services, job)  # its waiting children are cancelled, refunded
    return job


_PROVIDER_KINDS = {
    "image-generation": "image",
    "batch-generation": "image",
    "video-generation": "video",
    "image-upscale": "upscale",
}


async def _cancel_remote(services: Services, job: JobRecord, logger: JobLogger) -> None:
    """Tell the job's provider to stop, where it can (a failure is logged: the job is
    cancelled and refunded whatever the provider does)."""
    kind = _PROVIDER_KINDS.get(job.type)
    name = job.params.get("provider")
    if kind is None or not isinstance(name, str):
        return
    providers = services.providers
    if providers.remote_provider(name) is not None and job.type in REMOTE_NAMES:
        try:
            await cancel_provider_task(services, job)
        except Exception:
            logger.exception("the provider could not cancel its remote task")
        return
    try:
        provider: object = {
            "image": providers.image_provider,
            "video": providers.video_provider,
            "upscale": providers.upscale_provider,
        }[kind](name)
    except PermanentProviderError:
        return
    if not isinstance(provider, CancellableProvider):
        return
    try:
        await provider.cancel_job(job)
    except Exception:
        logger.exception("the provider could not cancel its remote task")


async def raise_if_cancelled(services: Services, job_id: str) -> None:
    """Raise :class:`JobCancelled` if the job is ``CANCELLED`` now (the safe-point check a
    running delivery makes once its writes stop matching)."""
    job = await services.store.get_job(job_id)
    if job is not None and job.status == JobStatus.CANCELLED:
        raise JobCancelled(job_id)
