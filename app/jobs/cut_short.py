"""Attempts cut short: a job (or a batch chunk) still PROCESSING by an attempt older than its
dispatch deadline.

The queue gives up waiting on an attempt at its dispatch deadline, and the app's own run
timeout is shorter than that deadline, so such an attempt is not running anywhere: its process
died (``kill -9``, an instance lost) or hung. If the queue still has the task it retries it by
itself; if the queue lost it (an in-process emulator kept in memory, restarted) nothing will.
The reconciler therefore hands the work to a new task, ``{task}-retry-{n}``, which carries
``attemptsBefore = n`` so that its first delivery is the job's attempt ``n + 1``: it takes the
job (or chunk) over from attempt ``n`` with the same conditional claim a queue retry uses, and
the attempt limit still counts the attempt that was lost. A batch keeps its finished chunks;
only the chunk that was cut short runs again.

A job waiting on a remote provider task (a ``provider_tasks`` row) is left alone: no attempt
holds it, its poll tasks on the queue drive it (``app.jobs.provider_polling``).

Synchronous functions of a ``Connection``, like ``app.jobs.transitions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, exists, or_, select

from app.jobs.provider_tasks import ProviderTaskRow
from app.jobs.records import JobRecord, record
from app.jobs.transitions import JOB_COLUMNS
from app.models import BatchChunk, Job, JobStatus


@dataclass(frozen=True, slots=True)
class CutShort:
    """One attempt that will never finish: the job, its chunk (None: the whole job) and the
    number of the attempt that holds it."""

    job: JobRecord
    chunk: int | None
    attempt: int


def find_cut_short(
    conn: Connection,
    whole_cutoffs: Mapping[str, datetime],
    chunk_cutoffs: Mapping[str, datetime],
    limit: int,
) -> list[CutShort]:
    """Jobs of the types in ``whole_cutoffs`` PROCESSING with no change since their type's
    cutoff, and chunks of the types in ``chunk_cutoffs`` PROCESSING (in an unfinished job)
    with no change since theirs; oldest first, at most ``limit`` of each kind."""
    found: list[CutShort] = []
    if whole_cutoffs:
        whole = or_(
            *(
                and_(Job.type == name, Job.updated_at < cutoff)
                for name, cutoff in whole_cutoffs.items()
            )
        )
        statement = (
            select(*JOB_COLUMNS)
            .where(
                Job.status == JobStatus.PROCESSING,
                whole,
                ~exists().where(ProviderTaskRow.job_id == Job.id),
            )
            .order_by(Job.updated_at)
            .limit(limit)
        )
        for row in conn.execute(statement):
            job = record(JobRecord, row)
            found.append(CutShort(job, None, job.attempts))
    if chunk_cutoffs:
        stale_chunk = or_(
            *(
                and_(Job.type == name, BatchChunk.updated_at < cutoff)
                for name, cutoff in chunk_cutoffs.items()
            )
        )
        statement = (
            select(*JOB_COLUMNS, BatchChunk.position, BatchChunk.attempts.label("chunk_attempts"))
            .join(BatchChunk, BatchChunk.job_id == Job.id)
            .where(
                Job.status == JobStatus.PROCESSING,
                BatchChunk.status == JobStatus.PROCESSING,
                stale_chunk,
            )
            .order_by(BatchChunk.updated_at)
            .limit(limit)
        )
        for row in conn.execute(statement):
            values = row._mapping
            job = JobRecord(**{column.name: values[column] for column in JOB_COLUMNS})
            found.append(CutShort(job, int(values["position"]), int(values["chunk_attempts"])))
    return found
