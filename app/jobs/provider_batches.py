"""A batch's chunks on a remote image provider (BFL): every image of the chunk submitted by the
chunk's delivery, then one poll task per chunk until all are ready.

The same rules as a whole job (``app.jobs.provider_polling``), per image: each image's task is
kept in ``provider_tasks`` (``position`` = its prompt's index) before the delivery answers; a
redelivered chunk adopts the tasks already stored and submits only the missing ones; a poll
downloads and stores each image as soon as its task is ready (the links expire) and completes
the chunk with the last one, in prompt order. One image failing for good (moderation, error)
fails the chunk, hence the batch (refunded, as a local batch). A transient failure of one
image's poll (429, 5xx, an expired link) leaves it for the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from app.jobs.handlers import chunk_prompts
from app.jobs.outcome import Outcome, ack
from app.jobs.provider_polling import AwaitingProvider, RemoteJobs, retry_after_headers
from app.jobs.provider_tasks import BatchProviderTasks, ProviderTaskRecord
from app.jobs.records import JobRecord
from app.jobs.types import JobType
from app.models import FINISHED, JobStatus
from app.providers.base import (
    ImageTaskRequest,
    ProviderError,
    RemoteTaskProvider,
    TaskReady,
    TaskRunning,
)
from app.services import Services
from daygen_queue import TaskAlreadyExists

__all__ = ["RemoteBatches"]

log = logging.getLogger("app.jobs.provider_batches")

BATCH_TYPE = "batch-generation"


class RemoteBatches:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.remote = RemoteJobs(services)
        self.tasks = BatchProviderTasks(services.store.db)

    def adapter_for(self, job_type: str, params: dict[str, Any]) -> RemoteTaskProvider[Any] | None:
        if job_type != BATCH_TYPE:
            return None
        return self.services.providers.remote_provider(str(params.get("provider")))

    async def start(
        self, job_type: JobType[Any], job: JobRecord, chunk: int, attempt: int
    ) -> dict[str, Any]:
        """Submit the chunk's images not yet submitted, then raise ``AwaitingProvider``."""
        adapter = self.adapter_for(job_type.name, job.params)
        assert adapter is not None
        prompts = chunk_prompts(job.params, chunk)
        positions = [position for position, _ in prompts]
        now = self.services.clock.now()
        if not await self.tasks.adopt(job.id, chunk, positions, attempt, now):
            raise AwaitingProvider("superseded")
        stored = await self.tasks.of(job.id, positions)
        params = job.params
        seed = params.get("seed")
        first = 1.0
        submitted_ids = []
        for position, prompt in prompts:
            if position in stored:
                continue
            request = ImageTaskRequest(
                model=params["model"],
                prompt=prompt,
                width=int(params.get("width") or 1024),
                height=int(params.get("height") or 1024),
                seed=None if seed is None else (seed + position) % 2**32,
                options={k: v for k, v in (params.get("options") or {}).items() if v is not None},
            )
            submitted = await adapter.submit(request)
            kept = await self.tasks.save(
                job.id, chunk, position, attempt, submitted.task, self.services.clock.now()
            )
            if not kept:
                with contextlib.suppress(ProviderError):
                    await adapter.cancel(submitted.task)
                raise AwaitingProvider("superseded")
            submitted_ids.append(submitted.task.task_id)
            if isinstance(submitted.state, TaskRunning):
                first = min(first, submitted.state.poll_after)
        log.info(
            "batch %s chunk %d attempt %d: %d submitted, %d adopted",
            job.id,
            chunk,
            attempt,
            len(submitted_ids),
            len(positions) - len(submitted_ids),
        )
        await self._schedule(job_type, job, chunk, attempt, 1, first)
        raise AwaitingProvider(",".join(submitted_ids) or "adopted", adopted=not submitted_ids)

    async def poll(
        self, job_type: JobType[Any], job_id: str, chunk: int, attempt: int, number: int
    ) -> Outcome:
        store = self.services.store
        job = await store.get_job(job_id)
        if job is None:
            return ack("unknown_job")
        if job.status in FINISHED:
            return ack("already_finished", status=job.status)
        mine = [c for c in await store.chunks(job_id) if c.position == chunk]
        if not mine or mine[0].status != JobStatus.PROCESSING or mine[0].attempts != attempt:
            return ack("superseded")
        adapter = self.adapter_for(job_type.name, job.params)
        if adapter is None:
            message = f"provider {job.params.get('provider')!r} is no longer configured"
            await self.remote._publish(await store.fail_chunk(job_id, chunk, attempt, message))
            return ack("failed", error=message)
        positions = [position for position, _ in chunk_prompts(job.params, chunk)]
        stored = await self.tasks.of(job_id, positions)
        if set(stored) != set(positions) or any(r.attempt != attempt for r in stored.values()):
            return ack("superseded")
        waiting = [row for row in stored.values() if row.result_url is None]
        outcomes = await asyncio.gather(*(self._advance(job, adapter, row) for row in waiting))
        failures = [o for o in outcomes if isinstance(o, ProviderError) and not o.retryable]
        if failures:
            failed = await store.fail_chunk(job_id, chunk, attempt, failures[0].message)
            await self.remote._publish(failed)
            return ack("failed", error=failures[0].message)
        rows = await self.tasks.of(job_id, positions)
        if all(rows[p].result_url is not None for p in positions):
            urls = [str(rows[p].result_url) for p in positions]
            finished = await store.complete_chunk(job_id, chunk, attempt, urls)
            await self.remote._publish(finished)
            return ack("chunk_completed")
        oldest = min(row.submitted_at for row in stored.values())
        elapsed = (self.services.clock.now() - oldest).total_seconds()
        if elapsed > adapter.deadline_seconds:
            message = f"the {adapter.name} tasks did not finish in time"
            await self.remote._publish(await store.fail_chunk(job_id, chunk, attempt, message))
            return ack("failed", error=message)
        done = sum(1 for p in positions if rows[p].result_url is not None)
        await self.remote._publish(await store.chunk_progress(job_id, chunk, attempt, done))
        delays = [o.poll_after for o in outcomes if isinstance(o, TaskRunning)]
        delays += [max(1.0, o.retry_after or 0.0) for o in outcomes if isinstance(o, ProviderError)]
        await self._schedule(job_type, job, chunk, attempt, number + 1, min(delays or [1.0]))
        transient = [o for o in outcomes if isinstance(o, ProviderError)]
        if transient:
            log.info("batch %s chunk %d: %d polls to retry", job_id, chunk, len(transient))
            return Outcome(200, {"result": "running"}, retry_after_headers(transient[0]))
        return ack("running", done=done)

    async def _advance(
        self, job: JobRecord, adapter: RemoteTaskProvider[Any], row: ProviderTaskRecord
    ) -> TaskRunning | ProviderError | None:
        """Poll one image; store it when ready (``None``); its error, if it failed."""
        try:
            state = await adapter.poll(row.task)
            if isinstance(state, TaskRunning):
                return state
            assert isinstance(state, TaskReady)
            output = await adapter.download(state)
        except ProviderError as error:
            return error
        key = f"jobs/{job.id}/{row.position:03d}.png"
        url = await self.services.storage.save(key, output.data, output.content_type)
        await self.tasks.done(job.id, row.position, url, self.services.clock.now())
        return None

    async def _schedule(
        self,
        job_type: JobType[Any],
        job: JobRecord,
        chunk: int,
        attempt: int,
        number: int,
        delay: float,
    ) -> None:
        """The chunk's next poll, on the queue of the job's priority."""
        task = self.remote.poll_task(
            job_type,
            job.id,
            attempt,
            number,
            delay,
            name=f"{job.id}-c{chunk}-a{attempt}-p{number}",
            chunk=chunk,
        )
        with contextlib.suppress(TaskAlreadyExists):
            await self.services.queue.create_task(job_type.queue_for(job.priority), task)
