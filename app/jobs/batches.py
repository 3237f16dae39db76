"""The state changes of a job made of chunks (a batch): each chunk is one task, claimed and
retried on its own, and the job follows its chunks.

The job becomes PROCESSING with its first claimed chunk, reports images done / total as its
progress, completes with the last chunk (every URL in prompt order, one usage record) and fails
(refunded) as soon as one chunk fails for good. A chunk is written only while the attempt that
claimed it still holds it, so a stale or duplicate delivery changes nothing.

Synchronous functions of a ``Connection``, like ``app.jobs.transitions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update

from app.jobs.records import Claim, JobRecord
from app.jobs.transitions import UNFINISHED, complete_job, fail_job, read_job, update_job
from app.models import FINISHED, BatchChunk, Job, JobStatus


def new_chunks(job_id: str, sizes: Sequence[int], now: datetime) -> list[dict[str, Any]]:
    """The chunk rows of a new job, PENDING, one per size."""
    return [
        {
            "job_id": job_id,
            "position": index,
            "status": JobStatus.PENDING,
            "size": size,
            "done": 0,
            "attempts": 0,
            "updated_at": now,
        }
        for index, size in enumerate(sizes)
    ]


def pending_chunks(conn: Connection, job_ids: Sequence[str]) -> dict[str, list[int]]:
    """For each of ``job_ids`` made of chunks: the positions of its PENDING chunks (maybe
    none). A job absent from the answer has no chunks at all."""
    rows = conn.execute(
        select(BatchChunk.job_id, BatchChunk.position, BatchChunk.status)
        .where(BatchChunk.job_id.in_(job_ids))
        .order_by(BatchChunk.job_id, BatchChunk.position)
    )
    found: dict[str, list[int]] = {}
    for job_id, position, status in rows:
        positions = found.setdefault(job_id, [])
        if status == JobStatus.PENDING:
            positions.append(position)
    return found


def _held_chunk(job_id: str, index: int, attempt: int) -> tuple[ColumnElement[bool], ...]:
    """The chunk, only while this attempt still holds it (a later attempt or a finished
    batch makes every write of an older delivery a no-op)."""
    return (
        BatchChunk.job_id == job_id,
        BatchChunk.position == index,
        BatchChunk.status == JobStatus.PROCESSING,
        BatchChunk.attempts == attempt,
    )


def _progress(conn: Connection, job_id: str) -> int:
    """Images done / total of the job's chunks, in percent, below 100 until it completes."""
    totals = conn.execute(
        select(func.sum(BatchChunk.done), func.sum(BatchChunk.size)).where(
            BatchChunk.job_id == job_id
        )
    ).one()
    done, total = int(totals[0] or 0), int(totals[1] or 0)
    if total == 0:
        return 0
    return min(99, (100 * done) // total)


def claim_chunk(
    conn: Connection, job_id: str, index: int, attempt: int, job_type: str, now: datetime
) -> Claim:
    """Take one chunk for this attempt; the job becomes PROCESSING with its first chunk."""
    job = read_job(conn, job_id, lock=True)
    if job is None or job.status in FINISHED or job.type != job_type:
        return Claim(False, job)
    claimed = conn.execute(
        update(BatchChunk)
        .where(
            BatchChunk.job_id == job_id,
            BatchChunk.position == index,
            or_(
                BatchChunk.status == JobStatus.PENDING,
                and_(BatchChunk.status == JobStatus.PROCESSING, BatchChunk.attempts < attempt),
            ),
        )
        .values(status=JobStatus.PROCESSING, attempts=attempt, done=0, updated_at=now)
    )
    if claimed.rowcount != 1:
        return Claim(False, job)
    highest = func.max if conn.dialect.name == "sqlite" else func.greatest
    started = update_job(
        conn,
        Job.id == job_id,
        Job.status == JobStatus.PENDING,
        status=JobStatus.PROCESSING,
        started_at=now,
        updated_at=now,
        attempts=highest(Job.attempts, attempt),
    )
    return Claim(True, started or job, job_changed=started is not None)


def chunk_progress(
    conn: Connection, job_id: str, index: int, attempt: int, done: int, now: datetime
) -> JobRecord | None:
    """Record ``done`` images of a chunk and move the job's progress forward. The job if it
    moved."""
    moved = conn.execute(
        update(BatchChunk)
        .where(*_held_chunk(job_id, index, attempt))
        .values(done=done, updated_at=now)
    )
    if moved.rowcount != 1:
        return None
    progress = _progress(conn, job_id)
    return update_job(
        conn,
        Job.id == job_id,
        Job.status == JobStatus.PROCESSING,
        Job.progress < progress,
        progress=progress,
        updated_at=now,
    )


def complete_chunk(
    conn: Connection, job_id: str, index: int, attempt: int, urls: list[str], now: datetime
) -> JobRecord | None:
    """Store a chunk's URLs; the last chunk completes the job. The job if it changed."""
    job = read_job(conn, job_id, lock=True)
    if job is None or job.status != JobStatus.PROCESSING:
        return None
    done = conn.execute(
        update(BatchChunk)
        .where(*_held_chunk(job_id, index, attempt))
        .values(status=JobStatus.COMPLETED, urls=urls, done=len(urls), updated_at=now)
    )
    if done.rowcount != 1:
        return None
    chunks = conn.execute(
        select(BatchChunk.status, BatchChunk.urls)
        .where(BatchChunk.job_id == job_id)
        .order_by(BatchChunk.position)
    ).all()
    if all(chunk.status == JobStatus.COMPLETED for chunk in chunks):
        every_url = [url for chunk in chunks for url in (chunk.urls or [])]
        where = [Job.id == job_id, Job.status == JobStatus.PROCESSING]
        return complete_job(conn, where, {"urls": every_url}, now)
    progress = _progress(conn, job_id)
    return update_job(
        conn, Job.id == job_id, Job.progress < progress, progress=progress, updated_at=now
    )


def fail_chunk(
    conn: Connection, job_id: str, index: int, attempt: int, error: str, now: datetime
) -> JobRecord | None:
    """A chunk failed for good: the whole job fails (refunded), if this attempt still holds
    the chunk. The job if it changed."""
    owned = conn.execute(
        update(BatchChunk)
        .where(*_held_chunk(job_id, index, attempt))
        .values(status=JobStatus.FAILED, error=error, updated_at=now)
    )
    if owned.rowcount != 1:
        return None
    return fail_job(conn, [Job.id == job_id, Job.status.in_(UNFINISHED)], error, now)
