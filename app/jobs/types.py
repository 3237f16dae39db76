"""The four job types: cost, queue, request schema and attempt limit, in one registry.

The cost table and the queue configuration are pure functions so they are tested without I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel

from app.jobs.schemas import (
    BatchGenerationRequest,
    ImageGenerationRequest,
    ImageUpscaleRequest,
    JobRequest,
    VideoGenerationRequest,
)
from daygen_queue import QueueConfig, RateLimits, RetryConfig

IMAGE, VIDEO, UPSCALE, BATCH = (
    "image-generation",
    "video-generation",
    "image-upscale",
    "batch-generation",
)

# Credits per job (per image for batches).
COSTS: dict[str, int] = {IMAGE: 1, VIDEO: 5, UPSCALE: 2, BATCH: 1}


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    request: type[JobRequest]
    max_attempts: int = 3
    """The app's own limit: Cloud Tasks' max_attempts AND max_retry_duration combine, so the
    queue alone would retry for up to an hour."""
    run_timeout: timedelta = timedelta(minutes=5)
    dispatch_deadline: timedelta = timedelta(minutes=10)

    @property
    def queue(self) -> str:
        return f"{self.name}-queue"


JOB_TYPES: dict[str, JobType] = {
    IMAGE: JobType(IMAGE, ImageGenerationRequest),
    VIDEO: JobType(
        VIDEO,
        VideoGenerationRequest,
        run_timeout=timedelta(minutes=20),
        dispatch_deadline=timedelta(minutes=30),
    ),
    UPSCALE: JobType(UPSCALE, ImageUpscaleRequest),
    BATCH: JobType(BATCH, BatchGenerationRequest),
}


def job_cost(job_type: str, request: BaseModel) -> int:
    """Credits a job costs: image 1, video 5, upscale 2, batch 1 per image."""
    if isinstance(request, BatchGenerationRequest):
        return COSTS[BATCH] * len(request.prompts)
    return COSTS[job_type]


def chunk_count(prompts: int, batch_size: int) -> int:
    return math.ceil(prompts / batch_size)


def queue_config(
    job_type: JobType,
    *,
    max_dispatches_per_second: float = 10.0,
    max_concurrent_dispatches: int = 100,
) -> QueueConfig:
    """The seed's production queue: 10/s, 100 concurrent, 3 attempts within 1 h, backoff
    1 s -> 60 s (the same values as ``queues.toml``)."""
    return QueueConfig(
        name=job_type.queue,
        rate_limits=RateLimits(
            max_dispatches_per_second=max_dispatches_per_second,
            max_concurrent_dispatches=max_concurrent_dispatches,
        ),
        retry_config=RetryConfig(
            max_attempts=3,
            max_retry_duration=timedelta(hours=1),
            min_backoff=timedelta(seconds=1),
            max_backoff=timedelta(seconds=60),
            max_doublings=16,
        ),
    )
