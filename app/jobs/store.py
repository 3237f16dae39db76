"""Every state change of a job, each one transaction whose conditional UPDATE decides.

Delivery is at least once, possibly concurrent, so every transition states what it expects
(``status``, and the attempt that owns the job) in its WHERE clause and reports whether it won.
A loser changes nothing; that is how a duplicate neither runs twice nor charges twice.

Each operation is a synchronous function of a ``Connection`` that ``Database.write`` /
``read`` runs in one transaction (in one worker-thread call on SQLite, see ``app.db``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from app import credits
from app.db import Database
from app.jobs.types import BATCH
from app.models import FINISHED, BatchChunk, Job, JobStatus, UsageRecord, User
from daygen_queue import Clock

_KNOWN_USERS_LIMIT = 100_000
_MAX_GROUP = 500  # creations per transaction (keeps statements well under bind limits)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job row built in memory (a just-created job), shaped like a ``jobs`` row."""

    id: str
    user_id: str
    type: str
    status: str
    progress: int
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    cost: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _NewJob:
    job: JobRecord
    chunks: list[dict[str, Any]]
    future: asyncio.Future[JobRecord]


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of trying to take a job (or chunk) for one delivery attempt."""

    won: bool
    job: Row[Any] | None  # None: no such job
    job_changed: bool = False  # the job row itself moved (worth publishing)


class JobStore:
    def __init__(self, db: Database, clock: Clock, *, starting_credits: int) -> None:
        self.db = db
        self.clock = clock
        self.starting_credits = starting_credits
        # Users are never deleted, so "this user row exists" can be cached per process.
        self._known_users: set[str] = set()
        self._pending: list[_NewJob] = []
        self._flusher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ users

    async def ensure_user(self, user_id: str) -> None:
        """Create the user with the starting credits on their first authenticated request."""
        if user_id in self._known_users:
            return
        now = self.clock.now()
        values = {
            "id": user_id,
            "credits": self.starting_credits,
            "created_at": now,
            "updated_at": now,
        }
        dialect = postgresql if not self.db.is_sqlite else sqlite
        statement = (
            dialect.insert(User).values(values).on_conflict_do_nothing(index_elements=["id"])
        )

        def work(conn: Connection) -> Any:
            conn.execute(statement)

        await self.db.write(work)
        if len(self._known_users) >= _KNOWN_USERS_LIMIT:
            self._known_users.clear()
        self._known_users.add(user_id)

    async def get_user(self, user_id: str) -> Row[Any] | None:
        def work(conn: Connection) -> Any:
            return conn.execute(select(User).where(User.id == user_id)).first()

        return await self.db.read(work)

    # ------------------------------------------------------------------ creation

    async def create_job(
        self,
        *,
        user_id: str,
        job_type: str,
        params: dict[str, Any],
        cost: int,
        chunk_sizes: Sequence[int] = (),
    ) -> JobRecord:
        """Reserve the credits and save the job ``PENDING`` (with its chunks), atomically.
        Raises ``InsufficientCredits``.

        Concurrent calls are committed together (group commit): SQLite has one writer, so one
        transaction per request would cap creation at one commit's latency. A group costs one
        locked read of the balances, one conditional UPDATE and one INSERT, whatever its size,
        and each request is still accepted or refused on its own (in arrival order).
        """
        now = self.clock.now()
        job = JobRecord(
            id=str(uuid.uuid4()),
            user_id=user_id,
            type=job_type,
            status=JobStatus.PENDING,
            progress=0,
            params=params,
            result=None,
            error=None,
            attempts=0,
            cost=cost,
            created_at=now,
            updated_at=now,
            started_at=None,
            completed_at=None,
        )
        chunks = [
            {
                "job_id": job.id,
                "position": index,
                "status": JobStatus.PENDING,
                "size": size,
                "done": 0,
                "attempts": 0,
                "updated_at": now,
            }
            for index, size in enumerate(chunk_sizes)
        ]
        future: asyncio.Future[JobRecord] = asyncio.get_running_loop().create_future()
        self._pending.append(_NewJob(job, chunks, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_new_jobs())
        return await future

    async def _flush_new_jobs(self) -> None:
        """Commit waiting creations, batch after batch, until none is left."""
        while self._pending:
            batch = self._pending[:_MAX_GROUP]
            del self._pending[:_MAX_GROUP]
            try:
                accepted = await self.db.write(_save_new_jobs, batch, self.clock.now())
            except Exception as error:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            chosen = {id(item) for item in accepted}
            for item in batch:
                if item.future.done():
                    continue
                if id(item) in chosen:
                    item.future.set_result(item.job)
                else:
                    item.future.set_exception(credits.InsufficientCredits(item.job.cost))

    # ------------------------------------------------------------------ reading

    async def get_job(self, job_id: str) -> Row[Any] | None:
        def work(conn: Connection) -> Any:
            return conn.execute(select(Job).where(Job.id == job_id)).first()

        return await self.db.read(work)

    async def get_user_job(self, user_id: str, job_id: str) -> Row[Any] | None:
        def work(conn: Connection) -> Any:
            statement = select(Job).where(Job.id == job_id, Job.user_id == user_id)
            return conn.execute(statement).first()

        return await self.db.read(work)

    async def list_jobs(
        self, user_id: str, *, limit: int, after: tuple[datetime, str] | None
    ) -> list[Row[Any]]:
        """Newest first; ``after`` is the (created_at, id) of the last job already shown."""
        statement = select(Job).where(Job.user_id == user_id)
        if after is not None:
            created, job_id = after
            statement = statement.where(
                or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id))
            )
        statement = statement.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)

        def work(conn: Connection) -> Any:
            return list(conn.execute(statement).all())

        return await self.db.read(work)

    async def unfinished_jobs(self, user_id: str) -> list[Row[Any]]:
        """The user's PENDING and PROCESSING jobs, newest first (a snapshot for live clients)."""
        statement = (
            select(Job)
            .where(
                Job.user_id == user_id, Job.status.in_([JobStatus.PENDING, JobStatus.PROCESSING])
            )
            .order_by(Job.created_at.desc(), Job.id.desc())
        )

        def work(conn: Connection) -> Any:
            return list(conn.execute(statement).all())

        return await self.db.read(work)

    async def chunks(self, job_id: str) -> list[Row[Any]]:
        def work(conn: Connection) -> Any:
            statement = select(BatchChunk).where(BatchChunk.job_id == job_id)
            return list(conn.execute(statement.order_by(BatchChunk.position)).all())

        return await self.db.read(work)

    async def usage_for(self, job_id: str) -> list[Row[Any]]:
        def work(conn: Connection) -> Any:
            statement = select(UsageRecord).where(UsageRecord.job_id == job_id)
            return list(conn.execute(statement).all())

        return await self.db.read(work)

    async def stale_pending(self, older_than: timedelta) -> list[tuple[Row[Any], list[int]]]:
        """Jobs whose tasks may never have been created: PENDING jobs (and unclaimed chunks of
        unfinished batches) older than ``older_than``, with the chunk indexes to enqueue."""
        cutoff = self.clock.now() - older_than

        def work(conn: Connection) -> Any:
            jobs = (
                conn.execute(
                    select(Job)
                    .where(
                        Job.created_at < cutoff,
                        Job.status.in_([JobStatus.PENDING, JobStatus.PROCESSING]),
                    )
                    .order_by(Job.created_at)
                    .limit(1000)
                )
            ).all()
            found: list[tuple[Row[Any], list[int]]] = []
            for job in jobs:
                if job.type != BATCH:
                    if job.status == JobStatus.PENDING:
                        found.append((job, []))
                    continue
                pending = (
                    (
                        conn.execute(
                            select(BatchChunk.position).where(
                                BatchChunk.job_id == job.id, BatchChunk.status == JobStatus.PENDING
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
                if pending:
                    found.append((job, list(pending)))
            return found

        return await self.db.read(work)

    async def fail_stale(self, older_than: timedelta, error: str) -> list[Row[Any]]:
        """Fail (and refund) jobs PROCESSING with no change for ``older_than``: whatever held
        them died and no delivery is coming back. Returns the failed jobs."""
        now = self.clock.now()
        cutoff = now - older_than

        def work(conn: Connection) -> list[Row[Any]]:
            stale = (
                conn.execute(
                    select(Job.id)
                    .where(Job.status == JobStatus.PROCESSING, Job.updated_at < cutoff)
                    .limit(1000)
                )
                .scalars()
                .all()
            )
            failed = []
            for job_id in stale:
                conditions = [
                    Job.id == job_id,
                    Job.status == JobStatus.PROCESSING,
                    Job.updated_at < cutoff,
                ]
                row = _fail(conn, conditions, error, now)
                if row is not None:
                    failed.append(row)
            return failed

        return await self.db.write(work)

    # ------------------------------------------------------------------ processing

    async def claim(self, job_id: str, attempt: int, job_type: str | None = None) -> Claim:
        """Take a PENDING job (of ``job_type``, when given), or a PROCESSING one left by an
        earlier attempt."""
        now = self.clock.now()

        def work(conn: Connection) -> Any:
            row = (
                conn.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.type == job_type if job_type is not None else true(),
                        or_(
                            Job.status == JobStatus.PENDING,
                            and_(Job.status == JobStatus.PROCESSING, Job.attempts < attempt),
                        ),
                    )
                    .values(
                        status=JobStatus.PROCESSING,
                        attempts=attempt,
                        progress=0,
                        started_at=func.coalesce(Job.started_at, now),
                        updated_at=now,
                    )
                    .returning(*Job.__table__.c)
                )
            ).first()
            if row is not None:
                return Claim(True, row, job_changed=True)
            current = conn.execute(select(Job).where(Job.id == job_id)).first()
            return Claim(False, current)

        return await self.db.write(work)

    async def set_progress(self, job_id: str, attempt: int, progress: int) -> Row[Any] | None:
        """Move progress forward for the attempt that owns the job; None if it no longer does."""
        now = self.clock.now()

        def work(conn: Connection) -> Any:
            return (
                conn.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.status == JobStatus.PROCESSING,
                        Job.attempts == attempt,
                        Job.progress < progress,
                    )
                    .values(progress=progress, updated_at=now)
                    .returning(*Job.__table__.c)
                )
            ).first()

        return await self.db.write(work)

    async def complete(self, job_id: str, attempt: int, result: dict[str, Any]) -> Row[Any] | None:
        """COMPLETED with its result and one usage record, if ``attempt`` still owns the job."""
        now = self.clock.now()

        def work(conn: Connection) -> Any:
            conditions = [
                Job.id == job_id,
                Job.status == JobStatus.PROCESSING,
                Job.attempts == attempt,
            ]
            return _complete(conn, conditions, result, now)

        return await self.db.write(work)

    async def fail(self, job_id: str, error: str, *, attempt: int | None = None) -> Row[Any] | None:
        """FAILED with ``error`` and the credits refunded, once. With ``attempt``, only if that
        attempt still owns the job (a stale delivery must not fail a newer one's work)."""
        now = self.clock.now()
        conditions = [Job.id == job_id, Job.status.in_([JobStatus.PENDING, JobStatus.PROCESSING])]
        if attempt is not None:
            conditions.append(Job.attempts == attempt)

        def work(conn: Connection) -> Any:
            row = _fail(conn, conditions, error, now)
            return row

        return await self.db.write(work)

    # ------------------------------------------------------------------ batch chunks

    async def claim_chunk(self, job_id: str, index: int, attempt: int) -> Claim:
        """Take one chunk for this attempt; the job becomes PROCESSING with its first chunk."""
        now = self.clock.now()

        def work(conn: Connection) -> Any:
            job = _lock_job(conn, job_id)
            if job is None or job.status in FINISHED or job.type != BATCH:
                return Claim(False, job)
            claimed = conn.execute(
                update(BatchChunk)
                .where(
                    BatchChunk.job_id == job_id,
                    BatchChunk.position == index,
                    or_(
                        BatchChunk.status == JobStatus.PENDING,
                        and_(
                            BatchChunk.status == JobStatus.PROCESSING,
                            BatchChunk.attempts < attempt,
                        ),
                    ),
                )
                .values(status=JobStatus.PROCESSING, attempts=attempt, done=0, updated_at=now)
            )
            if claimed.rowcount != 1:
                return Claim(False, job)
            started = (
                conn.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == JobStatus.PENDING)
                    .values(
                        status=JobStatus.PROCESSING,
                        started_at=now,
                        updated_at=now,
                        attempts=func.max(Job.attempts, attempt)
                        if self.db.is_sqlite
                        else func.greatest(Job.attempts, attempt),
                    )
                    .returning(*Job.__table__.c)
                )
            ).first()
            return Claim(True, started or job, job_changed=started is not None)

        return await self.db.write(work)

    async def chunk_progress(
        self, job_id: str, index: int, attempt: int, done: int
    ) -> Row[Any] | None:
        """Record ``done`` images of a chunk and move the job's progress to images done /
        total (never backwards, below 100 until the job completes). The job row if it moved."""
        now = self.clock.now()

        def work(conn: Connection) -> Any:
            moved = conn.execute(
                update(BatchChunk)
                .where(*_held_chunk(job_id, index, attempt))
                .values(done=done, updated_at=now)
            )
            if moved.rowcount != 1:
                return None
            progress = _batch_progress(conn, job_id)
            return (
                conn.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.status == JobStatus.PROCESSING,
                        Job.progress < progress,
                    )
                    .values(progress=progress, updated_at=now)
                    .returning(*Job.__table__.c)
                )
            ).first()

        return await self.db.write(work)

    async def complete_chunk(
        self, job_id: str, index: int, attempt: int, urls: list[str]
    ) -> Row[Any] | None:
        """Store a chunk's URLs; the last chunk completes the job (result = every URL in
        prompt order, one usage record). The job row if it changed."""
        now = self.clock.now()

        def work(conn: Connection) -> Any:
            job = _lock_job(conn, job_id)
            if job is None or job.status != JobStatus.PROCESSING:
                return None
            done = conn.execute(
                update(BatchChunk)
                .where(*_held_chunk(job_id, index, attempt))
                .values(status=JobStatus.COMPLETED, urls=urls, done=len(urls), updated_at=now)
            )
            if done.rowcount != 1:
                return None
            chunks = (
                conn.execute(
                    select(BatchChunk.status, BatchChunk.urls)
                    .where(BatchChunk.job_id == job_id)
                    .order_by(BatchChunk.position)
                )
            ).all()
            if all(chunk.status == JobStatus.COMPLETED for chunk in chunks):
                every_url = [url for chunk in chunks for url in (chunk.urls or [])]
                conditions = [Job.id == job_id, Job.status == JobStatus.PROCESSING]
                return _complete(conn, conditions, {"urls": every_url}, now)
            progress = _batch_progress(conn, job_id)
            return (
                conn.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.progress < progress)
                    .values(progress=progress, updated_at=now)
                    .returning(*Job.__table__.c)
                )
            ).first()

        return await self.db.write(work)

    async def fail_chunk(
        self, job_id: str, index: int, attempt: int, error: str
    ) -> Row[Any] | None:
        """A chunk failed for good: the whole batch fails (refunded), if this attempt still
        owns the chunk. The job row if it changed."""
        now = self.clock.now()

        def work(conn: Connection) -> Any:
            owned = conn.execute(
                update(BatchChunk)
                .where(*_held_chunk(job_id, index, attempt))
                .values(status=JobStatus.FAILED, error=error, updated_at=now)
            )
            if owned.rowcount != 1:
                return None
            conditions = [
                Job.id == job_id,
                Job.status.in_([JobStatus.PENDING, JobStatus.PROCESSING]),
            ]
            return _fail(conn, conditions, error, now)

        return await self.db.write(work)


