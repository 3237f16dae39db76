"""The create flow (DESIGN §3.1): reserve credits and save the job in one transaction, then
enqueue its task(s). An enqueue failure leaves the job PENDING for the reconciler; the job is
never lost and never enqueued twice (task names are job ids)."""

from __future__ import annotations

import logging

from app.context import Services
from app.events import JobUpdate
from app.jobs.enqueue import enqueue
from app.jobs.schemas import BatchGenerationRequest, JobRequest
from app.jobs.store import JobRecord
from app.jobs.types import job_cost
from app.jobs.views import job_view
from app.logs import job_logger

log = logging.getLogger("app.submit")


def chunk_sizes(request: JobRequest) -> list[int]:
    """Sizes of a batch's chunks (``batchSize`` prompts each, the last one the rest)."""
    if not isinstance(request, BatchGenerationRequest):
        return []
    total, size = len(request.prompts), request.batch_size
    return [min(size, total - start) for start in range(0, total, size)]


async def submit_job(
    services: Services, user_id: str, job_type: str, request: JobRequest
) -> JobRecord:
    """Raises ``InsufficientCredits``; returns the saved job (PENDING)."""
    sizes = chunk_sizes(request)
    job = await services.store.create_job(
        user_id=user_id,
        job_type=job_type,
        params=request.model_dump(mode="json"),
        cost=job_cost(job_type, request),
        chunk_sizes=sizes,
    )
    logger = job_logger("app.submit", job_id=job.id, user_id=user_id, job_type=job_type)
    logger.info("job created (cost %d)", job.cost)
    try:
        await services.events.publish(JobUpdate(user_id, job_view(job)))
    except Exception:
        logger.exception("publishing a job update failed")
    try:
        await enqueue(services.queue, services.settings, job_type, job.id, range(len(sizes)))
    except Exception:
        logger.exception("enqueue failed; the reconciler will retry it")
    return job
