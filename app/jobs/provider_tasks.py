"""``provider_tasks``: the remote task a job attempt submitted, kept before the delivery answers.

One row per job (``position`` 0), or per image of a batch (``position`` = the prompt's index).
The row is what makes remote work safe under at-least-once delivery:

* it is written in the same transaction that checks the attempt still owns the job, right after
  the provider accepted the task and before the queue hears anything;
* a later delivery of the job (the queue retrying after an instance died) finds it and adopts
  the task instead of submitting a second one (the stored id decides);
* a poll task names the attempt it polls for; a row that moved on (a newer attempt adopted it,
  or replaced it) makes an older poll chain stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Index, Integer, String, Text, delete, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Database
from app.jobs.records import JobRecord, record
from app.jobs.transitions import read_job
from app.models import Base, BatchChunk, Job, JobStatus
from app.providers.base import ProviderTask

__all__ = ["BatchProviderTasks", "ProviderTaskRecord", "ProviderTaskRow", "ProviderTasks"]

WHOLE_JOB = 0


class ProviderTaskRow(Base):
    __tablename__ = "provider_tasks"
    __table_args__ = (Index("ix_provider_tasks_provider_task", "provider", "task_id"),)

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str] = mapped_column(String(200))
    poll_url: Mapped[str | None] = mapped_column(Text)
    cancel_url: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    polls: Mapped[int] = mapped_column(Integer, default=0)
    result_url: Mapped[str | None] = mapped_column(Text)
    """A batch image's stored result, once downloaded (its chunk completes with all of them)."""
    updated_at: Mapped[datetime]


@dataclass(frozen=True, slots=True)
class ProviderTaskRecord:
    job_id: str
    position: int
    attempt: int
    provider: str
    task_id: str
    poll_url: str | None
    cancel_url: str | None
    submitted_at: datetime
    polls: int
    result_url: str | None
    updated_at: datetime

    @property
    def task(self) -> ProviderTask:
        return ProviderTask(
            self.provider, self.task_id, self.poll_url, self.submitted_at, self.cancel_url
        )


_COLUMNS = tuple(ProviderTaskRow.__table__.c)


def _owned(conn: Connection, job_id: str, attempt: int) -> JobRecord | None:
    """The job, locked, if ``attempt`` holds it (PROCESSING with that attempt)."""
    job = read_job(conn, job_id, lock=True)
    if job is None or job.status != JobStatus.PROCESSING or job.attempts != attempt:
        return None
    return job


class ProviderTasks:
    """Reads and conditional writes of ``provider_tasks``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, job_id: str, position: int = WHOLE_JOB) -> ProviderTaskRecord | None:
        def work(conn: Connection) -> ProviderTaskRecord | None:
            return _get(conn, job_id, position)

        return await self.db.read(work)

    async def find(self, provider: str, task_id: str) -> ProviderTaskRecord | None:
        """The row of a provider's task id (a webhook names only that)."""

        def work(conn: Connection) -> ProviderTaskRecord | None:
            row = conn.execute(
                select(*_COLUMNS).where(
                    ProviderTaskRow.provider == provider, ProviderTaskRow.task_id == task_id
                )
            ).first()
            return None if row is None else record(ProviderTaskRecord, row)

        return await self.db.read(work)

    async def save(
        self,
        job_id: str,
        attempt: int,
        task: ProviderTask,
        now: datetime,
        *,
        progress: int | None = None,
    ) -> ProviderTaskRecord | None:
        """Keep ``task`` as the job's provider task for ``attempt`` (replacing an older one),
        and move the job's progress to ``progress``, if that attempt still owns the job;
        ``None`` when it does not (a newer attempt or a cancel got there first: the caller
        cancels the orphan)."""

        def work(conn: Connection) -> ProviderTaskRecord | None:
            if _owned(conn, job_id, attempt) is None:
                return None
            conn.execute(
                delete(ProviderTaskRow).where(
                    ProviderTaskRow.job_id == job_id, ProviderTaskRow.position == WHOLE_JOB
                )
            )
            values = {
                "job_id": job_id,
                "position": WHOLE_JOB,
                "attempt": attempt,
                "provider": task.provider,
                "task_id": task.task_id,
                "poll_url": task.poll_url,
                "cancel_url": task.cancel_url,
                "submitted_at": task.submitted_at,
                "polls": 0,
                "updated_at": now,
            }
            conn.execute(insert(ProviderTaskRow).values(**values))
            if progress is not None:
                conn.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.progress < progress)
                    .values(progress=progress, updated_at=now)
                )
            return _get(conn, job_id, WHOLE_JOB)

        return await self.db.write(work)

    async def adopt(self, job_id: str, attempt: int, now: datetime) -> ProviderTaskRecord | None:
        """Hand the job's stored task to ``attempt`` (a redelivery after the instance that
        submitted it died), if that attempt owns the job: the stored id decides, nothing is
        submitted again. ``None`` when there is no task to adopt (read without a write: the
        usual case, a first delivery)."""
        if await self.get(job_id) is None:
            return None

        def work(conn: Connection) -> ProviderTaskRecord | None:
            if _owned(conn, job_id, attempt) is None:
                return None
            conn.execute(
                update(ProviderTaskRow)
                .where(
                    ProviderTaskRow.job_id == job_id,
                    ProviderTaskRow.position == WHOLE_JOB,
                    ProviderTaskRow.attempt < attempt,
                )
                .values(attempt=attempt, updated_at=now)
            )
            return _get(conn, job_id, WHOLE_JOB)

        return await self.db.write(work)

    async def polled(self, job_id: str, attempt: int, now: datetime) -> int | None:
        """Count one poll for ``attempt``'s task; the new count, or ``None`` when the row no
        longer belongs to that attempt (the poll chain should stop)."""

        def work(conn: Connection) -> int | None:
            where = (
                ProviderTaskRow.job_id == job_id,
                ProviderTaskRow.position == WHOLE_JOB,
                ProviderTaskRow.attempt == attempt,
            )
            conn.execute(
                update(ProviderTaskRow)
                .where(*where)
                .values(polls=ProviderTaskRow.polls + 1, updated_at=now)
            )
            return conn.execute(select(ProviderTaskRow.polls).where(*where)).scalar()

        return await self.db.write(work)

    async def next_attempt(self, job_id: str, attempt: int, now: datetime) -> JobRecord | None:
        """Move the job from ``attempt`` to ``attempt + 1`` after its provider task failed in
        a way a new task may fix, forgetting the dead task (the next attempt submits its own);
        the job, or ``None`` when ``attempt`` no longer owned it."""

        def work(conn: Connection) -> JobRecord | None:
            if _owned(conn, job_id, attempt) is None:
                return None
            conn.execute(
                update(Job)
                .where(Job.id == job_id, Job.attempts == attempt)
                .values(attempts=attempt + 1, progress=0, updated_at=now)
            )
            conn.execute(
                delete(ProviderTaskRow).where(
                    ProviderTaskRow.job_id == job_id, ProviderTaskRow.position == WHOLE_JOB
                )
            )
            return read_job(conn, job_id)

        return await self.db.write(work)


