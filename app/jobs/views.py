"""How a job is shown: the JSON of ``GET /api/jobs/{id}`` and of every ``jobUpdate``."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from app.jobs.records import JobRecord


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


def job_view(job: JobRecord) -> JobView:
    """``resultUrls`` is for a job made of chunks (its results in prompt order, ``resultUrl``
    the first); any other job has one ``resultUrl``."""
    result = job.result or {}
    urls: list[str] | None = result.get("urls")
    url: str | None = result.get("url") or (urls[0] if urls else None)
    return JobView(
        jobId=job.id,
        type=job.type,
        status=job.status,
        progress=job.progress,
        resultUrl=url,
        resultUrls=urls,
        error=job.error,
        createdAt=iso(job.created_at),
        updatedAt=iso(job.updated_at),
    )
