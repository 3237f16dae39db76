"""Cloud Tasks v2 protobuf messages <-> the engine's plain dataclasses, shared by the gRPC and
REST faces.

We work on the *raw* protobuf classes behind google-cloud-tasks' proto-plus types
(``tasks_v2.Task.pb()``): proto-plus wraps every attribute access in Python (a Timestamp set
costs ~15 us), the raw upb messages do not. The engine keeps its own state in dataclasses and
is converted here, at the edge, once per request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from google.cloud import tasks_v2, tasks_v2beta3
from google.protobuf import duration_pb2, timestamp_pb2

from emulator import rules
from emulator.errors import InvalidArgument
from emulator.model import (
    Attempt,
    HttpTarget,
    NewTaskSpec,
    OidcToken,
    QueueRecord,
    QueueSpec,
    QueueState,
    QueueStats,
    RateLimits,
    RetryConfig,
    TaskRecord,
)

# The raw protobuf classes (upb). Typed Any: they are generated at import time.
QueuePb: Final[Any] = tasks_v2.Queue.pb()
TaskPb: Final[Any] = tasks_v2.Task.pb()
HttpRequestPb: Final[Any] = tasks_v2.HttpRequest.pb()
BetaQueuePb: Final[Any] = tasks_v2beta3.Queue.pb()

VIEW_BASIC: Final = int(tasks_v2.Task.View.BASIC)
VIEW_FULL: Final = int(tasks_v2.Task.View.FULL)

# The engine keeps HTTP methods by name; HTTP_METHOD_UNSPECIFIED means POST.
HTTP_METHOD_NUMBERS: Final[dict[str, int]] = {
    method.name: int(method)
    for method in tasks_v2.HttpMethod.__members__.values()
    if method != tasks_v2.HttpMethod.HTTP_METHOD_UNSPECIFIED
}
HTTP_METHOD_NAMES: Final[dict[int, str]] = {
    number: name for name, number in HTTP_METHOD_NUMBERS.items()
} | {int(tasks_v2.HttpMethod.HTTP_METHOD_UNSPECIFIED): "POST"}

# ``emulator.model`` and ``emulator.rules`` stay free of the generated modules (so that
# ``emulator.queues_file`` imports in milliseconds); what they spell out must still be the
# generated enums, name for name and value for value.
if {state.name: state.value for state in QueueState} != {
    state.name: int(state)
    for state in tasks_v2.Queue.State.__members__.values()
    if state != tasks_v2.Queue.State.STATE_UNSPECIFIED
}:
    raise ImportError("emulator.model.QueueState no longer matches tasks_v2.Queue.State")
if set(HTTP_METHOD_NUMBERS) != rules.HTTP_METHODS:
    raise ImportError("emulator.rules.HTTP_METHODS no longer matches tasks_v2.HttpMethod")

_MICRO = timedelta(microseconds=1)
_ZERO = timedelta(0)


# ------------------------------------------------------------------ scalars


def set_timestamp(target: timestamp_pb2.Timestamp, when: datetime) -> None:
    """Faster than ``FromDatetime`` (1.1 against 3.5 us here) and exact to the microsecond,
    Cloud Tasks' precision: whole seconds and microseconds straight from the timedelta."""
    delta = when - rules.EPOCH
    target.seconds = delta.days * 86_400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def read_timestamp(source: timestamp_pb2.Timestamp) -> datetime:
    return rules.EPOCH + timedelta(0, source.seconds, source.nanos // 1000)


def set_duration(target: duration_pb2.Duration, delta: timedelta) -> None:
    """A timedelta keeps its days negative and its seconds and microseconds positive; a
    Duration needs one sign for both parts."""
    if delta >= _ZERO:
        target.seconds = delta.days * 86_400 + delta.seconds
        target.nanos = delta.microseconds * 1000
        return
    micros = -delta // _MICRO
    target.seconds = -(micros // 1_000_000)
    target.nanos = -(micros % 1_000_000) * 1000


def read_duration(source: duration_pb2.Duration) -> timedelta:
    return timedelta(0, source.seconds, source.nanos // 1000)


# ------------------------------------------------------------------ queues


def queue_spec_from_pb(queue: Any) -> QueueSpec:
    """A Queue message as a spec. Unset (zero) fields stay zero: the engine applies the
    server defaults, as proto3 "unset" means.

    One exception: ``max_doublings`` 0 is a meaningful value (purely linear backoff), so it is
    kept whenever the message has a ``retry_config``; only a queue without any
    ``retry_config`` gets the default 16 for it (with every other retry default). UpdateQueue
    merges the request into the current queue, whose ``retry_config`` is always present, so
    there a masked zero is kept and an unmasked ``max_doublings`` keeps its current value.
    """
    rate = queue.rate_limits
    spec = QueueSpec(
        name=queue.name,
        rate_limits=RateLimits(
            max_dispatches_per_second=rate.max_dispatches_per_second,
            max_concurrent_dispatches=rate.max_concurrent_dispatches,
        ),
    )
    if queue.HasField("retry_config"):
        retry = queue.retry_config
        spec.retry_config = RetryConfig(
            max_attempts=retry.max_attempts,
            max_retry_duration=read_duration(retry.max_retry_duration),
            min_backoff=read_duration(retry.min_backoff),
            max_backoff=read_duration(retry.max_backoff),
            max_doublings=retry.max_doublings,
        )
    return spec


def _fill_queue(target: Any, record: QueueRecord) -> None:
    """The fields v2 and v2beta3 Queue messages share (same names, other numbers)."""
    target.name = record.name
    target.state = int(record.state)
    rate, retry = record.rate_limits, record.retry_config
    out_rate = target.rate_limits
    out_rate.max_dispatches_per_second = rate.max_dispatches_per_second
    out_rate.max_burst_size = rate.max_burst_size
    out_rate.max_concurrent_dispatches = rate.max_concurrent_dispatches
    out_retry = target.retry_config
    out_retry.max_attempts = retry.max_attempts
    set_duration(out_retry.max_retry_duration, retry.max_retry_duration)
    set_duration(out_retry.min_backoff, retry.min_backoff)
    set_duration(out_retry.max_backoff, retry.max_backoff)
    out_retry.max_doublings = retry.max_doublings
    if record.purge_time is not None:
        set_timestamp(target.purge_time, record.purge_time)


def queue_to_pb(record: QueueRecord) -> Any:
    queue = QueuePb()
    _fill_queue(queue, record)
    return queue


def queue_to_v2beta3_pb(
    record: QueueRecord,
    stats: QueueStats | None,
    *,
    task_ttl: timedelta,
    tombstone_ttl: timedelta,
) -> Any:
    """The v2beta3 Queue: v2's fields (renumbered) plus ``stats`` when asked for. v2 has no
    queue statistics, so clients read them from v2beta3's GetQueue with a read mask, as they
    would against Google."""
    queue = BetaQueuePb()
    _fill_queue(queue, record)
    set_duration(queue.task_ttl, task_ttl)
    set_duration(queue.tombstone_ttl, tombstone_ttl)
    if stats is not None:
        out = queue.stats
        out.tasks_count = stats.tasks_count
        if stats.oldest_estimated_arrival_time is not None:
            set_timestamp(out.oldest_estimated_arrival_time, stats.oldest_estimated_arrival_time)
        out.executed_last_minute_count = stats.executed_last_minute_count
        out.concurrent_dispatches_count = stats.concurrent_dispatches_count
        out.effective_execution_rate = stats.effective_execution_rate
    return queue


# ------------------------------------------------------------------ tasks


def new_task_from_pb(task: Any) -> NewTaskSpec:
    """A CreateTask request's task as the engine's spec (the engine validates the values)."""
    if task.HasField("app_engine_http_request"):
        raise InvalidArgument(
            "App Engine tasks are not supported by the emulator: use Task.httpRequest."
        )
    if not task.HasField("http_request"):
        raise InvalidArgument("Task.httpRequest is required.")
    request = task.http_request
    if request.HasField("oauth_token"):
        raise InvalidArgument(
            "HttpRequest.oauthToken is not supported by the emulator (it cannot mint Google "
            "access tokens); use HttpRequest.oidcToken."
        )
    oidc: OidcToken | None = None
    if request.HasField("oidc_token"):
        token = request.oidc_token
        if not token.service_account_email:
            raise InvalidArgument("OidcToken.serviceAccountEmail is required.")
        oidc = OidcToken(token.service_account_email, token.audience)
    method = HTTP_METHOD_NAMES.get(request.http_method)
    if method is None:
        raise InvalidArgument(f"HttpRequest.httpMethod {request.http_method} is not supported.")
    deadline: timedelta | None = None
    if task.HasField("dispatch_deadline"):
        deadline = read_duration(task.dispatch_deadline) or None
    return NewTaskSpec(
        http_request=HttpTarget(
            url=request.url,
            http_method=method,
            headers=dict(request.headers) if request.headers else {},  # dict(empty map): 2 us
            body=request.body,
            oidc_token=oidc,
        ),
        name=task.name or None,
        schedule_time=(
            read_timestamp(task.schedule_time) if task.HasField("schedule_time") else None
        ),
        dispatch_deadline=deadline,
    )


def _attempt_to_pb(target: Any, attempt: Attempt, *, first: bool) -> None:
    if first:
        # Cloud Tasks keeps only dispatch_time for the first attempt.
        if attempt.dispatch_time is not None:
            set_timestamp(target.dispatch_time, attempt.dispatch_time)
        return
    if attempt.schedule_time is not None:
        set_timestamp(target.schedule_time, attempt.schedule_time)
    if attempt.dispatch_time is not None:
        set_timestamp(target.dispatch_time, attempt.dispatch_time)
    if attempt.response_time is not None:
        set_timestamp(target.response_time, attempt.response_time)
        status = target.response_status
        status.code = attempt.response_code or 0
        status.message = attempt.response_message


def task_to_pb(record: TaskRecord, view: int = VIEW_BASIC) -> Any:
    """BASIC (the default, and what 0 means) leaves out the body; FULL includes it."""
    full = view == VIEW_FULL
    task = TaskPb(
        name=record.name,
        dispatch_count=record.dispatch_count,
        response_count=record.response_count,
        view=VIEW_FULL if full else VIEW_BASIC,
    )
    target = record.http_request
    request = task.http_request
    request.url = target.url
    request.http_method = HTTP_METHOD_NUMBERS[target.http_method]
    if target.headers:
        request.headers.update(target.headers)
    if full and target.body:
        request.body = target.body
    if target.oidc_token is not None:
        request.oidc_token.service_account_email = target.oidc_token.service_account_email
        request.oidc_token.audience = target.oidc_token.audience
    set_timestamp(task.schedule_time, record.schedule_time)
    set_timestamp(task.create_time, record.create_time)
    set_duration(task.dispatch_deadline, record.dispatch_deadline)
    if record.first_attempt is not None:
        _attempt_to_pb(task.first_attempt, record.first_attempt, first=True)
    if record.last_attempt is not None:
        _attempt_to_pb(task.last_attempt, record.last_attempt, first=False)
    return task


def created_task_to_pb(sent: Any, record: TaskRecord, view: int) -> Any:
    """CreateTask's answer in the FULL view: the task as sent (one copy in C), completed with
    what the service decided (name, schedule and create time, deadline) and cleared of the
    output-only fields a client may have filled. It equals ``task_to_pb(record, view)``, built
    in about half the time: CreateTask is the call every job makes. Other views, and a request
    whose method was left unspecified, go through ``task_to_pb``."""
    if view != VIEW_FULL or not sent.http_request.http_method:
        return task_to_pb(record, view)
    task = TaskPb()
    task.CopyFrom(sent)
    task.name = record.name
    set_timestamp(task.schedule_time, record.schedule_time)
    set_timestamp(task.create_time, record.create_time)
    set_duration(task.dispatch_deadline, record.dispatch_deadline)
    task.dispatch_count = record.dispatch_count
    task.response_count = record.response_count
    task.ClearField("first_attempt")
    task.ClearField("last_attempt")
    task.view = VIEW_FULL
    return task
