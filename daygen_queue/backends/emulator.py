"""``EmulatorBackend``: ``TaskQueue`` over the in-process emulator engine.

To ``TaskQueue`` what httpx's ``MockTransport`` is to a transport: a complete, documented
implementation that runs without a network service, not a test double. Deliveries are real
(HTTP by default, with real bodies and headers); on a ``VirtualClock`` time only moves through
``run_until_idle()`` and ``advance()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import emulator as emu
from daygen_queue.clock import Clock
from daygen_queue.config import QueueConfig, RateLimits, RetryConfig
from daygen_queue.errors import (
    InvalidArgument,
    QueueAlreadyExists,
    QueueError,
    QueueNotFound,
    QueueRecentlyDeleted,
    TaskAlreadyExists,
    TaskNotFound,
)
from daygen_queue.tasks import (
    Attempt,
    HttpMethod,
    HttpRequest,
    NewTask,
    OidcToken,
    Queue,
    QueueState,
    QueueStats,
    Task,
)

DEFAULT_PROJECT = "local-project"
DEFAULT_LOCATION = "local"


def translate_error(error: emu.EmulatorError) -> QueueError:
    """The emulator's error as the ``daygen_queue`` error of the same meaning."""
    if isinstance(error, emu.NotFound):
        return (TaskNotFound if error.resource == "task" else QueueNotFound)(error.message)
    if isinstance(error, emu.AlreadyExists):
        return (TaskAlreadyExists if error.resource == "task" else QueueAlreadyExists)(
            error.message
        )
    if isinstance(error, emu.FailedPrecondition):
        return QueueRecentlyDeleted(error.message)
    if isinstance(error, emu.InvalidArgument):
        return InvalidArgument(error.message)
    return QueueError(error.message)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except emu.EmulatorError as error:
        raise translate_error(error) from None


def queue_spec(config: QueueConfig, name: str) -> emu.QueueSpec:
    rate, retry = config.rate_limits, config.retry_config
    return emu.QueueSpec(
        name=name,
        rate_limits=emu.RateLimits(
            max_dispatches_per_second=rate.max_dispatches_per_second,
            max_concurrent_dispatches=rate.max_concurrent_dispatches,
        ),
        retry_config=emu.RetryConfig(
            max_attempts=retry.max_attempts,
            max_retry_duration=retry.max_retry_duration,
            min_backoff=retry.min_backoff,
            max_backoff=retry.max_backoff,
            max_doublings=retry.max_doublings,
        ),
    )


def queue_model(record: emu.QueueRecord, stats: emu.QueueStats | None = None) -> Queue:
    rate, retry = record.rate_limits, record.retry_config
    config = QueueConfig(
        name=record.short_id,
        rate_limits=RateLimits(
            max_dispatches_per_second=rate.max_dispatches_per_second,
            max_concurrent_dispatches=rate.max_concurrent_dispatches,
            max_burst_size=rate.max_burst_size,
        ),
        retry_config=RetryConfig(
            max_attempts=retry.max_attempts,
            max_retry_duration=retry.max_retry_duration,
            min_backoff=retry.min_backoff,
            max_backoff=retry.max_backoff,
            max_doublings=retry.max_doublings,
        ),
    )
    return Queue(
        config=config,
        state=QueueState[record.state.name],
        purge_time=record.purge_time,
        stats=None
        if stats is None
        else QueueStats(
            tasks_count=stats.tasks_count,
            oldest_estimated_arrival_time=stats.oldest_estimated_arrival_time,
            executed_last_minute_count=stats.executed_last_minute_count,
            concurrent_dispatches_count=stats.concurrent_dispatches_count,
            effective_execution_rate=stats.effective_execution_rate,
        ),
    )


def load_queue_configs(path: str | Path) -> list[QueueConfig]:
    """A queues file (the emulator's ``--queues`` TOML) as ``QueueConfig``s, read by the
    emulator's own parser: one format and one parser for the emulator's start-up and for
    ``daygen-queue apply`` on any backend. Raises ``ValueError`` naming the bad key."""
    from emulator.queues_file import load_queues

    return [
        queue_model(emu.QueueRecord(entry.name, entry.rate_limits, entry.retry_config)).config
        for entry in load_queues(path)
    ]


def _attempt_model(attempt: emu.Attempt | None) -> Attempt | None:
    if attempt is None:
        return None
    return Attempt(
        schedule_time=attempt.schedule_time,
        dispatch_time=attempt.dispatch_time,
        response_time=attempt.response_time,
        response_code=attempt.response_code,
        response_message=attempt.response_message,
    )


def task_model(record: emu.TaskRecord) -> Task:
    target = record.http_request
    oidc = target.oidc_token
    return Task(
        name=record.short_id,
        queue=record.queue.rsplit("/", 1)[-1],
        http_request=HttpRequest.model_construct(
            url=target.url,
            http_method=cast(HttpMethod, target.http_method),
            headers=dict(target.headers),
            body=target.body,
            oidc_token=None
            if oidc is None
            else OidcToken(
                service_account_email=oidc.service_account_email, audience=oidc.audience
            ),
        ),
        schedule_time=record.schedule_time,
        create_time=record.create_time,
        dispatch_deadline=record.dispatch_deadline,
        dispatch_count=record.dispatch_count,
        response_count=record.response_count,
        first_attempt=_attempt_model(record.first_attempt),
        last_attempt=_attempt_model(record.last_attempt),
    )