def _save_new_jobs(conn: Connection, batch: list[_NewJob], now: datetime) -> list[_NewJob]:
    """Reserve credits for a group of creations and save the ones covered; returns those."""
    demands = [(item.job.user_id, item.job.cost) for item in batch]
    taken = credits.reserve_many(conn, demands, now)
    accepted = [item for item, ok in zip(batch, taken, strict=True) if ok]
    if accepted:
        conn.execute(insert(Job), [item.job.values() for item in accepted])
    chunk_rows = [row for item in accepted for row in item.chunks]
    if chunk_rows:
        conn.execute(insert(BatchChunk), chunk_rows)
    return accepted


def _lock_job(conn: Connection, job_id: str) -> Row[Any] | None:
    """The job row, locked until commit on PostgreSQL (SQLite's writer lock serialises)."""
    statement = select(Job).where(Job.id == job_id).with_for_update()
    return conn.execute(statement).first()


def _complete(
    conn: Connection, conditions: list[Any], result: dict[str, Any], now: datetime
) -> Row[Any] | None:
    """COMPLETED with ``result`` and the job's one usage record, where ``conditions`` hold."""
    row = (
        conn.execute(
            update(Job)
            .where(*conditions)
            .values(
                status=JobStatus.COMPLETED,
                progress=100,
                result=result,
                error=None,
                completed_at=now,
                updated_at=now,
            )
            .returning(*Job.__table__.c)
        )
    ).first()
    if row is not None:
        _record_usage(conn, row, now)
    return row


