"""Prometheus metrics of the service, served at ``/metrics`` to whoever the settings allow.

The instrumentation stays out of the job logic: it watches the seams the app already has.

- ``MeteredJobEvents`` tees the ``JobEvents`` stream, where every job state change is
  published, and counts each job that reaches ``COMPLETED``, ``FAILED`` or ``CANCELLED`` (a
  finished state is published exactly once per job: only the winner of its transition
  publishes it), with its processing time and its refund.
- ``submit_job`` reports each creation (``job_created``: the job and the credits it reserved),
  the processor each won claim (``job_started``: time in queue) and each delivery's answer
  (``delivery``).
- ``metered_providers`` wraps every provider, timing each call and counting its errors by
  ``ErrorCode``.
- Live connections are read from the Socket.IO handlers and the SSE streams when Prometheus
  scrapes, so they can never drift.

Each app has its own ``CollectorRegistry`` (never the global one): tests and several apps in
one process keep separate counters. Durations read the app's clock (the system clock in
production, the virtual one in tests), from the job's own timestamps where it has them, so a
figure means the same whichever instance observed it. Names follow the emulator's metrics
(``cloudtasks_emulator_*``): one prefix, ``daygen_``, labels in snake case, ``type`` is the
job type as in the URL (``image-generation``).
"""

from __future__ import annotations

import functools
import hmac
import inspect
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.events import JobEvents, JobUpdate
from app.jobs.records import JobRecord
from app.jobs.store import JobStore
from app.models import FINISHED, JobStatus
from app.providers.base import ProviderError, Providers, ProviderTask, Submitted, TaskReady
from app.settings import Settings
from daygen_queue import Clock

log = logging.getLogger("app.metrics")

METRICS_PATH = "/metrics"

QUEUE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
PROCESSING_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TASK_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)

UNCLASSIFIED = "unclassified"
"""The ``code`` of a ``ProviderError`` that carries none."""
INTERNAL_ERROR = "internal_error"
"""The ``code`` of anything a provider raised that is not a ``ProviderError`` (a bug)."""

WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")
"""The outcomes ``webhook_delivery`` is meant to be called with: a 2xx from the receiver, a
failed attempt that will be retried, an attempt after which no retry is left."""


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _provider(job: JobRecord) -> str:
    return str(job.params.get("provider") or "unknown")


