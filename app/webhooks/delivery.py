"""Webhook deliveries as Cloud Tasks on ``webhook-delivery-queue``: built, and carried out.

A delivery is a task whose body holds the owner, the URL, the message id and the exact JSON
to send, so a retry sends the same bytes with the same ``webhook-id`` (receivers dedupe on it)
and the queue, not the app, remembers what is still owed: deliveries survive a restart and
back off as the queue's retry config says. The task is named after the message id, so the
same event enqueued twice is delivered once.

Each attempt reads the owner's signing secrets, signs ``id.timestamp.body`` with the
``standardwebhooks`` package (``webhook-timestamp`` is the wall-clock time of the attempt,
which receivers compare with their own clock) and POSTs through the ``FetchGuard``: a URL
whose host now resolves to a private address is refused, never connected to. A 2xx answer
ends it; 410 Gone ends it (the receiver says it is gone for good); anything else is retried
until ``MAX_ATTEMPTS``, after which the delivery is dropped (logged) and the queue told to
stop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field
from standardwebhooks import Webhook
from yarl import URL

from app.jobs.enqueue import internal_request
from app.providers.base import ProviderError
from app.providers.guard import FetchGuard, FetchRefused
from app.settings import Settings
from daygen_queue import NewTask, QueueConfig, RateLimits, RetryConfig

log = logging.getLogger("app.webhooks")

QUEUE = "webhook-delivery-queue"
DELIVER_PATH = "/internal/webhooks/deliver"
MAX_ATTEMPTS = 12
"""30 s, 1, 2, 4 ... min, then every 2 h: about 8 hours of retries before giving up."""
ATTEMPT_TIMEOUT = timedelta(seconds=15)
USER_AGENT = "daygen-queue-webhooks/0.1"

__all__ = [
    "DELIVER_PATH",
    "MAX_ATTEMPTS",
    "QUEUE",
    "DeliveryTask",
    "Outcome",
    "deliver",
    "delivery_task",
    "queue_config",
    "sign",
]


def queue_config() -> QueueConfig:
    """The queue of ``queues.toml``'s ``[queues.webhook-delivery-queue]``."""
    return QueueConfig(
        name=QUEUE,
        rate_limits=RateLimits(max_dispatches_per_second=50, max_concurrent_dispatches=100),
        retry_config=RetryConfig(
            max_attempts=MAX_ATTEMPTS,
            max_retry_duration=timedelta(hours=24),
            min_backoff=timedelta(seconds=30),
            max_backoff=timedelta(hours=2),
            max_doublings=16,
        ),
    )


class DeliveryTask(BaseModel):
    """The body of a delivery task."""

    model_config = ConfigDict(populate_by_name=True)

    user_id: str = Field(alias="userId", min_length=1)
    url: str = Field(min_length=1)
    webhook_id: str = Field(alias="webhookId", min_length=1, max_length=500)
    body: str = Field(min_length=2)
    """The exact JSON sent (and signed) at every attempt."""


def delivery_task(settings: Settings, task: DeliveryTask) -> NewTask:
    """The Cloud Task carrying ``task``, authenticated like the job tasks (OIDC when
    ``TASK_SERVICE_ACCOUNT_EMAIL`` is set, else the internal key)."""
    return NewTask(
        name=task.webhook_id,
        http_request=internal_request(
            settings, DELIVER_PATH, task.model_dump_json(by_alias=True).encode()
        ),
        dispatch_deadline=timedelta(seconds=60),
    )


def sign(secrets: list[str], webhook_id: str, when: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers, one ``v1,`` signature per secret."""
    signatures = " ".join(Webhook(secret).sign(webhook_id, when, body) for secret in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to answer the queue: 200 stops it, 503 makes it retry."""

    status: int
    result: str
    detail: str = ""


def _redacted(url: str) -> str:
    """The URL without its query and credentials (they may carry a receiver's token)."""
    try:
        parsed = URL(url)
    except ValueError:
        return "<invalid URL>"
    return str(parsed.with_query(None).with_fragment(None).with_user(None))


async def deliver(
    task: DeliveryTask,
    *,
    attempt: int,
    secrets: list[str],
    guard: FetchGuard,
    session: aiohttp.ClientSession,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """One attempt: sign, POST, and say whether the queue should try again."""
    headers = {
        **sign(secrets, task.webhook_id, wall_clock(), task.body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    where = {"webhook_id": task.webhook_id, "user_id": task.user_id, "url": _redacted(task.url)}
    failure: str
    try:
        async with guard.request(
            session,
            "POST",
            task.url,
            headers=headers,
            data=task.body.encode(),
            max_redirects=0,
            timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT.total_seconds()),
            what="webhookUrl",
        ) as response:
            status = response.status
    except FetchRefused as refused:
        log.warning("webhook refused, not retried: %s", refused.message, extra=where)
        return Outcome(200, "refused", refused.message)
    except ProviderError as error:  # DNS answers (retryable or not)
        failure = error.message
    except (aiohttp.ClientError, TimeoutError) as error:
        failure = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    else:
        if 200 <= status < 300:
            log.info("webhook delivered (attempt %d)", attempt, extra=where)
            return Outcome(200, "delivered")
        if status == 410:
            log.warning("webhook receiver answered 410 Gone: not retried", extra=where)
            return Outcome(200, "gone")
        failure = f"receiver answered {status}"
    if attempt >= MAX_ATTEMPTS:
        log.warning("webhook dropped after %d attempts: %s", attempt, failure, extra=where)
        return Outcome(200, "dropped", failure)
    log.info("webhook attempt %d failed, will retry: %s", attempt, failure, extra=where)
    return Outcome(503, "retry", failure)


def payload(event: str, timestamp: str, data: Any) -> str:
    """The body: ``{"type", "timestamp", "data"}`` as compact JSON."""
    return json.dumps({"type": event, "timestamp": timestamp, "data": data}, separators=(",", ":"))
