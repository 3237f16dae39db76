"""The four job types, one ``JobType`` record each: everything the app knows about a kind of
job (request schema and its model registry, cost, queue, attempts, timeouts, handler,
chunking) in one place, the way arq keeps a job kind in one ``Function``.

The API, submit, the processor and the reconciler all read the record; none of them names a
job type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from app.jobs.handlers import Handler, run_batch_chunk, run_image, run_upscale, run_video
from app.jobs.priorities import DEFAULT_PRIORITY, queue_name, split_budget
from app.jobs.retry_policy import DEFAULT_POLICIES, RetryPolicy, policy_for
from app.jobs.schemas import (
    BatchGenerationRequest,
    ImageGenerationRequest,
    ImageUpscaleRequest,
    JobRequest,
    VideoGenerationRequest,
)
from daygen_queue import QueueConfig, RateLimits, RetryConfig

RequestT = TypeVar("RequestT", bound=JobRequest)


@dataclass(frozen=True, slots=True)
class JobType(Generic[RequestT]):
    name: str
    request: type[RequestT]
    """The body of ``POST /api/jobs/<name>``."""
    cost: Callable[[RequestT], int]
    """Credits a request costs, reserved at creation, refunded if the job fails."""
    handler: Handler
    """Runs the job (or, with ``chunk_sizes``, one chunk of it)."""
    chunk_sizes: Callable[[RequestT], list[int]] | None = None
    """With it, a job fans out into one task per chunk, each claimed and retried on its own;
    the job completes with its last chunk and fails with the first that fails for good."""
    run_timeout: timedelta = timedelta(minutes=5)
    dispatch_deadline: timedelta = timedelta(minutes=10)

    @property
    def queue(self) -> str:
        """The queue of its ``normal`` jobs (see ``queue_for`` for the others)."""
        return queue_name(self.name, DEFAULT_PRIORITY)

    def queue_for(self, priority: str) -> str:
        """The queue of its jobs of ``priority`` (``app.jobs.priorities``)."""
        return queue_name(self.name, priority)

    def retry_policy(self, overrides: dict[str, dict[str, Any]] | None = None) -> RetryPolicy:
        """Its retry strategy (``app.jobs.retry_policy``) under ``Settings.retry_policies``."""
        return policy_for(self.name, overrides or {})

    @property
    def max_attempts(self) -> int:
        """The app's own limit under the default policy: Cloud Tasks' max_attempts AND
        max_retry_duration combine, so the queue alone would retry for up to an hour."""
        return DEFAULT_POLICIES[self.name].max_attempts

    @property
    def models(self) -> dict[str, str]:
        """model -> provider, as the request schema validates it."""
        return self.request.models

    @property
    def chunked(self) -> bool:
        return self.chunk_sizes is not None

    def chunks(self, request: RequestT) -> list[int]:
        """The sizes of the job's chunks; empty for a job that runs whole."""
        return [] if self.chunk_sizes is None else self.chunk_sizes(request)


def flat(credits: int) -> Callable[[JobRequest], int]:
    """The same price for every request."""
    return lambda _request: credits


def per_prompt(credits: int) -> Callable[[BatchGenerationRequest], int]:
    """A price per image of a batch."""
    return lambda request: credits * len(request.prompts)


JOB_TYPES: dict[str, JobType[Any]] = {
    job_type.name: job_type
    for job_type in (
        JobType("image-generation", ImageGenerationRequest, cost=flat(1), handler=run_image),
        JobType(
            "video-generation",
            VideoGenerationRequest,
            cost=flat(5),
            handler=run_video,
            run_timeout=timedelta(minutes=20),
            dispatch_deadline=timedelta(minutes=30),
        ),
        JobType("image-upscale", ImageUpscaleRequest, cost=flat(2), handler=run_upscale),
        JobType(
            "batch-generation",
            BatchGenerationRequest,
            cost=per_prompt(1),
            handler=run_batch_chunk,
            chunk_sizes=BatchGenerationRequest.chunk_sizes,
        ),
    )
}


def queue_config(
    job_type: JobType[Any],
    *,
    max_dispatches_per_second: float = 10.0,
    max_concurrent_dispatches: int = 100,
    retry_config: RetryConfig | None = None,
) -> QueueConfig:
    """One queue of the type with the given limits and its default retry policy (the seed's:
    the type's attempts within 1 h, backoff 1 s -> 60 s)."""
    return QueueConfig(
        name=job_type.queue,
        rate_limits=RateLimits(
            max_dispatches_per_second=max_dispatches_per_second,
            max_concurrent_dispatches=max_concurrent_dispatches,
        ),
        retry_config=retry_config or job_type.retry_policy().retry_config(),
    )


def queue_configs(
    job_type: JobType[Any],
    *,
    max_dispatches_per_second: float = 10.0,
    max_concurrent_dispatches: int = 100,
    retry_policies: dict[str, dict[str, Any]] | None = None,
) -> list[QueueConfig]:
    """The type's three queues, one per priority, sharing its budget (``split_budget``), each
    with the type's retry policy: what ``queues.toml`` lists and the app ensures at start-up."""
    retry = job_type.retry_policy(retry_policies).retry_config()
    return [
        QueueConfig(
            name=job_type.queue_for(share.priority),
            rate_limits=RateLimits(
                max_dispatches_per_second=share.max_dispatches_per_second,
                max_concurrent_dispatches=share.max_concurrent_dispatches,
            ),
            retry_config=retry,
        )
        for share in split_budget(max_dispatches_per_second, max_concurrent_dispatches)
    ]
