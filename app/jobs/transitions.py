"""The state changes of a job, each decided by one conditional UPDATE.

Delivery is at least once, possibly concurrent, so every transition states what it expects
(``status``, and the attempt that owns the job) in its WHERE clause and reports whether it won.
A loser changes nothing; that is how a duplicate neither runs twice nor charges twice.

These are synchronous functions of a ``Connection``, run by ``Database.write`` inside one
transaction (in one worker-thread call on SQLite, see ``app.db``). ``update_job``,
``complete_job`` and ``fail_job`` are shared with the chunk transitions of ``app.jobs.batches``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, insert, or_, select, update

from app.jobs import credits
from app.jobs.records import Claim, JobRecord, record
from app.models import Job, JobStatus, UsageRecord

JOB_COLUMNS = tuple(Job.__table__.c)
MAX_ERROR_CHARS = 2000
UNFINISHED = (JobStatus.PENDING, JobStatus.PROCESSING)


def update_job(conn: Connection, *where: ColumnElement[bool], **values: Any) -> JobRecord | None:
    """Set ``values`` on the job matching every condition of ``where``: the job after the
    change, or None when no job matched (the transition lost)."""
    row = conn.execute(update(Job).where(*where).values(**values).returning(*JOB_COLUMNS)).first()
    return None if row is None else record(JobRecord, row)


def read_job(conn: Connection, job_id: str, *, lock: bool = False) -> JobRecord | None:
    """The job; with ``lock``, its row stays locked until commit on PostgreSQL (SQLite's one
    writer serialises anyway)."""
    statement = select(*JOB_COLUMNS).where(Job.id == job_id)
    row = conn.execute(statement.with_for_update() if lock else statement).first()
    return None if row is None else record(JobRecord, row)


def complete_job(
    conn: Connection, where: list[ColumnElement[bool]], result: dict[str, Any], now: datetime
) -> JobRecord | None:
    """COMPLETED with ``result`` and the job's one usage record, where ``where`` holds."""
    job = update_job(
        conn,
        *where,
        status=JobStatus.COMPLETED,
        progress=100,
        result=result,
        error=None,
        completed_at=now,
        updated_at=now,
    )
    if job is not None:
        conn.execute(
            insert(UsageRecord).values(
                job_id=job.id, user_id=job.user_id, type=job.type, credits=job.cost, created_at=now
            )
        )
    return job


def fail_job(
    conn: Connection, where: list[ColumnElement[bool]], error: str, now: datetime
) -> JobRecord | None:
    """FAILED with ``error`` and the credits refunded, where ``where`` holds. Only the winner
    of the transition refunds, so a job is refunded at most once."""
    job = update_job(
        conn,
        *where,
        status=JobStatus.FAILED,
        error=error[:MAX_ERROR_CHARS],
        completed_at=now,
        updated_at=now,
    )
    if job is not None:
        credits.refund(conn, job.user_id, job.cost, now)
    return job


def claim_job(
    conn: Connection, job_id: str, attempt: int, job_type: str | None, now: datetime
) -> Claim:
    """Take a PENDING job (of ``job_type``, when given), or a PROCESSING one left by an
    earlier attempt."""
    where = [
        Job.id == job_id,
        or_(
            Job.status == JobStatus.PENDING,
            and_(Job.status == JobStatus.PROCESSING, Job.attempts < attempt),
        ),
    ]
    if job_type is not None:
        where.append(Job.type == job_type)
    job = update_job(
        conn,
        *where,
        status=JobStatus.PROCESSING,
        attempts=attempt,
        progress=0,
        started_at=func.coalesce(Job.started_at, now),
        updated_at=now,
    )
    if job is not None:
        return Claim(True, job, job_changed=True)
    return Claim(False, read_job(conn, job_id))


def _owned_by(job_id: str, attempt: int) -> list[ColumnElement[bool]]:
    """The job, only while ``attempt`` still holds it (a stale delivery changes nothing)."""
    return [Job.id == job_id, Job.status == JobStatus.PROCESSING, Job.attempts == attempt]


def move_progress(
    conn: Connection, job_id: str, attempt: int, progress: int, now: datetime
) -> JobRecord | None:
    """Progress forward (never back) for the attempt that owns the job; None if it no longer
    does."""
    where = [*_owned_by(job_id, attempt), Job.progress < progress]
    return update_job(conn, *where, progress=progress, updated_at=now)


def complete_owned(
    conn: Connection, job_id: str, attempt: int, result: dict[str, Any], now: datetime
) -> JobRecord | None:
    return complete_job(conn, _owned_by(job_id, attempt), result, now)


def fail_unfinished(
    conn: Connection, job_id: str, error: str, attempt: int | None, now: datetime
) -> JobRecord | None:
    """FAILED unless already finished; with ``attempt``, only if that attempt owns the job."""
    where = [Job.id == job_id, Job.status.in_(UNFINISHED)]
    if attempt is not None:
        where.append(Job.attempts == attempt)
    return fail_job(conn, where, error, now)


def fail_stale(
    conn: Connection, cutoff: datetime, error: str, now: datetime, limit: int
) -> list[JobRecord]:
    """Fail (and refund) the jobs PROCESSING with no change since ``cutoff``."""
    stale = conn.execute(
        select(Job.id)
        .where(Job.status == JobStatus.PROCESSING, Job.updated_at < cutoff)
        .limit(limit)
    ).scalars()
    failed = []
    for job_id in list(stale):
        where = [Job.id == job_id, Job.status == JobStatus.PROCESSING, Job.updated_at < cutoff]
        job = fail_job(conn, where, error, now)
        if job is not None:
            failed.append(job)
    return failed
