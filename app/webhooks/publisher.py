"""``WebhookPublisher``: the app's ``JobEvents`` with webhooks on top.

Every job update still goes to the live updates first; then, if the job asked for a webhook
on that kind of change (``webhookUrl`` / ``webhookEvents`` in its request), a delivery task
is created on ``webhook-delivery-queue`` (``app.webhooks.delivery``). Updates carry the job's
view only, so the job's webhook settings come from the record an update carries or are read
once per job and process, then cached.

The kinds: ``job.processing`` (a delivery took the job: progress 0), ``job.progress``
(progress moved), ``job.completed``, ``job.failed``, ``job.cancelled``. The message id, and so
the task name, is derived from the job and the change (``msg_<jobId>_completed``,
``msg_<jobId>_progress_40``), so the same change published twice is delivered once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from app.events import JobEvents, JobUpdate
from app.jobs.records import JobRecord
from app.jobs.store import JobStore
from app.jobs.views import JobView, iso
from app.models import JobStatus
from app.settings import Settings
from app.webhooks.delivery import QUEUE, DeliveryTask, delivery_task, payload
from app.webhooks.fields import DEFAULT_EVENTS
from daygen_queue import Clock, TaskAlreadyExists, TaskQueue

log = logging.getLogger("app.webhooks")

_CACHE_LIMIT = 10_000
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")

__all__ = ["WebhookPublisher", "event_of", "message_id"]


@dataclass(frozen=True, slots=True)
class _Hook:
    url: str
    events: frozenset[str]


def event_of(view: JobView) -> str | None:
    """The webhook event a job update is (None: none, e.g. a job just created)."""
    status = view["status"]
    if status == JobStatus.PROCESSING:
        return "job.progress" if view["progress"] > 0 else "job.processing"
    return {
        JobStatus.COMPLETED: "job.completed",
        JobStatus.FAILED: "job.failed",
        JobStatus.CANCELLED: "job.cancelled",
    }.get(JobStatus(status))


def message_id(view: JobView, event: str) -> str:
    """Stable for one change of one job: the ``webhook-id`` and the task name."""
    kind = event.removeprefix("job.")
    if event == "job.progress":
        kind += f"_{view['progress']}"
    elif event == "job.processing":  # once per attempt: the claim's time tells them apart
        kind += "_" + _NOT_NAME.sub("", view["updatedAt"])
    return f"msg_{_NOT_NAME.sub('_', view['jobId'])}_{kind}"


class WebhookPublisher:
    """``JobEvents`` that also enqueues the webhooks each update calls for."""

    def __init__(
        self,
        inner: JobEvents,
        *,
        store: JobStore,
        queue: TaskQueue,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.inner, self.store, self.queue = inner, store, queue
        self.settings, self.clock = settings, clock
        self._hooks: dict[str, _Hook | None] = {}

    async def publish(self, update: JobUpdate) -> None:
        await self.inner.publish(update)
        event = event_of(update.payload)
        if event is None:
            return
        try:
            hook = await self._hook(update.job_id, update.job)
            if hook is None or event not in hook.events:
                return
            task = DeliveryTask(
                user_id=update.user_id,
                url=hook.url,
                webhook_id=message_id(update.payload, event),
                body=payload(event, iso(self.clock.now()), update.payload),
            )
            await self.queue.create_task(QUEUE, delivery_task(self.settings, task))
        except TaskAlreadyExists:
            pass  # this change's delivery is already queued
        except Exception:
            log.exception("webhook not enqueued", extra={"job_id": update.job_id})

    async def _hook(self, job_id: str, known: JobRecord | None) -> _Hook | None:
        """The job's webhook settings: from the record the update carries, else read once."""
        if job_id in self._hooks:
            return self._hooks[job_id]
        job = known if known is not None else await self.store.get_job(job_id)
        url = None if job is None else job.params.get("webhook_url")
        hook = None
        if job is not None and isinstance(url, str):
            events = job.params.get("webhook_events") or DEFAULT_EVENTS
            hook = _Hook(url, frozenset(events))
        if len(self._hooks) >= _CACHE_LIMIT:
            self._hooks.clear()
        self._hooks[job_id] = hook
        return hook
