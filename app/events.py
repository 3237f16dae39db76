"""``JobEvents``: where job state changes are published (``app.realtime.LiveUpdates``
implements it, for Socket.IO and server-sent events).

Updates carry absolute state (the job view), never deltas, so a client that missed one is
corrected by the next, and publishing is fire-and-forget: a failed publish never fails a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.jobs.records import JobRecord
from app.jobs.views import JobView

JOB_UPDATE_EVENT = "jobUpdate"
"""The name of a job update on Socket.IO and in a server-sent event stream."""


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """A job's state after a change. ``payload`` is exactly what ``GET /api/jobs/{id}``
    returns and what a ``jobUpdate`` event carries; ``user_id`` is for routing only (room
    ``user:{id}``), never sent."""

    user_id: str
    payload: JobView
    job: JobRecord | None = field(default=None, compare=False, repr=False)
    """The record the view was made from, for observers in this process (``app.metrics``
    reads the provider and timestamps from it); never sent. Publishers that have it pass it."""

    @property
    def job_id(self) -> str:
        return self.payload["jobId"]

    @property
    def status(self) -> str:
        return self.payload["status"]


@runtime_checkable
class JobEvents(Protocol):
    async def publish(self, update: JobUpdate) -> None:
        """Deliver ``update`` to the job owner's live clients. Never raises (delivery
        problems are logged): the job's state is already committed, so callers publish
        without guarding."""
        ...


class RecordingJobEvents:
    """Keeps every update in order; useful in tests and for debugging."""

    def __init__(self) -> None:
        self.updates: list[JobUpdate] = []

    async def publish(self, update: JobUpdate) -> None:
        self.updates.append(update)

    def for_job(self, job_id: str) -> list[JobUpdate]:
        return [update for update in self.updates if update.job_id == job_id]

    def statuses(self, job_id: str) -> list[str]:
        return [update.status for update in self.for_job(job_id)]
