"""How a job is shown: the JSON of ``GET /api/jobs/{id}`` and of every ``jobUpdate``.

A job's result holds stable reference URLs (``{API_BASE_URL}/media/<key>``, see
``app.storage``). Where a view can reach the storage, :func:`signed_job_view` swaps each for
the URL the owner fetches right now (a V4 signed Cloud Storage URL, valid for
``MEDIA_URL_TTL_SECONDS``), so nothing that expires is ever kept in the database. A reference
left as it is still works: ``/media/<key>`` redirects to a freshly signed URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from typing_extensions import TypedDict  # pydantic describes it (OpenAPI) on Python 3.11

from app.jobs.records import JobRecord
from app.storage import Storage

log = logging.getLogger("app.jobs.views")


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
    priority: str
    runAt: str | None
    dependsOn: list[str]
    waitingFor: list[str]
    """While WAITING: the parents not yet COMPLETED (empty otherwise)."""


def iso(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a ``Z``, as JavaScript's ``toISOString``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def result_references(job: JobRecord) -> list[str]:
    """Every URL kept in the job's result (``url``, then ``urls`` in prompt order)."""
    result = job.result or {}
    refs: list[str] = list(result.get("urls") or [])
    url = result.get("url")
    if url and url not in refs:
        refs.insert(0, url)
    return refs


def job_view(job: JobRecord, links: Mapping[str, str] | None = None) -> JobView:
    """``resultUrls`` is for a job made of chunks (its results in prompt order, ``resultUrl``
    the first); any other job has one ``resultUrl``. ``links`` maps a stored reference to the
    URL to show instead (see :func:`signed_job_view`)."""
    links = links or {}
    result = job.result or {}
    urls: list[str] | None = result.get("urls")
    if urls is not None:
        urls = [links.get(u, u) for u in urls]
    url: str | None = result.get("url")
    url = links.get(url, url) if url else (urls[0] if urls else None)
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
        priority=job.priority,
        runAt=iso(job.run_at) if job.run_at is not None else None,
        dependsOn=list(job.depends_on or []),
        waitingFor=list(job.waiting_for or []),
    )


async def result_links(job: JobRecord, storage: Storage) -> dict[str, str]:
    """For each of the job's references into ``storage``: the URL its owner fetches now.

    A reference that cannot be signed right now (IAM unreachable...) is shown as it is: the
    view still answers, and the reference's ``/media/`` redirect signs when it is followed.
    """
    pairs = [(ref, storage.key_for_url(ref)) for ref in result_references(job)]
    ours = [(ref, key) for ref, key in pairs if key is not None]
    fetchable = await asyncio.gather(
        *(storage.fetch_url(key) for _ref, key in ours), return_exceptions=True
    )
    links: dict[str, str] = {}
    for (ref, _key), url in zip(ours, fetchable, strict=True):
        if isinstance(url, BaseException):
            if not isinstance(url, Exception):
                raise url
            log.warning("could not sign a result URL: %r", url, extra={"job_id": job.id})
            continue
        links[ref] = url
    return links


async def signed_job_view(job: JobRecord, storage: Storage) -> JobView:
    """The view with fetchable (signed, where the storage signs) result URLs."""
    if not job.result:
        return job_view(job)
    return job_view(job, await result_links(job, storage))