def task_spec(task: NewTask, queue_name: str) -> emu.NewTaskSpec:
    request = task.http_request
    oidc = request.oidc_token
    return emu.NewTaskSpec(
        http_request=emu.HttpTarget(
            url=request.url,
            http_method=request.http_method,
            headers=dict(request.headers),
            body=request.body,
            oidc_token=None
            if oidc is None
            else emu.OidcToken(oidc.service_account_email, oidc.audience),
        ),
        name=None if task.name is None else f"{queue_name}/tasks/{task.name}",
        schedule_time=task.schedule_time,
        dispatch_deadline=task.dispatch_deadline,
    )


class EmulatorBackend:
    """A ``TaskQueue`` backed by an in-process ``emulator.Engine``.

    Testing surface: ``run_until_idle()``, ``advance()`` and ``events`` (every state change,
    with its clock time).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        dispatcher: emu.Dispatcher | None = None,
        store: emu.Store | None = None,
        project: str = DEFAULT_PROJECT,
        location: str = DEFAULT_LOCATION,
        engine: emu.Engine | None = None,
        **engine_options: Any,
    ) -> None:
        self.engine = engine or emu.Engine(
            clock=clock, dispatcher=dispatcher, store=store, **engine_options
        )
        self.parent = f"projects/{project}/locations/{location}"

    @property
    def events(self) -> emu.EventStream:
        return self.engine.events

    @property
    def clock(self) -> emu.Clock:
        return self.engine.clock

    def queue_path(self, queue: str) -> str:
        return f"{self.parent}/queues/{queue}"

    def task_path(self, queue: str, task: str) -> str:
        return f"{self.parent}/queues/{queue}/tasks/{task}"

    async def start(self) -> None:
        await self.engine.start()

    async def create_queue(self, config: QueueConfig) -> Queue:
        await self.engine.start()
        with translated():
            record = await self.engine.create_queue(
                queue_spec(config, self.queue_path(config.name))
            )
        return queue_model(record)

    async def update_queue(self, config: QueueConfig) -> Queue:
        await self.engine.start()
        with translated():
            record = await self.engine.update_queue(
                queue_spec(config, self.queue_path(config.name))
            )
        return queue_model(record)

    async def ensure_queue(self, config: QueueConfig) -> Queue:
        try:
            current = await self.get_queue(config.name)
        except QueueNotFound:
            return await self.create_queue(config)
        if current.config.same_settings(config):
            return current
        return await self.update_queue(config)

    async def get_queue(self, name: str) -> Queue:
        await self.engine.start()
        path = self.queue_path(name)
        with translated():
            return queue_model(self.engine.get_queue(path), self.engine.queue_stats(path))

    async def list_queues(self) -> list[Queue]:
        await self.engine.start()
        return [queue_model(record) for record in self.engine.list_queues(self.parent)]

    async def delete_queue(self, name: str) -> None:
        await self.engine.start()
        with translated():
            await self.engine.delete_queue(self.queue_path(name))

    async def pause_queue(self, name: str) -> Queue:
        await self.engine.start()
        with translated():
            return queue_model(await self.engine.pause_queue(self.queue_path(name)))

    async def resume_queue(self, name: str) -> Queue:
        await self.engine.start()
        with translated():
            return queue_model(await self.engine.resume_queue(self.queue_path(name)))

    async def purge_queue(self, name: str) -> Queue:
        await self.engine.start()
        with translated():
            return queue_model(await self.engine.purge_queue(self.queue_path(name)))

    async def create_task(self, queue: str, task: NewTask) -> Task:
        await self.engine.start()
        path = self.queue_path(queue)
        with translated():
            return task_model(await self.engine.create_task(path, task_spec(task, path)))

    async def get_task(self, queue: str, task: str) -> Task:
        await self.engine.start()
        with translated():
            return task_model(self.engine.get_task(self.task_path(queue, task)))

    async def list_tasks(self, queue: str) -> list[Task]:
        await self.engine.start()
        with translated():
            return [task_model(record) for record in self.engine.list_tasks(self.queue_path(queue))]

    async def delete_task(self, queue: str, task: str) -> None:
        await self.engine.start()
        with translated():
            await self.engine.delete_task(self.task_path(queue, task))

    async def run_task(self, queue: str, task: str) -> Task:
        await self.engine.start()
        with translated():
            return task_model(await self.engine.run_task(self.task_path(queue, task)))

    async def run_until_idle(self) -> None:
        await self.engine.start()
        await self.engine.run_until_idle()

    async def advance(self, delta: timedelta) -> None:
        await self.engine.start()
        await self.engine.advance(delta)

    async def close(self) -> None:
        await self.engine.close()

    async def __aenter__(self) -> EmulatorBackend:
        await self.engine.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