def _fail(conn: Connection, conditions: list[Any], error: str, now: datetime) -> Row[Any] | None:
    row = (
        conn.execute(
            update(Job)
            .where(*conditions)
            .values(status=JobStatus.FAILED, error=error[:2000], completed_at=now, updated_at=now)
            .returning(*Job.__table__.c)
        )
    ).first()
    if row is not None:
        credits.refund(conn, row.user_id, row.cost, now)
    return row


def _batch_progress(conn: Connection, job_id: str) -> int:
    totals = (
        conn.execute(
            select(func.sum(BatchChunk.done), func.sum(BatchChunk.size)).where(
                BatchChunk.job_id == job_id
            )
        )
    ).one()
    done, total = int(totals[0] or 0), int(totals[1] or 0)
    if total == 0:
        return 0
    return min(99, (100 * done) // total)


def _record_usage(conn: Connection, job: Row[Any], now: datetime) -> None:
    conn.execute(
        insert(UsageRecord).values(
            job_id=job.id, user_id=job.user_id, type=job.type, credits=job.cost, created_at=now
        )
    )


def _held_chunk(job_id: str, index: int, attempt: int) -> tuple[Any, ...]:
    """The chunk, only while this attempt still holds it (a later attempt or a finished
    batch makes every write of an older delivery a no-op)."""
    return (
        BatchChunk.job_id == job_id,
        BatchChunk.position == index,
        BatchChunk.status == JobStatus.PROCESSING,
        BatchChunk.attempts == attempt,
    )
