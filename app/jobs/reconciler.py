"""The reconciler: no job is lost, and none stays unfinished forever.

A job is saved before its task is created; if the queue call fails (network, quota) the job
stays PENDING with no task. Every ``RECONCILE_INTERVAL_SECONDS`` the reconciler re-enqueues
PENDING jobs (and unclaimed batch chunks) older than ``RECONCILE_AFTER_SECONDS``. Task names are
job ids, so a task that does exist answers ``TaskAlreadyExists`` and nothing is duplicated.

An attempt cut short (a job or batch chunk still PROCESSING by an attempt older than the type's
dispatch deadline: its process died) is handed to a new task that takes over from it
(``app.jobs.cut_short``), within one interval; when that attempt was the type's last, the job
fails and is refunded instead. A batch keeps the chunks it finished.

As a last resort it fails (and refunds) jobs left PROCESSING with no change at all for
``STALE_PROCESSING_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from app.events import JobEvents, JobUpdate
from app.jobs import dependencies
from app.jobs.enqueue import enqueue_job, task_for
from app.jobs.store import JobStore
from app.jobs.types import JOB_TYPES
from app.jobs.views import job_view
from app.logs import job_logger
from app.settings import Settings
from daygen_queue import Clock, TaskAlreadyExists, TaskQueue

log = logging.getLogger("app.reconciler")

CUT_SHORT_ERROR = "processing stopped without a result (attempt {} of {} was cut short)"


class Reconciler:
    def __init__(
        self,
        store: JobStore,
        queue: TaskQueue,
        settings: Settings,
        clock: Clock,
        events: JobEvents,
    ) -> None:
        self.store, self.queue, self.settings, self.clock = store, queue, settings, clock
        self.events = events
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """One pass; returns how many tasks it created. Also settles jobs still WAITING on
        parents that finished (``app.jobs.dependencies``)."""
        await dependencies.sweep(self)
        created = 0
        older_than = timedelta(seconds=self.settings.reconcile_after_seconds)
        for job, chunks in await self.store.stale_pending(older_than):
            logger = job_logger("app.reconciler", job_id=job.id, user_id=job.user_id)
            try:
                made = await enqueue_job(
                    self.queue, self.settings, JOB_TYPES[job.type], job, chunks
                )
            except Exception:
                logger.exception("re-enqueue failed; will try again")
                continue
            if made:
                logger.warning("re-created %d lost task(s)", made)
            created += made
        return created

    async def retry_cut_short(self) -> int:
        """One pass over attempts cut short; returns how many it handed to a new task (or
        failed, for an attempt that was the job type's last)."""
        deadlines = {name: spec.dispatch_deadline for name, spec in JOB_TYPES.items()}
        chunked = {name for name, spec in JOB_TYPES.items() if spec.chunked}
        handled = 0
        for lost in await self.store.cut_short(deadlines, chunked):
            job, job_type = lost.job, JOB_TYPES[lost.job.type]
            where = {} if lost.chunk is None else {"chunk": lost.chunk}
            logger = job_logger("app.reconciler", job_id=job.id, user_id=job.user_id, **where)
            limit = job_type.retry_policy(self.settings.retry_policies).max_attempts
            if lost.attempt >= limit:
                message = CUT_SHORT_ERROR.format(lost.attempt, limit)
                if lost.chunk is None:
                    failed = await self.store.fail(job.id, message, attempt=lost.attempt)
                else:
                    failed = await self.store.fail_chunk(job.id, lost.chunk, lost.attempt, message)
                if failed is not None:
                    logger.warning("last attempt %d cut short: failed and refunded", lost.attempt)
                    await self.events.publish(JobUpdate(failed.user_id, job_view(failed), failed))
                    await dependencies.settle_dependents(self, failed)
                    handled += 1
                continue
            task = task_for(
                self.settings, job_type, job.id, lost.chunk, attempts_before=lost.attempt
            )
            try:
                await self.queue.create_task(job_type.queue_for(job.priority), task)
            except TaskAlreadyExists:
                continue  # handed over on an earlier pass; its delivery has not claimed yet
            except Exception:
                logger.exception("handing over an attempt cut short failed; will try again")
                continue
            logger.warning("attempt %d was cut short: handed to task %s", lost.attempt, task.name)
            handled += 1
        return handled

    async def fail_stale(self) -> int:
        """One pass over stuck PROCESSING jobs; returns how many it failed."""
        older_than = timedelta(seconds=self.settings.stale_processing_seconds)
        failed = await self.store.fail_stale(older_than, "processing stopped without a result")
        for job in failed:
            job_logger("app.reconciler", job_id=job.id, user_id=job.user_id).warning(
                "stuck in PROCESSING: failed and refunded"
            )
            await self.events.publish(JobUpdate(job.user_id, job_view(job), job))
            await dependencies.settle_dependents(self, job)
        return len(failed)

    def start(self) -> None:
        if self.settings.reconcile_interval_seconds > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        interval = timedelta(seconds=self.settings.reconcile_interval_seconds)
        while True:
            await self.clock.sleep_until(self.clock.now() + interval)
            try:
                await self.run_once()
                await self.retry_cut_short()
                await self.fail_stale()
            except Exception:
                log.exception("reconciler pass failed")
