"""``AppMetrics``: every metric of one app on its own ``CollectorRegistry``, and the small
calls that move them. Other parts of the app call these methods, never the
``prometheus_client`` objects, so a metric's meaning lives here with its name and help text."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.jobs.records import JobRecord
from app.models import FINISHED, JobStatus
from app.providers.base import ProviderError

QUEUE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
PROCESSING_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TASK_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)

UNCLASSIFIED = "unclassified"
"""The ``code`` of a ``ProviderError`` that carries none."""
INTERNAL_ERROR = "internal_error"
"""The ``code`` of anything a provider raised that is not a ``ProviderError`` (a bug)."""

WEBHOOK_OUTCOMES = ("delivered", "retry", "dropped", "gone", "refused")
"""What a webhook delivery attempt ends with (``app.webhooks.delivery.Outcome.result``): a 2xx
from the receiver; a failed attempt the queue retries; the last allowed attempt failed; the
receiver answered 410; the URL is refused (a private address)."""


def elapsed(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end`` (never negative); None if either is unknown."""
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
            ["type", "priority"],
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
            "Webhook delivery attempts, by outcome (delivered, retry, dropped, gone, refused)",
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
        due = max(job.created_at, job.run_at or job.created_at)
        waited = elapsed(due, job.started_at)
        if waited is not None:
            self._child(self.queue_seconds, job.type, job.priority).observe(waited)

    def job_finished(self, job: JobRecord, refunded: int | None = None) -> None:
        """``job`` reached a final status, and ``refunded`` credits were given back (None: its
        whole cost unless it completed)."""
        if job.status not in FINISHED:
            return
        provider = _provider(job)
        status = str(job.status)
        self._child(self.jobs_finished, job.type, provider, status).inc()
        took = elapsed(job.started_at, job.completed_at or job.updated_at)
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
