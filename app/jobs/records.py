"""Typed rows: what the store hands out instead of SQLAlchemy ``Row`` objects.

Each record is a frozen dataclass whose fields are its table's columns, so the processor, the
views and the realtime layer read ``job.type`` or ``job.params`` with types mypy checks, and a
record read from the database and one built in memory (a just-created job) are the same type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row

R = TypeVar("R")


def record(kind: type[R], row: Row[Any]) -> R:
    """``row`` as a ``kind`` (its columns by name)."""
    return kind(**row._mapping)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A ``jobs`` row."""

    id: str
    user_id: str
    type: str
    status: str
    progress: int
    params: dict[str, Any]
    result: dict[str, Any] | None
    """``{"url": ...}`` for a whole job (plus ``mimeType`` for a clip); ``{"urls": [...]}``,
    in prompt order, for a job made of chunks."""
    error: str | None
    attempts: int
    cost: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    priority: str = "normal"
    run_at: datetime | None = None
    """When its task is scheduled (``runAt``), if not at once."""
    depends_on: list[str] | None = None
    waiting_for: list[str] | None = None
    """The parents not yet COMPLETED, while the job is WAITING."""

    def values(self) -> dict[str, Any]:
        """The columns, for an INSERT."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A ``batch_chunks`` row: one task of a job made of chunks."""

    job_id: str
    position: int
    status: str
    size: int
    done: int
    attempts: int
    urls: list[str] | None
    error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A ``users`` row."""

    id: str
    credits: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """A ``usage_records`` row: what a completed job cost (one per job)."""

    id: int
    job_id: str
    user_id: str
    type: str
    credits: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of trying to take a job (or one of its chunks) for one delivery attempt."""

    won: bool
    job: JobRecord | None  # None: no such job
    job_changed: bool = False  # the job row itself moved (worth publishing)
