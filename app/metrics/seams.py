"""Where the metrics are fed from without touching the job logic: a tee on the ``JobEvents``
stream, and providers wrapped so that every call is timed and every error counted."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.events import JobEvents, JobUpdate
from app.jobs.records import JobRecord
from app.jobs.store import JobStore
from app.metrics.registry import AppMetrics, elapsed
from app.models import FINISHED, JobStatus
from app.providers.base import Providers, ProviderTask, Submitted, TaskReady
from daygen_queue import Clock

log = logging.getLogger("app.metrics")


class MeteredJobEvents:
    """A ``JobEvents`` that counts every job reaching a final status, then hands the update
    on to ``inner`` unchanged. An update published without its record (``JobUpdate.job``) is
    looked up in the store; counting never fails a publish."""

    def __init__(self, inner: JobEvents, metrics: AppMetrics, store: JobStore) -> None:
        self.inner = inner
        self.metrics = metrics
        self.store = store

    async def publish(self, update: JobUpdate) -> None:
        if update.status in FINISHED:
            try:
                job = update.job or await self.store.get_job(update.job_id)
                if job is not None:
                    self.metrics.job_finished(job, await self._refunded(job))
            except Exception:
                log.exception("counting a finished job failed", extra={"job_id": update.job_id})
        await self.inner.publish(update)

    async def _refunded(self, job: JobRecord) -> int:
        """What the job's final transition gave back: nothing for a completed job, its whole
        cost for a failed one, and for a cancelled one what it was not charged for (a
        cancelled batch pays for its completed chunks: the usage record says how much)."""
        if job.status == JobStatus.COMPLETED:
            return 0
        if job.status == JobStatus.CANCELLED and (job.result or {}).get("urls"):
            charged = sum(entry.credits for entry in await self.store.usage_for(job.id))
            return max(0, job.cost - charged)
        return job.cost


class _TimedProvider:
    """A provider whose every coroutine method is timed and whose errors are counted; every
    other attribute (and its class, for ``isinstance``) is read through. The wrapped methods
    are set on the instance when it is made, so protocol checks that look attributes up
    statically (``isinstance`` against a runtime-checkable protocol, Python 3.12+) see them."""

    def __init__(self, inner: Any, name: str, metrics: AppMetrics, clock: Clock) -> None:
        self._inner, self._name, self._metrics, self._clock = inner, name, metrics, clock
        for attribute in dir(inner):
            if attribute.startswith("_"):
                continue
            value = getattr(inner, attribute, None)
            if inspect.iscoroutinefunction(value):
                setattr(self, attribute, self._timed(attribute, value))

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        """The provider's own class, so ``isinstance(provider, BflProvider)`` still holds (the
        idiom of transparent proxies such as ``unittest.mock``'s ``spec``)."""
        return type(self._inner)

    def _timed(self, operation: str, call: Callable[..., Awaitable[Any]]) -> Any:
        metrics, name, clock = self._metrics, self._name, self._clock

        @functools.wraps(call)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock.now()
            try:
                result = await call(*args, **kwargs)
            except Exception as error:
                metrics.provider_error(name, error)
                raise
            finally:
                metrics.provider_call(name, operation, elapsed(start, clock.now()) or 0.0)
            _observe_render(metrics, name, clock, operation, args, kwargs, result, start)
            return result

        return timed


def _observe_render(
    metrics: AppMetrics,
    name: str,
    clock: Clock,
    operation: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    result: Any,
    start: datetime,
) -> None:
    """A remote task seen finished: by the poll that found it ready (from the submission the
    task records), or by a submit that answered finished at once (Replicate's ``Prefer:
    wait``)."""
    if operation == "poll" and isinstance(result, TaskReady):
        task = args[0] if args else kwargs.get("task")
        if isinstance(task, ProviderTask):
            metrics.provider_task_done(name, elapsed(task.submitted_at, clock.now()))
    elif (
        operation == "submit"
        and isinstance(result, Submitted)
        and isinstance(result.state, TaskReady)
    ):
        metrics.provider_task_done(name, elapsed(start, clock.now()))


def metered_providers(providers: Providers, metrics: AppMetrics, clock: Clock) -> Providers:
    """``providers`` with every provider (local and remote) timed and its errors counted,
    under the name a job request uses for it (``bfl``, ``upscale``, ``local``...)."""

    def wrap(table: dict[str, Any]) -> dict[str, Any]:
        return {name: _TimedProvider(p, name, metrics, clock) for name, p in table.items()}

    return replace(
        providers,
        image=wrap(providers.image),
        video=wrap(providers.video),
        upscale=wrap(providers.upscale),
        remote=wrap(providers.remote),
    )
