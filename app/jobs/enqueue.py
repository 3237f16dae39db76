"""Turning a saved job into Cloud Tasks tasks: one per job, or one per chunk of a batch.

Task names are the job id (``{jobId}-chunk-{i}`` for chunks), so creating a task twice is
refused by the queue (``TaskAlreadyExists``) and re-enqueueing is always safe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.jobs.priorities import DEFAULT_PRIORITY
from app.jobs.records import JobRecord
from app.jobs.types import JobType
from app.settings import Settings
from daygen_queue import (
    HttpRequest,
    NewTask,
    OidcToken,
    QueueError,
    TaskAlreadyExists,
    TaskQueue,
)

log = logging.getLogger("app.enqueue")


def task_name(job_id: str, chunk: int | None = None, attempts_before: int = 0) -> str:
    """``{jobId}`` / ``{jobId}-chunk-{i}``; ``-retry-{n}`` after them for the task that takes
    over from attempt ``n`` when it was cut short (one per attempt: creating it twice is
    refused like any named task)."""
    name = job_id if chunk is None else f"{job_id}-chunk-{chunk}"
    return name if attempts_before == 0 else f"{name}-retry-{attempts_before}"


def internal_request(settings: Settings, path: str, body: bytes) -> HttpRequest:
    """A JSON POST to one of the app's internal endpoints, authenticated as the queue's own:
    the OIDC token of ``TASK_SERVICE_ACCOUNT_EMAIL`` when set, else the internal key header.
    Cloud Tasks adds no Content-Type, so the request carries its own."""
    headers = {"Content-Type": "application/json"}
    oidc = None
    if settings.task_service_account_email:
        oidc = OidcToken(
            service_account_email=settings.task_service_account_email,
            audience=settings.oidc_audience or "",
        )
    elif settings.internal_api_key is not None:
        headers["X-Internal-Api-Key"] = settings.internal_api_key.get_secret_value()
    return HttpRequest(
        url=f"{settings.base_url}{path}", headers=headers, body=body, oidc_token=oidc
    )


def task_for(
    settings: Settings,
    job_type: JobType[Any],
    job_id: str,
    chunk: int | None = None,
    *,
    schedule_time: datetime | None = None,
    attempts_before: int = 0,
) -> NewTask:
    """The task that delivers ``job_id`` (or one of its chunks) to the processor;
    ``attempts_before`` when earlier tasks already made that many attempts.

    Authenticated as ``internal_request`` says. The task carries the type's retry policy as
    its own ``retry_config`` and, for a job with ``runAt``, its ``schedule_time``.
    """
    body: dict[str, object] = {"jobId": job_id}
    if chunk is not None:
        body["chunk"] = chunk
    if attempts_before:
        body["attemptsBefore"] = attempts_before
    return NewTask(
        name=task_name(job_id, chunk, attempts_before),
        http_request=internal_request(
            settings, f"/internal/tasks/{job_type.name}", json.dumps(body).encode()
        ),
        schedule_time=schedule_time,
        dispatch_deadline=job_type.dispatch_deadline,
        retry_config=job_type.retry_policy(settings.retry_policies).retry_config(),
    )


async def enqueue(
    queue: TaskQueue,
    settings: Settings,
    job_type: JobType[Any],
    job_id: str,
    chunks: Sequence[int] = (),
    *,
    priority: str = DEFAULT_PRIORITY,
    schedule_time: datetime | None = None,
) -> int:
    """Create the job's task(s); a task that already exists counts as done. Returns how many
    were newly created. Other queue errors propagate (the reconciler tries again later).
    ``priority`` picks the type's queue; ``schedule_time`` delays the first delivery.

    A batch's chunk tasks go in BatchCreateTasks calls (``create_tasks``: 100 per call
    rather than one CreateTask each); a single job's task in one CreateTask."""
    name = job_type.queue_for(priority)
    if not chunks:
        task = task_for(settings, job_type, job_id, schedule_time=schedule_time)
        try:
            await queue.create_task(name, task)
        except TaskAlreadyExists:
            return 0
        return 1
    tasks = [
        task_for(settings, job_type, job_id, chunk, schedule_time=schedule_time) for chunk in chunks
    ]
    results = await queue.create_tasks(name, tasks)
    errors = [
        result
        for result in results
        if isinstance(result, QueueError) and not isinstance(result, TaskAlreadyExists)
    ]
    if errors:
        raise errors[0]
    return sum(1 for result in results if not isinstance(result, QueueError))


async def enqueue_job(
    queue: TaskQueue,
    settings: Settings,
    job_type: JobType[Any],
    job: JobRecord,
    chunks: Sequence[int] = (),
) -> int:
    """``enqueue`` for a saved job: on its priority's queue, at its ``runAt``."""
    return await enqueue(
        queue,
        settings,
        job_type,
        job.id,
        chunks,
        priority=job.priority,
        schedule_time=job.run_at,
    )
