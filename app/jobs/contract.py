"""Everything checked at creation beyond the body's shape: settings given twice, the serving
provider's limits and options, and the source URLs' SSRF rules where they can be judged
without a fetch. A request that passes is what the job will run; one that does not is a 422
naming each field, and nothing is charged."""

from __future__ import annotations

from typing import Any

from app.jobs.options import resolve_request
from app.jobs.planning import checked_job_ref
from app.jobs.schemas import JobRequest
from app.jobs.types import JobType
from app.providers.guard import FetchGuard, FetchRefused
from app.services import Services

__all__ = ["PROVIDER_KINDS", "request_problems"]

PROVIDER_KINDS = {
    "image-generation": "image",
    "batch-generation": "image",
    "video-generation": "video",
    "image-upscale": "upscale",
}
"""Which provider table (``Providers.image`` ...) serves each job type."""


def request_problems(
    services: Services, job_type: JobType[Any], request: JobRequest
) -> dict[str, str]:
    """``{field: problem}`` for a validated body; empty when the job may be created (the
    request then holds the merged settings the handler will read)."""
    problems = request.reconcile()
    if problems:
        return problems
    kind = PROVIDER_KINDS.get(job_type.name)
    caps = (
        services.providers.capabilities(kind, request.provider or "", request.model)
        if kind is not None
        else None
    )
    problems = resolve_request(request, caps)
    guard = FetchGuard.from_settings(services.settings)
    for field, url in request.source_urls().items():
        if services.storage.key_for_url(url) is not None or checked_job_ref(url) is not None:
            continue  # one of our results (or a parent's, ``job:<id>``): never fetched
        try:
            guard.check_url(url)
        except FetchRefused as refused:
            problems[field] = refused.message
    return problems
