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

The metrics and their calls are in ``registry`` (``AppMetrics``), the tee and the provider
wrapper in ``seams``, the access rule and the route in ``access``.

Each app has its own ``CollectorRegistry`` (never the global one): tests and several apps in
one process keep separate counters. Durations read the app's clock (the system clock in
production, the virtual one in tests), from the job's own timestamps where it has them, so a
figure means the same whichever instance observed it. Names follow the emulator's metrics
(``cloudtasks_emulator_*``): one prefix, ``daygen_``, labels in snake case, ``type`` is the
job type as in the URL (``image-generation``).
"""

from app.metrics.access import METRICS_PATH, add_metrics_route, may_read, metrics_handler
from app.metrics.registry import (
    INTERNAL_ERROR,
    UNCLASSIFIED,
    WEBHOOK_OUTCOMES,
    AppMetrics,
    outcome_word,
)
from app.metrics.seams import MeteredJobEvents, metered_providers

__all__ = [
    "INTERNAL_ERROR",
    "METRICS_PATH",
    "UNCLASSIFIED",
    "WEBHOOK_OUTCOMES",
    "AppMetrics",
    "MeteredJobEvents",
    "add_metrics_route",
    "may_read",
    "metered_providers",
    "metrics_handler",
    "outcome_word",
]
