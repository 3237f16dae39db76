"""Remote provider work on the queue: a delivery submits, delayed poll tasks wait, the poll that
sees the provider done downloads, stores and completes the job.

No request is held open while a provider renders (seconds for FLUX, minutes for Runway):

1. The job's delivery (``Processor``) calls :meth:`RemoteJobs.start`: it submits the provider
   task, keeps it in ``provider_tasks`` (id, polling URL, attempt) in a transaction that checks
   the attempt still owns the job, creates the first poll task, and raises
   :class:`AwaitingProvider`, which the processor answers 2xx.
2. A poll task (``POST /internal/providers/poll/{type}``, body ``{jobId, attempt, poll}``,
   named ``{jobId}-a{attempt}-p{poll}`` so a duplicated delivery cannot fork the chain) is
   :meth:`RemoteJobs.poll`: still running -> progress, and the next poll task after the
   adapter's interval (which grows with the wait); done -> download, store, COMPLETED; a final
   failure -> FAILED and refunded; a transient failure (429, 5xx, an expired result link) ->
   503 (with ``Retry-After`` for a 429) so the queue retries that poll with backoff.
3. A provider task that died in a way a new one may fix (Runway ``INTERNAL.*``, Replicate
   ``aborted``) moves the job to its next attempt (up to the type's ``max_attempts``) and
   schedules poll 0 of that attempt, which submits again: one provider submission per attempt.

The stored id decides: a redelivered job (the instance that submitted died before answering)
adopts the stored task instead of submitting a second one, and an instance that died while a
task was running changes nothing, since the next poll task is already on the queue. Webhooks
(``app.jobs.provider_webhooks``) only make a poll happen now: polling is the source of truth.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from app.events import JobUpdate
from app.jobs.dependencies import settle_dependents
from app.jobs.enqueue import task_for
from app.jobs.outcome import Outcome, ack
from app.jobs.provider_requests import provider_request
from app.jobs.provider_tasks import ProviderTaskRecord, ProviderTasks
from app.jobs.records import JobRecord
from app.jobs.retry_policy import failure_kind
from app.jobs.types import JOB_TYPES, JobType
from app.jobs.views import signed_job_view
from app.logs import job_logger
from app.models import FINISHED, JobStatus
from app.providers.base import (
    ErrorCode,
    ProviderError,
    RemoteTaskProvider,
    TaskReady,
    TaskRunning,
)
from app.providers.http import elapsed_seconds
from app.providers.registry import REMOTE_NAMES
from app.services import Services
from app.storage import extension_for
from daygen_queue import HttpRequest, NewTask, TaskAlreadyExists

__all__ = [
    "POLL_PATH",
    "AwaitingProvider",
    "RemoteJobs",
    "cancel_provider_task",
]

log = logging.getLogger("app.jobs.provider_polling")

POLL_PATH = "/internal/providers/poll/{type}"
SUBMITTED_PROGRESS = 5
_TRANSIENT = (ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE, ErrorCode.RESULT_EXPIRED)
_RESULT_NAMES = {"image-generation": "image", "video-generation": "video"}

Report = Callable[[int], Awaitable[None]]


class AwaitingProvider(Exception):
    """The provider task is stored and its poll scheduled: the delivery is done (2xx)."""

    def __init__(self, task_id: str, *, adopted: bool = False) -> None:
        super().__init__(task_id)
        self.task_id = task_id
        self.adopted = adopted


class RemoteJobs:
    """Remote jobs' submit and poll steps, for one app's services."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.tasks = ProviderTasks(services.store.db)

    # ------------------------------------------------------------------ the job's delivery

    def adapter_for(self, job_type: str, params: dict[str, Any]) -> RemoteTaskProvider[Any] | None:
        """The remote adapter serving this job, or ``None`` when it runs locally."""
        if job_type not in REMOTE_NAMES:
            return None
        return self.services.providers.remote_provider(str(params.get("provider")))

    async def start(self, job_type: JobType[Any], job: JobRecord, attempt: int) -> dict[str, Any]:
        """Submit ``job``'s provider task for ``attempt`` (or adopt the one already stored),
        then raise :class:`AwaitingProvider`. Returns a result only when the provider finished
        within the submit (Replicate's ``Prefer: wait``). Provider errors propagate: the
        processor retries or fails the job as for any handler."""
        adapter = self.adapter_for(job_type.name, job.params)
        assert adapter is not None
        now = self.services.clock.now()
        stored = await self.tasks.adopt(job.id, attempt, now)
        if stored is not None:
            log.info(
                "job %s attempt %d adopts provider task %s (not submitted again)",
                job.id,
                attempt,
                stored.task_id,
            )
            await self._schedule(job_type, job, attempt, stored.polls + 1, 0.0)
            raise AwaitingProvider(stored.task_id, adopted=True)
        request = await provider_request(self.services, job_type, job)
        submitted = await adapter.submit(request)
        waiting = not isinstance(submitted.state, TaskReady)
        saved = await self.tasks.save(
            job.id,
            attempt,
            submitted.task,
            self.services.clock.now(),
            progress=SUBMITTED_PROGRESS if waiting else None,
        )
        if saved is None:
            log.warning("job %s moved on while submitting; cancelling the orphan task", job.id)
            await _cancel_quietly(adapter, submitted)
            raise AwaitingProvider(submitted.task.task_id)
        log.info("job %s attempt %d submitted %s", job.id, attempt, submitted.task.task_id)
        if isinstance(submitted.state, TaskReady):
            return await self._store_result(job_type, job, adapter, submitted.state)
        await self._schedule(job_type, job, attempt, 1, submitted.state.poll_after)
        await self._publish(await self.services.store.get_job(job.id))
        raise AwaitingProvider(submitted.task.task_id)

    # ------------------------------------------------------------------ poll deliveries

    async def poll(
        self, job_type: JobType[Any], job_id: str, attempt: int, number: int, *, hook: bool
    ) -> Outcome:
        """One poll delivery (``hook``: one a webhook asked for, which never schedules)."""
        store = self.services.store
        job = await store.get_job(job_id)
        if job is None or job.type != job_type.name:
            return ack("unknown_job")
        if job.status in FINISHED:
            return ack("already_finished", status=job.status)
        if job.status != JobStatus.PROCESSING or job.attempts != attempt:
            return ack("superseded")
        adapter = self.adapter_for(job_type.name, job.params)
        logger = job_logger(
            "app.provider_polling", job_id=job.id, user_id=job.user_id, attempt=attempt
        )
        if adapter is None:
            message = f"provider {job.params.get('provider')!r} is no longer configured"
            await self._fail(job, attempt, message)
            return ack("failed", error=message)
        stored = await self.tasks.get(job_id)
        if stored is None or stored.attempt != attempt:
            if number == 0 and stored is None and not hook:
                return await self._resubmit(job_type, job, attempt)
            return ack("superseded")
        if number == 0 and not hook:  # a duplicated "submit again": the task is stored
            await self._schedule(job_type, job, attempt, stored.polls + 1, 0.0)
            return ack("polling")
        if not hook and await self.tasks.polled(job_id, attempt, self.services.clock.now()) is None:
            return ack("superseded")
        try:
            state = await adapter.poll(stored.task)
            if isinstance(state, TaskReady):
                result = await self._store_result(job_type, job, adapter, state)
                finished = await store.complete(job.id, attempt, result)
                await self._publish(finished)
                logger.info("job completed after %d polls", stored.polls + (0 if hook else 1))
                return ack("completed" if finished is not None else "superseded")
        except ProviderError as error:
            return await self._poll_failed(job_type, job, attempt, stored, error, hook=hook)
        assert isinstance(state, TaskRunning)
        if state.progress is not None:
            await self._progress(job, attempt, SUBMITTED_PROGRESS + int(state.progress * 85))
        if hook:
            return ack("running", status=state.status)
        if self._elapsed(stored) > adapter.deadline_seconds:
            message = f"the {adapter.name} task did not finish in time"
            await self._fail(job, attempt, message)
            return ack("failed", error=message)
        await self._schedule(job_type, job, attempt, number + 1, state.poll_after)
        return ack("running", status=state.status)

    async def _poll_failed(
        self,
        job_type: JobType[Any],
        job: JobRecord,
        attempt: int,
        stored: ProviderTaskRecord,
        error: ProviderError,
        *,
        hook: bool,
    ) -> Outcome:
        if error.retryable and error.code in _TRANSIENT:
            if hook:
                return ack("transient", error=error.message)
            adapter = self.adapter_for(job_type.name, job.params)
            if adapter is not None and self._elapsed(stored) > adapter.deadline_seconds:
                await self._fail(job, attempt, error.message)
                return ack("failed", error=error.message)
            headers = retry_after_headers(error)
            body = {"error": "retryable", "message": error.message}
            return Outcome(503, body, headers)
        policy = job_type.retry_policy(self.services.settings.retry_policies)
        if error.retryable and policy.retries(failure_kind(error), attempt):
            moved = await self.tasks.next_attempt(job.id, attempt, self.services.clock.now())
            if moved is None:
                return ack("superseded")
            log.warning(
                "job %s: provider task %s failed (%s); attempt %d submits a new one",
                job.id,
                stored.task_id,
                error.code,
                attempt + 1,
            )
            await self._schedule(job_type, job, attempt + 1, 0, 1.0)
            return ack("retrying", attempt=attempt + 1)
        await self._fail(job, attempt, error.message)
        return ack("failed", error=error.message)

    async def _resubmit(self, job_type: JobType[Any], job: JobRecord, attempt: int) -> Outcome:
        """Poll 0: submit the attempt's task (after an earlier attempt's task died)."""
        try:
            result = await self.start(job_type, job, attempt)
        except AwaitingProvider as waiting:
            return ack("submitted", providerTask=waiting.task_id)
        except ProviderError as error:
            if error.retryable:
                body = {"error": "retryable", "message": error.message}
                return Outcome(503, body, retry_after_headers(error))
            await self._fail(job, attempt, error.message)
            return ack("failed", error=error.message)
        finished = await self.services.store.complete(job.id, attempt, result)
        await self._publish(finished)
        return ack("completed")

    # ------------------------------------------------------------------ helpers

    async def _schedule(
        self, job_type: JobType[Any], job: JobRecord, attempt: int, number: int, delay: float
    ) -> None:
        """Create poll ``number`` of ``attempt``, ``delay`` seconds from now, on the queue of
        the job's priority (a task of that name already existing means a duplicate delivery
        got here first)."""
        with contextlib.suppress(TaskAlreadyExists):
            await self.services.queue.create_task(
                job_type.queue_for(job.priority),
                self.poll_task(job_type, job.id, attempt, number, delay),
            )

    def poll_task(
        self,
        job_type: JobType[Any],
        job_id: str,
        attempt: int,
        number: int,
        delay: float,
        *,
        name: str | None = None,
        hook: bool = False,
        chunk: int | None = None,
    ) -> NewTask:
        """The poll task: authenticated as the job's own task, on the job's queue."""
        settings = self.services.settings
        base = task_for(settings, job_type, job_id)
        body: dict[str, Any] = {"jobId": job_id, "attempt": attempt, "poll": number}
        if hook:
            body["hook"] = True
        if chunk is not None:
            body["chunk"] = chunk
        return NewTask(
            name=name or f"{job_id}-a{attempt}-p{number}",
            http_request=HttpRequest(
                url=settings.base_url + POLL_PATH.format(type=job_type.name),
                headers=base.http_request.headers,
                body=json.dumps(body).encode(),
                oidc_token=base.http_request.oidc_token,
            ),
            schedule_time=self.services.clock.now() + timedelta(seconds=max(0.0, delay)),
            dispatch_deadline=timedelta(minutes=5),
        )

    async def _store_result(
        self,
        job_type: JobType[Any],
        job: JobRecord,
        adapter: RemoteTaskProvider[Any],
        ready: TaskReady,
    ) -> dict[str, Any]:
        """Download the result at once (providers' links expire) and keep it in storage."""
        output = await adapter.download(ready)
        name = _RESULT_NAMES.get(job_type.name, "upscaled")
        mime = output.content_type or "application/octet-stream"
        key = f"jobs/{job.id}/{name}{extension_for(mime)}"
        url = await self.services.storage.save(key, output.data, mime)
        result: dict[str, Any] = {"url": url}
        if job_type.name == "video-generation":
            result["mimeType"] = mime
        return result

    async def _progress(self, job: JobRecord, attempt: int, value: int) -> None:
        moved = await self.services.store.set_progress(job.id, attempt, min(95, value))
        await self._publish(moved)

    async def _fail(self, job: JobRecord, attempt: int, message: str) -> None:
        await self._publish(await self.services.store.fail(job.id, message, attempt=attempt))

    async def _publish(self, job: JobRecord | None) -> None:
        if job is not None:
            view = await signed_job_view(job, self.services.storage)
            await self.services.events.publish(JobUpdate(job.user_id, view, job))
            await settle_dependents(self.services, job)  # a finished job's waiting children

    def _elapsed(self, stored: ProviderTaskRecord) -> float:
        return elapsed_seconds(stored.submitted_at, self.services.clock.now())


