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

from aiohttp import web
from sqlalchemy import Connection, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from app.db import Database
from app.jobs.group_commit import GroupCommit
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
_MAX_GROUP = 500

__all__ = [
    "HEADER",
    "REPLAYED_HEADER",
    "IdempotencyConflict",
    "KEYS",
    "IdempotencyInFlight",
    "InvalidIdempotencyKey",
    "KeyBook",
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


@dataclass(frozen=True, slots=True)
class _Claim:
    """One request's attempt to take a key: the row it would insert."""

    user_id: str
    key: str
    fingerprint: str
    job_id: str
    now: datetime


def _take_group(conn: Connection, claims: list[_Claim]) -> list[_Taken]:
    """Every claim in three statements: the users' expired keys forgotten, one
    ``INSERT ... ON CONFLICT DO NOTHING`` of all rows in arrival order, one read of the rows.
    A claim won if the row names its (fresh) job id: of two identical claims, the first."""
    now = max(claim.now for claim in claims)
    users = sorted({claim.user_id for claim in claims})
    conn.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id.in_(users), IdempotencyKey.created_at < now - REMEMBERED_FOR
        )
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [
        {
            "user_id": claim.user_id,
            "key": claim.key,
            "fingerprint": claim.fingerprint,
            "job_id": claim.job_id,
            "created_at": claim.now,
        }
        for claim in claims
    ]
    conn.execute(
        dialect.insert(IdempotencyKey).on_conflict_do_nothing(index_elements=["user_id", "key"]),
        rows,
    )
    found = {
        (row.user_id, row.key): row
        for row in conn.execute(
            select(
                IdempotencyKey.user_id,
                IdempotencyKey.key,
                IdempotencyKey.fingerprint,
                IdempotencyKey.job_id,
                IdempotencyKey.created_at,
            ).where(
                tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(
                    [(claim.user_id, claim.key) for claim in claims]
                )
            )
        )
    }
    taken = []
    for claim in claims:
        row = found[(claim.user_id, claim.key)]
        won = row.job_id == claim.job_id
        taken.append(_Taken(won, row.fingerprint, row.job_id, row.created_at))
    return taken


def _take(conn: Connection, claim: _Claim) -> _Taken:
    """One claim alone (what a group of one does)."""
    return _take_group(conn, [claim])[0]


class KeyBook:
    """The keys of one database: claims arriving together are committed together (the
    creations they stand for are too, see ``app.jobs.group_commit``), so a key costs a few
    statements in a shared transaction rather than a commit of its own."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._claims = GroupCommit(self._commit, max_group=_MAX_GROUP)

    async def take(self, claim: _Claim) -> _Taken:
        return await self._claims.submit(claim)

    async def _commit(self, claims: list[_Claim]) -> list[_Taken]:
        return await self.db.write(_take_group, claims)


KEYS = web.AppKey("idempotency_keys", KeyBook)
"""The app's ``KeyBook`` (``create_app`` sets it)."""


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
    keys: KeyBook,
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
    taken = await keys.take(_Claim(user_id, key, request_print, job_id, now))
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
