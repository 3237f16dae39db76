"""The create flow: reserve the credits and save the job in one transaction, then enqueue its
task(s). An enqueue failure leaves the job PENDING for the reconciler; the job is never lost and
never enqueued twice (task names are job ids)."""

from __future__ import annotations

from typing import Any

from app.events import JobUpdate
from app.jobs.enqueue import enqueue_job
from app.jobs.planning import PLANNING_FIELDS, parent_fields
from app.jobs.records import JobRecord
from app.jobs.scheduling import effective_run_at
from app.jobs.schemas import JobRequest
from app.jobs.types import JobType
from app.jobs.views import job_view
from app.logs import job_logger
from app.models import JobStatus
from app.services import Services


async def submit_job(
    services: Services,
    user_id: str,
    job_type: JobType[Any],
    request: JobRequest,
    *,
    job_id: str | None = None,
) -> JobRecord:
    """Raises ``InsufficientCredits`` or ``PlanningError``; returns the saved job (PENDING,
    or WAITING for its parents), with ``job_id`` when given."""
    sizes = job_type.chunks(request)
    job = await services.store.create_job(
        user_id=user_id,
        job_type=job_type.name,
        params=request.model_dump(mode="json", exclude=set(PLANNING_FIELDS)),
        cost=job_type.cost(request),
        chunk_sizes=sizes,
        job_id=job_id,
        priority=request.priority,
        run_at=effective_run_at(request.run_at, services.clock.now()),
        depends_on=request.depends_on,
        parent_fields=parent_fields(request),
    )
    logger = job_logger("app.submit", job_id=job.id, user_id=user_id, job_type=job_type.name)
    logger.info("job created (cost %d)", job.cost)
    services.metrics.job_created(job)
    await services.events.publish(JobUpdate(user_id, job_view(job), job))
    if job.status != JobStatus.PENDING:  # WAITING: enqueued when its parents complete
        return job
    try:
        await enqueue_job(services.queue, services.settings, job_type, job, range(len(sizes)))
    except Exception:
        logger.exception("enqueue failed; the reconciler will retry it")
    return job
