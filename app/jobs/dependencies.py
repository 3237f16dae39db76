"""Job dependencies (``dependsOn``): a job that waits, in status ``WAITING``, until every parent
is ``COMPLETED``; then it gets its task like any new job.

A job can only name jobs that already exist and are its caller's, and its own id is new, so
the graph can never hold a cycle: refusing unknown and foreign ids (422, before anything is
charged) is what refuses cycles. Credits are reserved when the waiting job is created.

When a parent finishes, ``settle_children`` decides each waiting child in one transaction:
released (``PENDING``, its ``job:<jobId>`` sources replaced by the parents' result URLs), still
waiting (``waitingFor`` shrinks), or, when a parent failed or was cancelled, ``CANCELLED`` with
its credits refunded, and its own children after it. The decision is read from the parents'
current states, never counted down, so settling twice changes nothing; the reconciler settles
whatever a crash left waiting on finished parents.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy import Connection, insert, select

from app.events import JobUpdate
from app.jobs import credits
from app.jobs.enqueue import enqueue_job
from app.jobs.planning import PlanningError, job_ref
from app.jobs.records import JobRecord, record
from app.jobs.transitions import JOB_COLUMNS, read_job, update_job
from app.jobs.types import JOB_TYPES
from app.jobs.views import job_view
from app.models import FINISHED, BatchChunk, Job, JobDependency, JobStatus

if TYPE_CHECKING:
    from app.events import JobEvents
    from app.jobs.store import JobStore
    from app.settings import Settings
    from daygen_queue import Clock, TaskQueue

log = logging.getLogger("app.dependencies")

IMAGE_RESULTS: Final = frozenset({"image-generation", "image-upscale", "batch-generation"})
"""Job types whose result is an image a ``job:<jobId>`` source can name."""
_BROKEN: Final = (JobStatus.FAILED, JobStatus.CANCELLED)
_SWEEP_LIMIT: Final = 500


class Services(Protocol):
    """What settling needs (``app.services.Services`` and the reconciler both have it)."""

    @property
    def store(self) -> JobStore: ...
    @property
    def queue(self) -> TaskQueue: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def events(self) -> JobEvents: ...


def result_url(parent: JobRecord) -> str | None:
    """The URL a ``job:<jobId>`` source stands for: the parent's ``resultUrl``."""
    result = parent.result or {}
    url = result.get("url")
    if url:
        return str(url)
    urls = result.get("urls") or []
    return str(urls[0]) if urls else None


def resolve_sources(params: dict[str, Any], parents: dict[str, JobRecord]) -> dict[str, Any]:
    """``params`` with every ``job:<jobId>`` source replaced by that parent's result URL."""

    def resolved(value: Any) -> Any:
        if isinstance(value, str) and (ref := job_ref(value)) is not None:
            url = result_url(parents[ref])
            if url is None:
                raise ValueError(f"job {ref} completed without a result")
            return url
        return value

    out = dict(params)
    if "image_url" in out:
        out["image_url"] = resolved(out["image_url"])
    if isinstance(out.get("image_urls"), list):
        out["image_urls"] = [resolved(value) for value in out["image_urls"]]
    return out


def _parents(conn: Connection, ids: list[str], *, lock: bool) -> dict[str, JobRecord]:
    """The parents, locked on PostgreSQL while the child is written: a parent finishing at
    the same moment waits for this transaction, then sees the child it must settle."""
    statement = select(*JOB_COLUMNS).where(Job.id.in_(ids)).order_by(Job.id)
    if lock:
        statement = statement.with_for_update()
    return {row.id: record(JobRecord, row) for row in conn.execute(statement)}


def create_with_parents(
    conn: Connection,
    job: JobRecord,
    chunk_rows: list[dict[str, Any]],
    fields: dict[str, str],
    now: datetime,
) -> JobRecord:
    """Save ``job`` (which has ``depends_on``) WAITING, or PENDING when every parent already
    completed, with its credits reserved and its edges. ``fields`` names the body field of each
    parent for a refusal. Raises ``PlanningError`` or ``InsufficientCredits``."""
    ids = list(job.depends_on or [])
    parents = _parents(conn, ids, lock=True)
    refs = {ref for value in _source_values(job.params) if (ref := job_ref(value)) is not None}
    for parent_id in ids:
        where = fields.get(parent_id, "dependsOn")
        parent = parents.get(parent_id)
        if parent is None or parent.user_id != job.user_id:
            raise PlanningError(where, f"no job {parent_id!r}")
        if parent.status in _BROKEN:
            message = f"job {parent_id!r} is {parent.status}: it will never complete"
            raise PlanningError(where, message)
        if parent_id in refs and parent.type not in IMAGE_RESULTS:
            raise PlanningError(where, f"job {parent_id!r} is a {parent.type} job, not an image")
    waiting = [parent_id for parent_id in ids if parents[parent_id].status != JobStatus.COMPLETED]
    if waiting:
        job = replace(job, status=JobStatus.WAITING, waiting_for=waiting)
    else:
        try:
            params = resolve_sources(job.params, parents)
        except ValueError as error:
            raise PlanningError(fields.get(ids[0], "dependsOn"), str(error)) from None
        job = replace(job, params=params, waiting_for=[])
    if not credits.reserve_many(conn, [(job.user_id, job.cost)], now)[0]:
        raise credits.InsufficientCredits(job.cost)
    conn.execute(insert(Job), [job.values()])
    if chunk_rows:
        conn.execute(insert(BatchChunk), chunk_rows)
    conn.execute(
        insert(JobDependency), [{"parent_id": parent, "child_id": job.id} for parent in ids]
    )
    return job


