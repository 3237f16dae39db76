"""The three tables (plus batch chunks), as typed SQLAlchemy 2 mappings.

Queries use these classes in Core statements (``update(User)...``) rather than the unit of
work: the hot paths are single conditional statements whose row counts carry the decision
(credits reserved, job claimed), which is both faster and easier to reason about.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class JobStatus(enum.StrEnum):
    WAITING = "WAITING"  # for its parent jobs (``dependsOn``): no task yet
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

MAX_JOB_ID_LENGTH = 64
"""Job ids are UUIDs (36 characters); an id longer than the column can hold names no job."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the database keeps (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the app only stores timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("credits >= 0", name="ck_users_credits_not_negative"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    credits: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_user_created", "user_id", "created_at", "id"),
        Index("ix_jobs_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(MAX_JOB_ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # When and in what order it runs (app.jobs.planning; migration 0002_roadmap).
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    run_at: Mapped[datetime | None]
    depends_on: Mapped[list[str] | None] = mapped_column(JSON)
    waiting_for: Mapped[list[str] | None] = mapped_column(JSON)


class JobDependency(Base):
    """One edge parent -> child of ``dependsOn``: which waiting jobs a finished job settles."""

    __tablename__ = "job_dependencies"

    parent_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True, index=True)


class BatchChunk(Base):
    """One task of a batch job: ``size`` prompts, claimed and retried on its own."""

    __tablename__ = "batch_chunks"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    urls: Mapped[list[str] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class UsageRecord(Base):
    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    credits: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` on a create (``app.idempotency``): the primary key is
    what makes two identical requests at once create one job, on any database."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(MAX_JOB_ID_LENGTH))
    created_at: Mapped[datetime]


class WebhookSecret(Base):
    """A user's webhook signing secret (``app.webhooks``); the previous one keeps signing
    beside it for a while after a rotation."""

    __tablename__ = "webhook_secrets"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    previous_key: Mapped[str | None] = mapped_column(String(128))
    rotated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
