"""How a job is shown: the JSON of ``GET /api/jobs/{id}`` and of every ``jobUpdate``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from app.jobs.types import BATCH


class JobView(TypedDict):
    jobId: str
    type: str
    status: str
    progress: int
    resultUrl: str | None
    resultUrls: list[str] | None
    error: str | None
    createdAt: str
    updatedAt: str


def iso(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a ``Z``, as JavaScript's ``toISOString``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def job_view(row: Any) -> JobView:
    """``row`` is a ``jobs`` row (anything with its column attributes)."""
    result = row.result or {}
    urls: list[str] | None = result.get("urls") if row.type == BATCH else None
    url: str | None = result.get("url")
    if row.type == BATCH and urls:
        url = urls[0]
    return JobView(
        jobId=row.id,
        type=row.type,
        status=row.status,
        progress=row.progress,
        resultUrl=url,
        resultUrls=urls if row.type == BATCH else None,
        error=row.error,
        createdAt=iso(row.created_at),
        updatedAt=iso(row.updated_at),
    )
