"""The create flow: reserve the credits and save the job in one transaction, then enqueue its
task(s). An enqueue failure leaves the job PENDING for the reconciler; the job is never lost and
never enqueued twice (task names are job ids)."""

from __future__ import annotations

from typing import Any

from app.events import JobUpdate
from app.jobs.enqueue import enqueue
from app.jobs.records import JobRecord
from app.jobs.schemas import JobRequest
from app.jobs.types import JobType
from app.jobs.views import job_view
from app.logs import job_logger
from app.services import Services


async def submit_job(
    services: Services, user_id: str, job_type: JobType[Any], request: JobRequest
) -> JobRecord:
    """Raises ``InsufficientCredits``; returns the saved job (PENDING)."""
    sizes = job_type.chunks(request)
    job = await services.store.create_job(
        user_id=user_id,
        job_type=job_type.name,
        params=request.model_dump(mode="json"),
        cost=job_type.cost(request),
        chunk_sizes=sizes,
    )
    logger = job_logger("app.submit", job_id=job.id, user_id=user_id, job_type=job_type.name)
    logger.info("job created (cost %d)", job.cost)
    services.metrics.job_created(job)
    await services.events.publish(JobUpdate(user_id, job_view(job), job))
    try:
        await enqueue(services.queue, services.settings, job_type, job.id, range(len(sizes)))
    except Exception:
        logger.exception("enqueue failed; the reconciler will retry it")
    return job