async def cancel_provider_task(services: Services, job: JobRecord) -> bool:
    """Ask the provider to stop the job's stored task (the cancel hook of remote jobs): Runway
    ``DELETE /v1/tasks/{id}``, Replicate ``POST .../cancel``; BFL has no cancel (``False``).
    Pending poll tasks need nothing: they find the job finished and stop."""
    remote = RemoteJobs(services)
    adapter = remote.adapter_for(job.type, job.params)
    stored = await remote.tasks.get(job.id)
    if adapter is None or stored is None:
        return False
    cancelled = await adapter.cancel(stored.task)
    log.info(
        "job %s: provider task %s %s",
        job.id,
        stored.task_id,
        "cancelled" if cancelled else "cannot be cancelled (it runs to its end)",
    )
    return cancelled


def job_type_named(name: str) -> JobType[Any] | None:
    return JOB_TYPES.get(name)


def retry_after_headers(error: ProviderError) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) for an error that carries a wait."""
    if error.retry_after is None:
        return {}
    return {"Retry-After": str(max(1, int(error.retry_after + 0.999)))}


async def _cancel_quietly(adapter: RemoteTaskProvider[Any], submitted: Any) -> None:
    try:
        await adapter.cancel(submitted.task)
    except ProviderError as error:
        log.warning("cancelling orphan task %s failed: %s", submitted.task.task_id, error)