def _source_values(params: dict[str, Any]) -> list[str]:
    values = [params["image_url"]] if isinstance(params.get("image_url"), str) else []
    several = params.get("image_urls")
    if isinstance(several, list):
        values.extend(value for value in several if isinstance(value, str))
    return values


@dataclass(slots=True)
class Settled:
    """What settling changed: jobs to enqueue, and every job whose view changed."""

    released: list[JobRecord] = field(default_factory=list)
    changed: list[JobRecord] = field(default_factory=list)


def settle_children(conn: Connection, parent_id: str, now: datetime) -> Settled:
    """Decide every WAITING child of ``parent_id`` (and, for a cancelled one, its own
    children), from the parents' current states."""
    settled = Settled()
    todo = [parent_id]
    while todo:
        current = todo.pop()
        children = conn.execute(
            select(JobDependency.child_id)
            .where(JobDependency.parent_id == current)
            .order_by(JobDependency.child_id)
        ).scalars()
        for child_id in list(children):
            child = read_job(conn, child_id, lock=True)
            if child is None or child.status != JobStatus.WAITING:
                continue
            changed = _settle_one(conn, child, now)
            if changed is None:
                continue
            settled.changed.append(changed)
            if changed.status == JobStatus.PENDING:
                settled.released.append(changed)
            elif changed.status == JobStatus.CANCELLED:
                todo.append(changed.id)
    return settled


def _settle_one(conn: Connection, child: JobRecord, now: datetime) -> JobRecord | None:
    ids = list(child.depends_on or [])
    parents = _parents(conn, ids, lock=False)
    broken = [pid for pid in ids if pid in parents and parents[pid].status in _BROKEN]
    still_waiting = [pid for pid in ids if parents[pid].status != JobStatus.COMPLETED]
    waiting_here = [Job.id == child.id, Job.status == JobStatus.WAITING]
    if broken:
        parent = parents[broken[0]]
        return _cancel(conn, child, f"parent job {parent.id} was {parent.status.lower()}", now)
    if not still_waiting:
        try:
            params = resolve_sources(child.params, parents)
        except ValueError as error:
            return _cancel(conn, child, str(error), now)
        return update_job(
            conn,
            *waiting_here,
            status=JobStatus.PENDING,
            params=params,
            waiting_for=[],
            updated_at=now,
        )
    if still_waiting != child.waiting_for:
        return update_job(conn, *waiting_here, waiting_for=still_waiting, updated_at=now)
    return None


def _cancel(conn: Connection, child: JobRecord, error: str, now: datetime) -> JobRecord | None:
    """WAITING -> CANCELLED with ``error``, the credits refunded (only by the winner)."""
    job = update_job(
        conn,
        Job.id == child.id,
        Job.status == JobStatus.WAITING,
        status=JobStatus.CANCELLED,
        error=error,
        waiting_for=[],
        completed_at=now,
        updated_at=now,
    )
    if job is not None:
        credits.refund(conn, job.user_id, job.cost, now)
    return job


def _settled_parents(conn: Connection, limit: int) -> list[str]:
    """Finished parents that still have a WAITING child (what a crash left behind)."""
    child = Job.__table__.alias("child")
    parent = Job.__table__.alias("parent")
    rows = conn.execute(
        select(JobDependency.parent_id)
        .join(parent, parent.c.id == JobDependency.parent_id)
        .join(child, child.c.id == JobDependency.child_id)
        .where(child.c.status == JobStatus.WAITING, parent.c.status.in_(FINISHED))
        .distinct()
        .limit(limit)
    ).scalars()
    return list(rows)


async def settle_dependents(services: Services, parent: JobRecord | None) -> Settled:
    """After ``parent`` changed: if it is finished, settle its waiting children, enqueue the
    released ones and publish every change. Never raises (the parent's own transition is
    committed; the reconciler's sweep settles what this could not)."""
    if parent is None or parent.status not in FINISHED:
        return Settled()
    try:
        settled = await services.store.db.write(settle_children, parent.id, services.clock.now())
    except Exception:
        log.exception("settling the children of %s failed; the reconciler will", parent.id)
        return Settled()
    await _after(services, settled)
    return settled


async def sweep(services: Services) -> int:
    """The reconciler's pass: settle the children of every finished parent that still has a
    waiting one. Returns how many jobs changed."""
    parents = await services.store.db.read(_settled_parents, _SWEEP_LIMIT)
    changed = 0
    for parent_id in parents:
        settled = await services.store.db.write(settle_children, parent_id, services.clock.now())
        await _after(services, settled)
        changed += len(settled.changed)
    return changed


async def _after(services: Services, settled: Settled) -> None:
    for job in settled.changed:
        await services.events.publish(JobUpdate(job.user_id, job_view(job), job))
    for job in settled.released:
        job_type = JOB_TYPES[job.type]
        chunks = [chunk.position for chunk in await services.store.chunks(job.id)]
        try:
            await enqueue_job(services.queue, services.settings, job_type, job, chunks)
        except Exception:
            log.exception("enqueue of released job %s failed; the reconciler will retry", job.id)
