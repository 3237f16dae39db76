"""``JobStore``: users, job creation, reads, and every state change of a job, as typed records.

The store is the async face of the database: each method runs one transaction through
``Database.write`` / ``read``. What a transition means lives in ``app.jobs.transitions``
(whole jobs) and ``app.jobs.batches`` (jobs made of chunks); creations are committed in groups
(``app.jobs.group_commit``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from app.db import Database
from app.jobs import batches, credits, cut_short, dependencies, transitions
from app.jobs.group_commit import GroupCommit
from app.jobs.records import ChunkRecord, Claim, JobRecord, R, UsageEntry, UserRecord, record
from app.jobs.transitions import JOB_COLUMNS, UNFINISHED
from app.models import BatchChunk, Job, JobStatus, UsageRecord, User
from daygen_queue import Clock

_KNOWN_USERS_LIMIT = 100_000
_MAX_GROUP = 500  # creations per transaction (keeps statements well under bind limits)
_SCAN_LIMIT = 1000  # jobs the reconciler looks at per pass


@dataclass(slots=True)
class _NewJob:
    job: JobRecord
    chunks: list[dict[str, Any]]


class JobStore:
    def __init__(self, db: Database, clock: Clock, *, starting_credits: int) -> None:
        self.db = db
        self.clock = clock
        self.starting_credits = starting_credits
        # Users are never deleted, so "this user row exists" can be cached per process.
        self._known_users: set[str] = set()
        self._creations = GroupCommit(self._save_new_jobs, max_group=_MAX_GROUP)

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
        dialect = sqlite if self.db.is_sqlite else postgresql
        statement = (
            dialect.insert(User).values(values).on_conflict_do_nothing(index_elements=["id"])
        )

        def work(conn: Connection) -> None:
            conn.execute(statement)

        await self.db.write(work)
        if len(self._known_users) >= _KNOWN_USERS_LIMIT:
            self._known_users.clear()
        self._known_users.add(user_id)

    async def get_user(self, user_id: str) -> UserRecord | None:
        def work(conn: Connection) -> UserRecord | None:
            row = conn.execute(select(*User.__table__.c).where(User.id == user_id)).first()
            return None if row is None else record(UserRecord, row)

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
        job_id: str | None = None,
        priority: str = "normal",
        run_at: datetime | None = None,
        depends_on: Sequence[str] = (),
        parent_fields: dict[str, str] | None = None,
    ) -> JobRecord:
        """Reserve the credits and save the job ``PENDING`` (with its chunks), atomically.
        Raises ``InsufficientCredits``. ``job_id`` is a new id chosen by the caller (an
        idempotency key names its job before the job exists); a UUID otherwise. A job with
        ``depends_on`` is saved on its own (``app.jobs.dependencies``): ``WAITING`` unless its
        parents all completed, and ``PlanningError`` for a parent it cannot have
        (``parent_fields`` names the field).

        Concurrent calls are committed together: a group costs one locked read of the
        balances, one conditional UPDATE and one INSERT, whatever its size, and each request
        is still accepted or refused on its own, in arrival order.
        """
        now = self.clock.now()
        job = JobRecord(
            id=job_id or str(uuid.uuid4()),
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
            priority=priority,
            run_at=run_at,
            depends_on=list(depends_on) or None,
        )
        if depends_on:
            return await self.db.write(
                dependencies.create_with_parents,
                job,
                batches.new_chunks(job.id, chunk_sizes, now),
                parent_fields or {},
                now,
            )
        return await self._creations.submit(
            _NewJob(job, batches.new_chunks(job.id, chunk_sizes, now))
        )

    async def _save_new_jobs(self, group: list[_NewJob]) -> list[JobRecord | Exception]:
        taken = await self.db.write(_save_new_jobs, group, self.clock.now())
        return [
            item.job if ok else credits.InsufficientCredits(item.job.cost)
            for item, ok in zip(group, taken, strict=True)
        ]

    # ------------------------------------------------------------------ reading

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self.db.read(transitions.read_job, job_id)

    async def get_user_job(self, user_id: str, job_id: str) -> JobRecord | None:
        job = await self.get_job(job_id)
        return job if job is not None and job.user_id == user_id else None

    async def list_jobs(
        self, user_id: str, *, limit: int, after: tuple[datetime, str] | None
    ) -> list[JobRecord]:
        """Newest first; ``after`` is the (created_at, id) of the last job already shown."""
        statement = select(*JOB_COLUMNS).where(Job.user_id == user_id)
        if after is not None:
            created, job_id = after
            statement = statement.where(
                or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id))
            )
        statement = statement.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        return await self.db.read(_records, JobRecord, statement)

    async def unfinished_jobs(self, user_id: str) -> list[JobRecord]:
        """The user's WAITING, PENDING and PROCESSING jobs, newest first (a snapshot for live
        clients)."""
        statement = (
            select(*JOB_COLUMNS)
            .where(Job.user_id == user_id, Job.status.in_((JobStatus.WAITING, *UNFINISHED)))
            .order_by(Job.created_at.desc(), Job.id.desc())
        )
        return await self.db.read(_records, JobRecord, statement)

    async def chunks(self, job_id: str) -> list[ChunkRecord]:
        statement = (
            select(*BatchChunk.__table__.c)
            .where(BatchChunk.job_id == job_id)
            .order_by(BatchChunk.position)
        )
        return await self.db.read(_records, ChunkRecord, statement)

    async def usage_for(self, job_id: str) -> list[UsageEntry]:
        statement = select(*UsageRecord.__table__.c).where(UsageRecord.job_id == job_id)
        return await self.db.read(_records, UsageEntry, statement)

    # ------------------------------------------------------------------ the reconciler's

    async def stale_pending(self, older_than: timedelta) -> list[tuple[JobRecord, list[int]]]:
        """Jobs whose tasks may never have been created, with the chunks to enqueue: PENDING
        jobs (``[]``: the job's own task), and the PENDING chunks of unfinished jobs made of
        chunks, older than ``older_than`` (and, for a scheduled job, that long past its
        ``runAt``: thousands of jobs scheduled ahead must not fill every pass)."""
        cutoff = self.clock.now() - older_than
        statement = (
            select(*JOB_COLUMNS)
            .where(
                Job.created_at < cutoff,
                Job.status.in_(UNFINISHED),
                # A scheduled job's task is due at its runAt: only suspicious after that.
                or_(Job.run_at.is_(None), Job.run_at < cutoff),
            )
            .order_by(Job.created_at)
            .limit(_SCAN_LIMIT)
        )

        def work(conn: Connection) -> list[tuple[JobRecord, list[int]]]:
            jobs = _records(conn, JobRecord, statement)
            chunked = batches.pending_chunks(conn, [job.id for job in jobs])
            found: list[tuple[JobRecord, list[int]]] = []
            for job in jobs:
                if job.id in chunked:
                    if chunked[job.id]:
                        found.append((job, chunked[job.id]))
                elif job.status == JobStatus.PENDING:
                    found.append((job, []))
            return found

        return await self.db.read(work)

    async def fail_stale(self, older_than: timedelta, error: str) -> list[JobRecord]:
        """Fail (and refund) jobs PROCESSING with no change for ``older_than``: whatever held
        them died and no delivery is coming back. Returns the failed jobs."""
        now = self.clock.now()
        cutoff = now - older_than
        return await self.db.write(transitions.fail_stale, cutoff, error, now, _SCAN_LIMIT)

    async def cut_short(
        self, deadlines: dict[str, timedelta], chunked: set[str]
    ) -> list[cut_short.CutShort]:
        """Attempts older than their type's dispatch deadline (``deadlines``) that still hold
        a job, or a chunk for the types in ``chunked`` (``app.jobs.cut_short``)."""
        now = self.clock.now()
        whole = {name: now - wait for name, wait in deadlines.items() if name not in chunked}
        chunks = {name: now - wait for name, wait in deadlines.items() if name in chunked}
        return await self.db.read(cut_short.find_cut_short, whole, chunks, _SCAN_LIMIT)

    # ------------------------------------------------------------------ whole jobs

    async def claim(self, job_id: str, attempt: int, job_type: str | None = None) -> Claim:
        """Take a PENDING job (of ``job_type``, when given), or a PROCESSING one left by an
        earlier attempt."""
        return await self.db.write(
            transitions.claim_job, job_id, attempt, job_type, self.clock.now()
        )

    async def set_progress(self, job_id: str, attempt: int, progress: int) -> JobRecord | None:
        """Move progress forward for the attempt that owns the job; None if it no longer does."""
        return await self.db.write(
            transitions.move_progress, job_id, attempt, progress, self.clock.now()
        )

    async def complete(self, job_id: str, attempt: int, result: dict[str, Any]) -> JobRecord | None:
        """COMPLETED with its result and one usage record, if ``attempt`` still owns the job."""
        return await self.db.write(
            transitions.complete_owned, job_id, attempt, result, self.clock.now()
        )

    async def fail(
        self, job_id: str, error: str, *, attempt: int | None = None
    ) -> JobRecord | None:
        """FAILED with ``error`` and the credits refunded, once. With ``attempt``, only if that
        attempt still owns the job (a stale delivery must not fail a newer one's work)."""
        return await self.db.write(
            transitions.fail_unfinished, job_id, error, attempt, self.clock.now()
        )

    # ------------------------------------------------------------------ jobs made of chunks

    async def claim_chunk(self, job_id: str, index: int, attempt: int, job_type: str) -> Claim:
        """Take chunk ``index`` of a ``job_type`` job for this attempt."""
        return await self.db.write(
            batches.claim_chunk, job_id, index, attempt, job_type, self.clock.now()
        )

    async def chunk_progress(
        self, job_id: str, index: int, attempt: int, done: int
    ) -> JobRecord | None:
        return await self.db.write(
            batches.chunk_progress, job_id, index, attempt, done, self.clock.now()
        )

    async def complete_chunk(
        self, job_id: str, index: int, attempt: int, urls: list[str]
    ) -> JobRecord | None:
        return await self.db.write(
            batches.complete_chunk, job_id, index, attempt, urls, self.clock.now()
        )

    async def fail_chunk(
        self, job_id: str, index: int, attempt: int, error: str
    ) -> JobRecord | None:
        return await self.db.write(
            batches.fail_chunk, job_id, index, attempt, error, self.clock.now()
        )


def _records(conn: Connection, kind: type[R], statement: Select[Any]) -> list[R]:
    return [record(kind, row) for row in conn.execute(statement)]


def _save_new_jobs(conn: Connection, group: list[_NewJob], now: datetime) -> list[bool]:
    """Reserve credits for a group of creations and save the ones covered; which were."""
    taken = credits.reserve_many(conn, [(item.job.user_id, item.job.cost) for item in group], now)
    accepted = [item for item, ok in zip(group, taken, strict=True) if ok]
    if accepted:
        conn.execute(insert(Job), [item.job.values() for item in accepted])
    chunk_rows = [row for item in accepted for row in item.chunks]
    if chunk_rows:
        conn.execute(insert(BatchChunk), chunk_rows)
    return taken