class AppMetrics:
    """Every metric of one app, and the small calls that move them.

    Other parts of the app call these methods (never the ``prometheus_client`` objects), so
    a metric's meaning lives here with its name and help text.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs_created = Counter(
            "daygen_jobs_created",
            "Jobs accepted, by type and provider",
            ["type", "provider"],
            registry=r,
        )
        self.jobs_finished = Counter(
            "daygen_jobs_finished",
            "Jobs that reached a final status (COMPLETED, FAILED, CANCELLED)",
            ["type", "provider", "status"],
            registry=r,
        )
        self.queue_seconds = Histogram(
            "daygen_job_queue_seconds",
            "From creation (or the scheduled time, if later) to the start of processing",
            ["type"],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.processing_seconds = Histogram(
            "daygen_job_processing_seconds",
            "From the start of processing to the final status, retries included",
            ["type", "provider", "status"],
            buckets=PROCESSING_BUCKETS,
            registry=r,
        )
        self.provider_seconds = Histogram(
            "daygen_provider_request_seconds",
            "Time spent in one call to a provider, by provider and operation",
            ["provider", "operation"],
            buckets=PROVIDER_BUCKETS,
            registry=r,
        )
        self.provider_task_seconds = Histogram(
            "daygen_provider_task_seconds",
            "Remote provider tasks: from submission until a poll found the task finished",
            ["provider"],
            buckets=TASK_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "daygen_provider_errors",
            "Failed provider calls, by provider and error code (ErrorCode)",
            ["provider", "code"],
            registry=r,
        )
        self.credits_charged = Counter(
            "daygen_credits_charged",
            "Credits reserved by accepted jobs, by type",
            ["type"],
            registry=r,
        )
        self.credits_refunded = Counter(
            "daygen_credits_refunded",
            "Credits given back for jobs that failed or were cancelled, by type",
            ["type"],
            registry=r,
        )
        self.deliveries = Counter(
            "daygen_task_deliveries",
            "Task deliveries the app answered, by type and result (completed, retryable...)",
            ["type", "result"],
            registry=r,
        )
        self.polls = Counter(
            "daygen_provider_polls",
            "Poll deliveries of remote provider tasks, by job type and result (running, "
            "completed, failed...)",
            ["type", "result"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "daygen_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, retrying, failed)",
            ["outcome"],
            registry=r,
        )
        self._connections = _Connections()
        r.register(self._connections)
        # ``labels()`` validates and locks on every call; the children are kept instead (the
        # label values are bounded: job types, provider names, statuses, error codes).
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # ------------------------------------------------------------------ job lifecycle

    def job_created(self, job: JobRecord) -> None:
        """A job was saved with its credits reserved."""
        self._child(self.jobs_created, job.type, _provider(job)).inc()
        if job.cost:
            self._child(self.credits_charged, job.type).inc(job.cost)

    def job_started(self, job: JobRecord) -> None:
        """A delivery's claim changed ``job``; its time in queue is observed the first time
        the job starts (the claim that set ``started_at``), not on a retry's claim nor on the
        claim of a later chunk."""
        if job.status != JobStatus.PROCESSING or job.started_at is None:
            return
        if job.started_at != job.updated_at:
            return
        due = max(job.created_at, getattr(job, "run_at", None) or job.created_at)
        waited = _seconds(due, job.started_at)
        if waited is not None:
            self._child(self.queue_seconds, job.type).observe(waited)

    def job_finished(self, job: JobRecord, refunded: int | None = None) -> None:
        """``job`` reached a final status, and ``refunded`` credits were given back (None: its
        whole cost unless it completed)."""
        if job.status not in FINISHED:
            return
        provider = _provider(job)
        status = str(job.status)
        self._child(self.jobs_finished, job.type, provider, status).inc()
        took = _seconds(job.started_at, job.completed_at or job.updated_at)
        if took is not None:
            self._child(self.processing_seconds, job.type, provider, status).observe(took)
        if refunded is None:
            refunded = 0 if job.status == JobStatus.COMPLETED else job.cost
        if refunded:
            self._child(self.credits_refunded, job.type).inc(refunded)

    def delivery(self, job_type: str, result: str) -> None:
        """The processor answered a delivery with ``result`` (its body's ``result`` or
        ``error``: ``completed``, ``retryable``, ``in_progress``...)."""
        self._child(self.deliveries, job_type, result).inc()

    def poll(self, job_type: str, result: str) -> None:
        """A poll delivery of a remote provider task was answered with ``result``."""
        self._child(self.polls, job_type, result).inc()

    # ------------------------------------------------------------------ providers

    def provider_call(self, provider: str, operation: str, seconds: float) -> None:
        self._child(self.provider_seconds, provider, operation).observe(max(0.0, seconds))

    def provider_task_done(self, provider: str, seconds: float | None) -> None:
        if seconds is not None:
            self._child(self.provider_task_seconds, provider).observe(seconds)

    def provider_error(self, provider: str, error: BaseException) -> None:
        """A provider call failed; counted by ``ProviderError.code``."""
        if isinstance(error, ProviderError):
            code = str(error.code) if error.code else UNCLASSIFIED
        else:
            code = INTERNAL_ERROR
        self._child(self.provider_errors, provider, code).inc()

    # ------------------------------------------------------------------ webhooks, clients

    def webhook_delivery(self, outcome: str) -> None:
        """One webhook delivery attempt ended with ``outcome`` (see ``WEBHOOK_OUTCOMES``)."""
        self._child(self.webhook_deliveries, outcome).inc()

    def watch_connections(self, transport: str, count: Callable[[], int]) -> None:
        """Report ``count()`` as the live connections of ``transport`` at every scrape."""
        self._connections.sources[transport] = count

    # ------------------------------------------------------------------ exposition

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def exported_names(self) -> set[str]:
        """Every series name ``/metrics`` can show (``_total``, ``_bucket``... included),
        whether or not it has a sample yet."""
        names: set[str] = set()
        for metric in self.registry.collect():
            names.update(_series_names(metric))
        return names


def outcome_word(status: int, body: dict[str, Any]) -> str:
    """An answer to the queue in one word: its body's ``result`` or ``error`` (``completed``,
    ``retryable``, ``in_progress``...), else its status code."""
    return str(body.get("result") or body.get("error") or status)


def _series_names(metric: Metric) -> Iterable[str]:
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }.get(metric.type, ("",))
    return [metric.name + suffix for suffix in suffixes]


class _Connections(Collector):
    """``daygen_live_connections{transport}``, read from its sources at scrape time."""

    TRANSPORTS = ("socketio", "sse")

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], int]] = {}

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "daygen_live_connections",
            "Open live-update connections of this instance (Socket.IO sockets, SSE streams)",
            labels=["transport"],
        )
        for transport in (*self.TRANSPORTS, *sorted(set(self.sources) - set(self.TRANSPORTS))):
            source = self.sources.get(transport)
            gauge.add_metric([transport], float(source()) if source is not None else 0.0)
        yield gauge


# ---------------------------------------------------------------------------- the seams


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
                metrics.provider_call(name, operation, _seconds(start, clock.now()) or 0.0)
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
            metrics.provider_task_done(name, _seconds(task.submitted_at, clock.now()))
    elif (
        operation == "submit"
        and isinstance(result, Submitted)
        and isinstance(result.state, TaskReady)
    ):
        metrics.provider_task_done(name, _seconds(start, clock.now()))


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


# ---------------------------------------------------------------------------- who may read


def may_read(settings: Settings, remote: str | None, authorization: str | None) -> bool:
    """The access rule of ``/metrics``: the bearer token ``METRICS_TOKEN``, or a peer address
    in ``METRICS_ALLOWED_NETWORKS``. With neither configured it is open outside production
    and closed in production."""
    token = settings.metrics_token
    networks = settings.metrics_allowed_networks
    if token is None and not networks:
        return not settings.is_production
    if token is not None and authorization is not None:
        scheme, _, given = authorization.partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return True
    if networks and remote:
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in networks)
    return False


def metrics_handler(
    settings: Settings, metrics: AppMetrics
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def scrape(request: web.Request) -> web.StreamResponse:
        if not may_read(settings, request.remote, request.headers.get("Authorization")):
            return _refused(settings)
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        response.headers["Cache-Control"] = "no-store"
        return response

    return scrape


def _refused(settings: Settings) -> web.Response:
    if settings.metrics_token is None and not settings.metrics_allowed_networks:
        message = "metrics are closed in production: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS"
        return web.json_response({"error": "forbidden", "message": message}, status=403)
    if settings.metrics_token is not None:
        return web.json_response(
            {"error": "unauthorized", "message": "a valid METRICS_TOKEN bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return web.json_response(
        {"error": "forbidden", "message": "this address may not read metrics"}, status=403
    )


def add_metrics_route(app: web.Application, settings: Settings, metrics: AppMetrics) -> None:
    app.router.add_get(METRICS_PATH, metrics_handler(settings, metrics))


__all__ = [
    "AppMetrics",
    "MeteredJobEvents",
    "METRICS_PATH",
    "WEBHOOK_OUTCOMES",
    "add_metrics_route",
    "may_read",
    "metered_providers",
]