def _chunk_owned(conn: Connection, job_id: str, chunk: int, attempt: int) -> bool:
    """Whether ``attempt`` holds chunk ``chunk`` of an unfinished job (the job row locked)."""
    job = read_job(conn, job_id, lock=True)
    if job is None or job.status != JobStatus.PROCESSING:
        return False
    held = conn.execute(
        select(BatchChunk.position).where(
            BatchChunk.job_id == job_id,
            BatchChunk.position == chunk,
            BatchChunk.status == JobStatus.PROCESSING,
            BatchChunk.attempts == attempt,
        )
    ).first()
    return held is not None


class BatchProviderTasks:
    """``provider_tasks`` rows of a batch: one per image (``position`` = the prompt's index),
    their ``attempt`` the attempt of the chunk that holds them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def of(self, job_id: str, positions: list[int]) -> dict[int, ProviderTaskRecord]:
        def work(conn: Connection) -> dict[int, ProviderTaskRecord]:
            rows = conn.execute(
                select(*_COLUMNS).where(
                    ProviderTaskRow.job_id == job_id, ProviderTaskRow.position.in_(positions)
                )
            )
            return {row.position: record(ProviderTaskRecord, row) for row in rows}

        return await self.db.read(work)

    async def adopt(
        self, job_id: str, chunk: int, positions: list[int], attempt: int, now: datetime
    ) -> bool:
        """Hand the chunk's stored tasks to ``attempt``; False when it does not hold the
        chunk."""

        def work(conn: Connection) -> bool:
            if not _chunk_owned(conn, job_id, chunk, attempt):
                return False
            conn.execute(
                update(ProviderTaskRow)
                .where(
                    ProviderTaskRow.job_id == job_id,
                    ProviderTaskRow.position.in_(positions),
                    ProviderTaskRow.attempt < attempt,
                )
                .values(attempt=attempt, updated_at=now)
            )
            return True

        return await self.db.write(work)

    async def save(
        self,
        job_id: str,
        chunk: int,
        position: int,
        attempt: int,
        task: ProviderTask,
        now: datetime,
    ) -> bool:
        """Keep one image's task, if ``attempt`` still holds its chunk."""

        def work(conn: Connection) -> bool:
            if not _chunk_owned(conn, job_id, chunk, attempt):
                return False
            conn.execute(
                delete(ProviderTaskRow).where(
                    ProviderTaskRow.job_id == job_id, ProviderTaskRow.position == position
                )
            )
            conn.execute(
                insert(ProviderTaskRow).values(
                    job_id=job_id,
                    position=position,
                    attempt=attempt,
                    provider=task.provider,
                    task_id=task.task_id,
                    poll_url=task.poll_url,
                    cancel_url=task.cancel_url,
                    submitted_at=task.submitted_at,
                    polls=0,
                    updated_at=now,
                )
            )
            return True

        return await self.db.write(work)

    async def done(self, job_id: str, position: int, url: str, now: datetime) -> None:
        """One image of the batch is stored."""

        def work(conn: Connection) -> None:
            conn.execute(
                update(ProviderTaskRow)
                .where(ProviderTaskRow.job_id == job_id, ProviderTaskRow.position == position)
                .values(result_url=url, updated_at=now)
            )

        await self.db.write(work)


def _get(conn: Connection, job_id: str, position: int) -> ProviderTaskRecord | None:
    row = conn.execute(
        select(*_COLUMNS).where(
            ProviderTaskRow.job_id == job_id, ProviderTaskRow.position == position
        )
    ).first()
    return None if row is None else record(ProviderTaskRecord, row)
