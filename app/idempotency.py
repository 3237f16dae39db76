"""``Idempotency-Key`` on ``POST /api/jobs/*``: a create sent twice makes one job.

The convention is Stripe's and the IETF httpapi draft's: per user, a key of up to 255
characters is remembered for 24 hours with a fingerprint of the request (the job type and the
JSON body, canonicalised) and the id of the job it made. Sent again:

- same fingerprint, job saved: the same job is answered again (``Idempotent-Replayed: true``),
  and nothing is charged;
- same fingerprint, job not saved yet: the first request is still in flight, 409;
- another fingerprint: 422, the key is taken by a different request.

The key row is inserted (``ON CONFLICT DO NOTHING`` on its primary key) *before* the job is
created, naming the job id the create will use. The database's uniqueness decides which of two
identical requests at once creates the job, across processes, on SQLite and PostgreSQL alike;
no lock lives in memory. Because the row names the job before it exists, a process killed
between the two leaves a row whose job never appears: after ``ABANDONED_AFTER`` such a key is
taken over by the next request with it (the create it stood for cannot commit that late: a
create is one short transaction). A create refused (402) forgets its key, as nothing happened.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.jobs.records import JobRecord
from app.jobs.schemas import JobRequest
from app.jobs.submit import submit_job
from app.jobs.types import JobType
from app.models import IdempotencyKey
from app.services import Services

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 255
REMEMBERED_FOR = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=60)

__all__ = [
    "HEADER",
    "REPLAYED_HEADER",
    "IdempotencyConflict",
    "IdempotencyInFlight",
    "InvalidIdempotencyKey",
    "create_once",
    "fingerprint",
    "read_key",
]


class InvalidIdempotencyKey(ValueError):
    """The header is present but blank or too long."""


class IdempotencyConflict(Exception):
    """The key was used for a different request (another body or job type)."""


class IdempotencyInFlight(Exception):
    """The first request with this key has not finished."""


def read_key(value: str | None) -> str | None:
    """The key from the header value (None: no header). Raises ``InvalidIdempotencyKey``."""
    if value is None:
        return None
    if not value.strip():
        raise InvalidIdempotencyKey("must not be blank")
    if len(value) > MAX_KEY_CHARS:
        raise InvalidIdempotencyKey(f"at most {MAX_KEY_CHARS} characters")
    return value


def fingerprint(job_type: str, body: Any) -> str:
    """sha256 of the job type and the body as canonical JSON (key order and spacing do not
    make two requests different)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{job_type}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Taken:
    """The key row after the insert attempt: ``won`` if this request now owns it."""

    won: bool
    fingerprint: str
    job_id: str
    created_at: datetime


def _take(
    conn: Connection, user_id: str, key: str, print_: str, job_id: str, now: datetime
) -> _Taken:
    """Forget the user's expired keys, then insert this one unless it exists; the row."""
    conn.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.created_at < now - REMEMBERED_FOR
        )
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "user_id": user_id,
        "key": key,
        "fingerprint": print_,
        "job_id": job_id,
        "created_at": now,
    }
    inserted = conn.execute(
        dialect.insert(IdempotencyKey)
        .values(values)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
    )
    if inserted.rowcount == 1:
        return _Taken(True, print_, job_id, now)
    row = conn.execute(
        select(IdempotencyKey.fingerprint, IdempotencyKey.job_id, IdempotencyKey.created_at).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
    ).one()
    return _Taken(False, row.fingerprint, row.job_id, row.created_at)


def _take_over(
    conn: Connection, user_id: str, key: str, old_job: str, new_job: str, now: datetime
) -> bool:
    """Re-point an abandoned key at a new job id, if nobody else did first."""
    moved = conn.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.job_id == old_job,
        )
        .values(job_id=new_job, created_at=now)
    )
    return moved.rowcount == 1


def _forget(conn: Connection, user_id: str, key: str, job_id: str) -> None:
    conn.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.job_id == job_id,
        )
    )


async def create_once(
    services: Services,
    user_id: str,
    job_type: JobType[Any],
    request: JobRequest,
    *,
    key: str,
    request_print: str,
) -> tuple[JobRecord, bool]:
    """The job for this key: created now (``False``) or the one it made before (``True``:
    a replay, nothing charged). Raises ``IdempotencyConflict``, ``IdempotencyInFlight`` and
    whatever ``submit_job`` raises (``InsufficientCredits``; the key is then forgotten)."""
    store = services.store
    job_id = str(uuid.uuid4())
    now = store.clock.now()
    taken = await store.db.write(_take, user_id, key, request_print, job_id, now)
    if not taken.won:
        if taken.fingerprint != request_print:
            raise IdempotencyConflict(key)
        existing = await store.get_user_job(user_id, taken.job_id)
        if existing is not None:
            return existing, True
        abandoned = taken.created_at < now - ABANDONED_AFTER
        if not abandoned or not await store.db.write(
            _take_over, user_id, key, taken.job_id, job_id, now
        ):
            raise IdempotencyInFlight(key)
    try:
        job = await submit_job(services, user_id, job_type, request, job_id=job_id)
    except BaseException:
        await store.db.write(_forget, user_id, key, job_id)
        raise
    return job, False
