"""Prometheus metrics on the HTTP port (``/metrics``), fed by the engine's event stream.

Counters come from the same observer stream the tests and the console read, so a metric can
never disagree with what the engine says happened; gauges (waiting and running tasks) are read
from the engine when Prometheus scrapes. Each service gets its own registry: several emulators
in one process (tests) never share counters.

Every metric labels a queue the same way: ``queue`` is its QUEUE_ID (``image-generation-queue``),
as in ``X-CloudTasks-QueueName`` and the engine's events, never the full resource name. Two
queues with the same id in different projects or locations of one emulator share a series.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from emulator.events import Event
from emulator.service import CloudTasksService


class _QueueGauges(Collector):
    """Per-queue gauges, computed at scrape time."""

    def __init__(self, service: CloudTasksService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        tasks = GaugeMetricFamily(
            "cloudtasks_emulator_queue_tasks", "Tasks waiting or running", labels=["queue"]
        )
        running = GaugeMetricFamily(
            "cloudtasks_emulator_queue_dispatches_in_flight",
            "Attempts on the wire",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "cloudtasks_emulator_queue_paused", "1 when the queue is paused", labels=["queue"]
        )
        engine = self._service.engine
        for parent in self._service.known_parents():
            for record in engine.list_queues(parent):
                stats = engine.queue_stats(record.name)
                tasks.add_metric([record.short_id], stats.tasks_count)
                running.add_metric([record.short_id], stats.concurrent_dispatches_count)
                paused.add_metric([record.short_id], float(record.state.name == "PAUSED"))
        yield tasks
        yield running
        yield paused


class EmulatorMetrics:
    def __init__(self, service: CloudTasksService) -> None:
        self.registry = CollectorRegistry()
        self._events = Counter(
            "cloudtasks_emulator_events",
            "State changes of queues and tasks, by kind (task_dispatched, attempt_failed...)",
            ["kind", "queue"],
            registry=self.registry,
        )
        self.registry.register(_QueueGauges(service))
        service.engine.events.subscribe(self._count)

    def _count(self, event: Event) -> None:
        self._events.labels(event.kind.value, event.queue).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def add_routes(app: web.Application, service: CloudTasksService) -> None:
    metrics = EmulatorMetrics(service)

    async def scrape(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app.router.add_get("/metrics", scrape)
