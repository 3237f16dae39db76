"""Each user's webhook signing secret: ``whsec_`` + base64 of 32 random bytes (the Standard
Webhooks form), made on first need, rotatable.

After a rotation the previous secret keeps signing beside the new one for
``ROTATION_GRACE`` (a delivery then carries two ``v1,`` signatures, as the spec allows), so a
receiver can switch secrets without rejecting a delivery. Secrets are read from the database
at each delivery and never written to a log or a task.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.db import Database
from app.models import WebhookSecret

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_GRACE = timedelta(hours=24)

__all__ = ["ROTATION_GRACE", "current_secret", "new_secret", "rotate_secret", "signing_secrets"]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _ensure(conn: Connection, user_id: str, now: datetime) -> WebhookSecret:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(WebhookSecret)
        .values(user_id=user_id, key=new_secret(), created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    row = conn.execute(
        select(WebhookSecret.key, WebhookSecret.previous_key, WebhookSecret.rotated_at).where(
            WebhookSecret.user_id == user_id
        )
    ).one()
    return WebhookSecret(
        user_id=user_id, key=row.key, previous_key=row.previous_key, rotated_at=row.rotated_at
    )


def _current(conn: Connection, user_id: str, now: datetime) -> str:
    return _ensure(conn, user_id, now).key


def _signing(conn: Connection, user_id: str, now: datetime) -> list[str]:
    row = _ensure(conn, user_id, now)
    keys = [row.key]
    if row.previous_key and row.rotated_at and now - row.rotated_at < ROTATION_GRACE:
        keys.append(row.previous_key)
    return keys


def _rotate(conn: Connection, user_id: str, now: datetime) -> str:
    _ensure(conn, user_id, now)
    key = new_secret()
    conn.execute(
        update(WebhookSecret)
        .where(WebhookSecret.user_id == user_id)
        .values(key=key, previous_key=WebhookSecret.key, rotated_at=now)
    )
    return key


async def current_secret(db: Database, user_id: str, now: datetime) -> str:
    """The user's secret (made now if they had none)."""
    return await db.write(_current, user_id, now)


async def signing_secrets(db: Database, user_id: str, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    during its grace period."""
    return await db.write(_signing, user_id, now)


async def rotate_secret(db: Database, user_id: str, now: datetime) -> str:
    """A new secret; the old one still signs for ``ROTATION_GRACE``."""
    return await db.write(_rotate, user_id, now)
