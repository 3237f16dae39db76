"""Request validation with Cloud Tasks' codes and messages (the ones the real service answers).

The emulator checks every request like the real service does, whatever the client already
checked: the gRPC face takes requests from any client.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from emulator import rules
from emulator.errors import QUEUE_NAME_FORMAT, InvalidArgument, task_id_invalid
from emulator.model import HttpTarget, NewTaskSpec, QueueSpec

_PACIFIC = ZoneInfo("America/Los_Angeles")
# The smallest positive rate accepted (an emulator choice; Cloud Tasks publishes none).
MIN_POSITIVE_DISPATCHES_PER_SECOND = 1e-9


def split_queue_name(name: str) -> tuple[str, str, str]:
    """(project, location, queue id) of a full queue name, or INVALID_ARGUMENT."""
    match = rules.QUEUE_NAME_RE.match(name)
    if match is None:
        raise InvalidArgument(QUEUE_NAME_FORMAT, resource="queue")
    return match["project"], match["location"], match["queue"]


def validate_parent(parent: str) -> None:
    if rules.QUEUE_PARENT_RE.match(parent) is None:
        raise InvalidArgument(
            f'Invalid resource field value in the request: "{parent}" is not a location name.',
            resource="location",
        )


def split_task_name(name: str) -> tuple[str, str]:
    """(queue name, task id) of a full task name."""
    queue, sep, task_id = name.rpartition("/tasks/")
    if not sep:
        raise InvalidArgument(
            'Task name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/'
            'queues/<QUEUE_ID>/tasks/<TASK_ID>".',
            resource="task",
        )
    split_queue_name(queue)
    if rules.TASK_ID_RE.match(task_id) is None:
        raise task_id_invalid(task_id)
    return queue, task_id


def validate_queue_spec(spec: QueueSpec) -> None:
    split_queue_name(spec.name)
    rate = spec.rate_limits
    if math.isnan(rate.max_dispatches_per_second):
        raise InvalidArgument("RateLimits.maxDispatchesPerSecond must be a number.")
    if 0 < rate.max_dispatches_per_second < MIN_POSITIVE_DISPATCHES_PER_SECOND:
        # Cloud Tasks' minimum is unpublished; below this one token would take longer than
        # 30 years, which no datetime arithmetic (or user) needs.
        raise InvalidArgument(
            "RateLimits.maxDispatchesPerSecond must be at least "
            f"{MIN_POSITIVE_DISPATCHES_PER_SECOND:g} when set."
        )
    if rate.max_dispatches_per_second < 0:
        raise InvalidArgument("RateLimits.maxDispatchesPerSecond cannot be negative.")
    if rate.max_dispatches_per_second > rules.MAX_DISPATCHES_PER_SECOND:
        raise InvalidArgument(
            "RateLimits.maxDispatchesPerSecond must be less than or equal to 500."
        )
    if rate.max_concurrent_dispatches < 0:
        raise InvalidArgument("RateLimits.maxConcurrentDispatches cannot be negative.")
    if rate.max_concurrent_dispatches > rules.MAX_CONCURRENT_DISPATCHES:
        raise InvalidArgument(
            "RateLimits.maxConcurrentDispatches must be less than or equal to 5000."
        )
    retry = spec.retry_config
    if retry.max_attempts < -1:
        raise InvalidArgument("RetryConfig.maxAttempts must be greater or equal to -1.")
    if retry.min_backoff < timedelta(0):
        raise InvalidArgument("RetryConfig.minBackoff cannot be negative.")
    if retry.max_backoff < timedelta(0):
        raise InvalidArgument("RetryConfig.maxBackoff cannot be negative.")
    if retry.min_backoff > retry.max_backoff:
        raise InvalidArgument(
            "RetryConfig.minBackoff must be less than or equal to RetryConfig.maxBackoff."
        )
    if retry.max_doublings < 0:
        raise InvalidArgument("RetryConfig.maxDoublings cannot be negative.")
    if retry.max_retry_duration < timedelta(0):
        raise InvalidArgument("RetryConfig.maxRetryDuration cannot be negative.")


def apply_queue_defaults(spec: QueueSpec) -> None:
    """Proto3 zero means unset: an unset field gets the server default. A lone
    ``min_backoff`` keeps a ``max_backoff`` at least as large."""
    rate, retry = spec.rate_limits, spec.retry_config
    if rate.max_dispatches_per_second == 0:
        rate.max_dispatches_per_second = rules.DEFAULT_MAX_DISPATCHES_PER_SECOND
    if rate.max_concurrent_dispatches == 0:
        rate.max_concurrent_dispatches = rules.DEFAULT_MAX_CONCURRENT_DISPATCHES
    if retry.max_attempts == 0:
        retry.max_attempts = rules.DEFAULT_MAX_ATTEMPTS
    if retry.min_backoff == timedelta(0) and retry.max_backoff == timedelta(0):
        retry.min_backoff = rules.DEFAULT_MIN_BACKOFF
        retry.max_backoff = rules.DEFAULT_MAX_BACKOFF
    elif retry.max_backoff == timedelta(0):
        retry.max_backoff = max(rules.DEFAULT_MAX_BACKOFF, retry.min_backoff)
    retry.max_retry_duration = timedelta(seconds=int(retry.max_retry_duration.total_seconds()))


def validate_http_target(target: HttpTarget) -> None:
    if not target.url:
        raise InvalidArgument("HttpRequest.url is required.")
    if not target.url.startswith(("http://", "https://")):
        raise InvalidArgument("HttpTarget.url must start with 'http://' or 'https://'.")
    if len(target.url) > rules.MAX_URL_LENGTH:
        raise InvalidArgument("HttpRequest.url must be at most 2083 characters.")
    if target.http_method not in rules.HTTP_METHODS:
        raise InvalidArgument(f"HttpRequest.httpMethod {target.http_method!r} is not supported.")
    if target.body and target.http_method not in rules.BODY_METHODS:
        raise InvalidArgument(
            "HttpRequest.body is only allowed if the HTTP method is POST, PUT or PATCH."
        )
    header_bytes = sum(len(k) + len(v) for k, v in target.headers.items())
    if header_bytes >= rules.MAX_HEADERS_SIZE:
        raise InvalidArgument("HttpRequest.headers must total less than 80KB.")


def validate_new_task(spec: NewTaskSpec, now: datetime) -> None:
    validate_http_target(spec.http_request)
    deadline = spec.dispatch_deadline
    if deadline is not None and not (
        rules.MIN_DISPATCH_DEADLINE <= deadline <= rules.MAX_DISPATCH_DEADLINE
    ):
        raise InvalidArgument("Task.dispatchDeadline must be between [15s, 30m].")
    when = spec.schedule_time
    if when is not None and when - now > rules.MAX_SCHEDULE_AHEAD:
        shown = when.astimezone(_PACIFIC).isoformat(timespec="seconds")
        raise InvalidArgument(
            f"The Task.scheduleTime, {shown}, is too far in the future. Schedule time must be "
            "no more than 720h in the future."
        )


def stored_task_size(name: str, target: HttpTarget) -> int:
    """Approximate serialized size of the stored task: the fields that can be large plus the
    fixed part of the proto (timestamps, counters, tags), which is under 100 bytes."""
    headers = sum(len(k) + len(v) + 6 for k, v in target.headers.items())
    return len(name) + len(target.url) + len(target.body) + headers + 96


def check_task_size(name: str, target: HttpTarget) -> None:
    size = stored_task_size(name, target)
    if size > rules.MAX_TASK_SIZE:
        raise InvalidArgument(
            f"Task size is {size} bytes; the maximum task size is {rules.MAX_TASK_SIZE} bytes."
        )
