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
from emulator.model import (
    AppEngineRouting,
    HttpTarget,
    NewTaskSpec,
    QueueHttpTarget,
    QueueSpec,
    RetryConfig,
)

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
    validate_retry_config(spec.retry_config)
    if spec.http_target is not None:
        validate_queue_http_target(spec.http_target)
    if spec.app_engine_routing_override is not None:
        validate_routing(spec.app_engine_routing_override, "Queue.appEngineRoutingOverride")
    if spec.task_ttl is not None and not (
        rules.MIN_TASK_TTL <= spec.task_ttl <= rules.MAX_TASK_TTL
    ):
        raise InvalidArgument("Queue.taskTtl must be between 10 days and 10 years.")
    if spec.tombstone_ttl is not None and not (
        rules.MIN_TOMBSTONE_TTL <= spec.tombstone_ttl <= rules.MAX_TOMBSTONE_TTL
    ):
        raise InvalidArgument("Queue.tombstoneTtl must be between 1 hour and 9 days.")


def validate_retry_config(retry: RetryConfig) -> None:
    """A queue's retry policy or a task's own (the same message, the same rules)."""
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


def validate_queue_http_target(target: QueueHttpTarget) -> None:
    """``Queue.http_target``: a present host is not empty, a port is not negative, tokens
    name both halves (the API requires both at queue level), headers stay under 80 KB."""
    override = target.uri_override
    if override is not None:
        if override.host is not None and not override.host:
            raise InvalidArgument("HttpTarget.uriOverride.host cannot be an empty string.")
        if override.port is not None and override.port < 0:
            raise InvalidArgument("HttpTarget.uriOverride.port must be a positive integer.")
        if override.path is not None and override.path and not override.path.startswith("/"):
            raise InvalidArgument("HttpTarget.uriOverride.pathOverride.path must start with '/'.")
    if target.oidc_token is not None and not (
        target.oidc_token.service_account_email and target.oidc_token.audience
    ):
        raise InvalidArgument(
            "HttpTarget.oidcToken must set both serviceAccountEmail and audience at the queue "
            "level."
        )
    if target.oauth_token is not None and not (
        target.oauth_token.service_account_email and target.oauth_token.scope
    ):
        raise InvalidArgument(
            "HttpTarget.oauthToken must set both serviceAccountEmail and scope at the queue level."
        )
    header_bytes = sum(len(k) + len(v) for k, v in target.header_overrides.items())
    if header_bytes >= rules.MAX_HEADERS_SIZE:
        raise InvalidArgument("HttpTarget.headerOverrides must total less than 80KB.")


def validate_routing(routing: AppEngineRouting, where: str) -> None:
    for field_name in ("service", "version", "instance"):
        value = getattr(routing, field_name)
        if value and rules.ROUTING_PART_RE.match(value) is None:
            raise InvalidArgument(
                f"{where}.{field_name} must contain only lowercase letters, digits and hyphens."
            )


def apply_queue_defaults(spec: QueueSpec) -> None:
    """Proto3 zero means unset: an unset field gets the server default."""
    rate = spec.rate_limits
    if rate.max_dispatches_per_second == 0:
        rate.max_dispatches_per_second = rules.DEFAULT_MAX_DISPATCHES_PER_SECOND
    if rate.max_concurrent_dispatches == 0:
        rate.max_concurrent_dispatches = rules.DEFAULT_MAX_CONCURRENT_DISPATCHES
    apply_retry_defaults(spec.retry_config)


def apply_retry_defaults(retry: RetryConfig) -> None:
    """Every zero field of a RetryConfig takes Cloud Tasks' default (proto3 cannot tell zero
    from unset, and neither can Cloud Tasks): 100 attempts, 0.1 s and 3600 s backoffs, 16
    doublings; a zero retry duration is the default itself (unlimited). A lone ``min_backoff``
    keeps a ``max_backoff`` at least as large, and a lone ``max_backoff`` below 0.1 s lowers
    the default ``min_backoff`` to it."""
    if retry.max_attempts == 0:
        retry.max_attempts = rules.DEFAULT_MAX_ATTEMPTS
    if retry.max_backoff == timedelta(0):
        retry.max_backoff = max(rules.DEFAULT_MAX_BACKOFF, retry.min_backoff)
    if retry.min_backoff == timedelta(0):
        retry.min_backoff = min(rules.DEFAULT_MIN_BACKOFF, retry.max_backoff)
    if retry.max_doublings == 0:
        retry.max_doublings = rules.DEFAULT_MAX_DOUBLINGS
    retry.max_retry_duration = timedelta(seconds=int(retry.max_retry_duration.total_seconds()))


def validate_http_target(target: HttpTarget) -> None:
    if not target.url:
        raise InvalidArgument("HttpRequest.url is required.")
    if not target.url.startswith(("http://", "https://")):
        raise InvalidArgument("HttpTarget.url must start with 'http://' or 'https://'.")
    if len(target.url) > rules.MAX_URL_LENGTH:
        raise InvalidArgument("HttpRequest.url must be at most 2083 characters.")
    _validate_http_fields(target)


def _validate_http_fields(target: HttpTarget) -> None:
    if target.http_method not in rules.HTTP_METHODS:
        raise InvalidArgument(f"HttpRequest.httpMethod {target.http_method!r} is not supported.")
    if target.body and target.http_method not in rules.BODY_METHODS:
        raise InvalidArgument(
            "HttpRequest.body is only allowed if the HTTP method is POST, PUT or PATCH."
        )
    headers = target.headers
    if headers and sum(len(k) + len(v) for k, v in headers.items()) >= rules.MAX_HEADERS_SIZE:
        raise InvalidArgument("HttpRequest.headers must total less than 80KB.")


def validate_app_engine_request(target: HttpTarget) -> None:
    """An App Engine task: ``url`` holds the relative URI."""
    if not target.url.startswith("/"):
        raise InvalidArgument("AppEngineHttpRequest.relativeUri must begin with '/'.")
    if len(target.url) > rules.MAX_URL_LENGTH or " " in target.url:
        raise InvalidArgument(
            "AppEngineHttpRequest.relativeUri must be a valid relative URI of at most 2083 "
            "characters, without spaces."
        )
    if target.http_method not in rules.HTTP_METHODS:
        raise InvalidArgument(
            f"AppEngineHttpRequest.httpMethod {target.http_method!r} is not supported."
        )
    if target.body and target.http_method not in rules.APP_ENGINE_BODY_METHODS:
        raise InvalidArgument(
            "AppEngineHttpRequest.body is only allowed if the HTTP method is POST or PUT."
        )
    if target.app_engine is not None:
        validate_routing(target.app_engine, "AppEngineHttpRequest.appEngineRouting")


def validate_new_task(spec: NewTaskSpec, now: datetime, *, queue_routed: bool = False) -> None:
    """``queue_routed``: the queue's ``http_target`` names a host, so an HTTP task may leave
    its URL empty (the queue supplies it at dispatch time)."""
    target = spec.http_request
    app_engine = target.app_engine is not None
    if app_engine:
        validate_app_engine_request(target)
    elif queue_routed and not target.url:
        _validate_http_fields(target)
    else:
        validate_http_target(target)
    deadline = spec.dispatch_deadline
    if deadline is not None:
        if app_engine and not (
            rules.MIN_DISPATCH_DEADLINE <= deadline <= rules.MAX_APP_ENGINE_DISPATCH_DEADLINE
        ):
            raise InvalidArgument("Task.dispatchDeadline must be between [15s, 24h15s].")
        if not app_engine and not (
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
    headers = target.headers
    header_bytes = sum(len(k) + len(v) + 6 for k, v in headers.items()) if headers else 0
    return len(name) + len(target.url) + len(target.body) + header_bytes + 96


def check_task_size(name: str, target: HttpTarget) -> None:
    size = stored_task_size(name, target)
    if size > rules.MAX_TASK_SIZE:
        raise InvalidArgument(
            f"Task size is {size} bytes; the maximum task size is {rules.MAX_TASK_SIZE} bytes."
        )
